"""Awareness of the points programme: it spreads through the social network, and only those aware feel the reward.

Off by default (everyone aware on day 0, no draw made: the event log is the one
without the mechanism); with a small seed share, participation rises month over
month; with nobody aware and no way to learn, the reward has no effect at all;
and the compiled daily update equals a plain Python reading of its rule.
"""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import twin
from agents import residents
from agents.community import FLAG_ADULT
from twin import rng
from twin.results import Result
from twin.services.events import EventKind

SMALL = ["community.households=120", "community.buildings=3", "progress=false", "seed=7"]
OFF_START = ["residents.awareness_initial=0.05", "residents.awareness_base_per_day=0.003",
             "residents.awareness_spread=0.01"]


def run(overrides, days=20):
    return twin.Twin(twin.load_scenario("default", SMALL + [f"sim.days={days}", *overrides])).run()


def log_hash(result) -> str:
    return hashlib.sha256(result.event_log.tobytes()).hexdigest()


def monthly_participation(result, adults: int, months: int) -> list[float]:
    """Each 30-day month's share of adults who earned points."""
    earned = result.event_log[result.event_log["kind"] == EventKind.PointsEarned]
    month = earned["t"] // (30 * 1440)
    return [len(np.unique(earned["actor"][month == m])) / adults for m in range(months)]


def test_everyone_aware_from_the_start_gives_the_log_without_the_mechanism():
    """awareness_initial = 1 makes no draw, whatever the spread: the very log of the default rule."""
    plain = run([])
    with_knobs = run(["residents.awareness_initial=1", "residents.awareness_base_per_day=0.5",
                      "residents.awareness_spread=0.5"])
    assert log_hash(with_knobs) == log_hash(plain)
    assert log_hash(run(OFF_START)) != log_hash(plain)  # the comparison can fail: awareness does change a run


def test_nobody_aware_and_no_way_to_learn_keeps_the_reward_out():
    """With no one aware and base = spread = 0 the run is exactly the one without a reward."""
    unaware = run(["residents.awareness_initial=0", "residents.awareness_base_per_day=0",
                   "residents.awareness_spread=0"])
    no_reward = run(["residents.reward_effect=0"])
    assert log_hash(unaware) == log_hash(no_reward)
    # mutation: let awareness spread (from no one, by noticing alone) and the reward comes back in
    learning = run(["residents.awareness_initial=0", "residents.awareness_base_per_day=0.2",
                    "residents.awareness_spread=0"])
    assert log_hash(learning) != log_hash(no_reward)
    assert learning.summary["points_issued"] > no_reward.summary["points_issued"]


def test_participation_rises_month_over_month_from_a_small_seed():
    tw = twin.Twin(twin.load_scenario("default", SMALL + ["sim.days=120", *OFF_START]))
    adult = tw.community.adults()
    aware_share = []
    while tw.day < tw.cfg.sim.days:
        tw.step()
        aware_share.append(float(tw.rule.aware[adult].mean()))
    assert aware_share[0] < 0.15 and aware_share[-1] > 0.9  # spread from a few to nearly all
    assert all(b >= a for a, b in zip(aware_share, aware_share[1:]))  # nobody forgets
    months = monthly_participation(Result.from_twin(tw), int(adult.sum()), 4)
    assert months[0] < months[1] < months[2] and months[2] - months[0] > 0.15, months
    # against everyone aware from the start: lower at first, about the same once nearly all know
    full = monthly_participation(run([], days=120), int(adult.sum()), 4)
    assert full[0] - months[0] > 0.1, (full, months)
    assert abs(full[3] - months[3]) < 0.1, (full, months)


# ------------------------------------------------------------------ the daily update against a plain reading
def naive_awareness_day(seed, day, flags, aware, neighbours, base, spread):
    """The rule read plainly: an unaware adult stays unaware with (1 - base) * (1 - spread) ** (aware ties)."""
    out = list(aware)
    for i, ties in enumerate(neighbours):
        if aware[i] or not flags[i] & FLAG_ADULT:
            continue
        k = sum(1 for j in ties if aware[j])
        out[i] = int(rng.uniform(seed, residents.S_AWARE, day, i) >= (1 - base) * (1 - spread) ** k)
    return out


def csr(neighbours):
    indptr = np.cumsum([0] + [len(t) for t in neighbours]).astype(np.int64)
    return indptr, np.array([j for t in neighbours for j in t], np.int64)


def test_compiled_update_equals_the_plain_rule_on_a_tiny_graph():
    neighbours = [[1, 2], [0, 2, 3], [0, 1], [1, 4, 5], [3], [3, 6], [5], []]
    flags = np.full(len(neighbours), FLAG_ADULT, np.uint8)
    flags[6] = 0  # a child: never learns
    indptr, indices = csr(neighbours)
    aware = np.zeros(len(neighbours), np.uint8)
    aware[0] = 1
    naive = list(aware)
    for day in range(1, 40):
        out = np.empty_like(aware)
        residents.awareness_day(5, day, flags, aware, indptr, indices, 0.02, 0.15, out)
        naive = naive_awareness_day(5, day, flags, naive, neighbours, 0.02, 0.15)
        assert out.tolist() == naive, day
        aware = out
    assert aware[6] == 0 and aware.sum() >= 5  # it spread, yet not to the child


def test_the_chance_of_learning_follows_the_number_of_aware_ties():
    """Statistical: adults with k aware ties learn at 1 - (1 - base)(1 - spread)^k (a linear rule would fail)."""
    n, base, spread = 20000, 0.05, 0.2
    for k in (0, 1, 3):
        neighbours = [[] for _ in range(k)] + [list(range(k)) for _ in range(n)]
        indptr, indices = csr(neighbours)
        flags = np.full(k + n, FLAG_ADULT, np.uint8)
        aware = np.zeros(k + n, np.uint8)
        aware[:k] = 1
        out = np.empty_like(aware)
        residents.awareness_day(11, 1, flags, aware, indptr, indices, base, spread, out)
        share = out[k:].mean()
        p = 1 - (1 - base) * (1 - spread) ** k
        sigma = (p * (1 - p) / n) ** 0.5
        assert share == pytest.approx(p, abs=4 * sigma), k
        if k > 1:  # mutation check: the additive reading (base + spread * k) is far outside
            assert abs(share - (base + spread * k)) > 10 * sigma


def test_initial_awareness_draws_only_below_one():
    flags = np.array([FLAG_ADULT] * 1000 + [0] * 200, np.uint8)
    assert residents.initial_awareness(3, flags, 1.0).all()
    some = residents.initial_awareness(3, flags, 0.1)
    assert not some[1000:].any() and 0.07 < some[:1000].mean() < 0.13


ON_DEVICE = r"""
import hashlib, json, twin
OVERRIDES = ["community.households=30", "community.buildings=2", "sim.days=4", "progress=false", "seed=11"]
AWARENESS = ["residents.awareness_initial=0.2", "residents.awareness_base_per_day=0.2",
             "residents.awareness_spread=0.3"]
out = {}
for name, extra in (("cpu", AWARENESS), ("cuda", AWARENESS + ["sim.engine=cuda"]), ("plain", [])):
    r = twin.Twin(twin.load_scenario("default", OVERRIDES + extra)).run()
    out[name] = hashlib.sha256(r.event_log.tobytes()).hexdigest()
print(json.dumps(out))
"""


def test_the_gpu_backend_spreads_awareness_as_the_cpu_does():
    """Under numba's CUDA simulator (a child process: it must be on before numba loads) the device's
    awareness kernel and rule give the CPU's event log; that log differs from one without awareness."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", ON_DEVICE], env=env, capture_output=True,
                         text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-4000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["cuda"] == found["cpu"]
    assert found["cpu"] != found["plain"]
