"""The GPU backend (``sim.engine: cuda``) under numba's CUDA simulator.

The simulator must be switched on before numba is first imported, and the rest
of the suite keeps the real JIT, so everything that touches it runs in one
child process (``NUMBA_ENABLE_CUDASIM=1``) that prints its findings as JSON:
the event log and KPIs of a small community on each engine, the device rules
against the compiled CPU rules on random inputs, and the same community with a
perturbed device rule (which must change the log).  Without the simulator: the
clear error where there is no GPU, and the kernels compiled for a real GPU's
instruction set where the CUDA toolkit is installed.
"""
import json
import os
import subprocess
import sys

import pytest

SIMULATED = r'''
import hashlib, json
import numpy as np
import twin
from numba import cuda
from agents import residents, sensors
from agents.community import build_community
from policies import PolicySet
from twin.engine import cuda as backend

OVERRIDES = ["community.households=30", "community.buildings=2", "sim.days=3", "progress=false", "seed=11"]


def run(engine):
    r = twin.Twin(twin.load_scenario("default", OVERRIDES + [f"sim.engine={engine}"])).run()
    return {"log": hashlib.sha256(r.event_log.tobytes()).hexdigest(), "events": len(r.event_log),
            "kpis": r.kpis.to_json(orient="split", double_precision=15),
            "summary": json.dumps(r.summary, sort_keys=True, default=str)}


out = {"simulated": backend.simulated(), "cpu": run("cpu"), "cuda": run("cuda")}

# ---- the device rules against the compiled CPU rules, on random state
rng = np.random.default_rng(5)
cfg = twin.load_scenario("default", ["community.households=60", "community.buildings=2", "seed=3",
                                     "residents.activity_base=-2", "residents.timebank_help_prob=0.9"])
c = build_community(cfg.community, 3, cfg.facilities.elevator_share)
c.engagement[:] = rng.normal(0.0, 1.5, c.n_residents).astype(np.float32)
n, rules, busy = c.n_residents, [], np.zeros(4, np.int64)  # busy days: every branch taken
for kind in (residents.ResidentRule, backend.DeviceResidentRule):
    rule = kind(c, cfg.residents, PolicySet.from_config(cfg.policies).points, 60, 3, 8)
    rules.append(rule)
for rule in rules:  # the same random state for both
    state = np.random.default_rng(9)
    rule.fatigue = state.uniform(0, 3, n).astype(np.float32)
    rule.last_active = state.integers(-40, 3, n).astype(np.int16)
balances = rng.integers(0, 400, n).astype(np.int64)
open_topics = np.array([0, -1, 2, 3, -1, -1, -1, -1], np.int64)
voted0 = rng.integers(0, 256, n).astype(np.uint8)
mismatch = []
for day in (3, 4, 5):
    got = []
    for rule in rules:
        voted = voted0.copy()
        rule.decide(day, balances, open_topics, voted)
        help_ = rule.help >= 0
        got.append({"act": rule.act, "redeem": rule.redeem, "help": rule.help, "voted": voted,
                    "help_minutes": rule.help_minutes[help_], "help_t": rule.help_t[help_],
                    "vote": rule.vote, "vote_t": np.where(rule.vote, rule.vote_t, 0.0),
                    "fatigue": rule.fatigue, "peer": rule.peer, "last_active": rule.last_active})
    mismatch += [f"{k} on day {day}" for k in got[0] if not np.array_equal(got[0][k], got[1][k])]
    busy += [rules[0].act.sum(), (rules[0].help >= 0).sum(), (rules[0].redeem >= 0).sum(), rules[0].vote.sum()]
out["resident_mismatch"] = mismatch
out["resident_busy"] = busy.tolist()

H, K = c.n_households, 24
state = np.random.default_rng(13)
inputs = dict(alone=state.random(H) < 0.5, size=c.hh_size, incap_since=np.where(state.random(H) < 0.2, 4 * 1440.0 + 600, -1.0),
              care_until=np.where(state.random(H) < 0.2, 4 * 1440.0 + 300, 0.0),
              fault=state.integers(0, 4, H).astype(np.int8), fault_until=state.uniform(3, 7, H) * 1440.0,
              last_reading=state.uniform(0, 30, H).astype(np.float32))
params = (0.3, 0.2, 12.0, 0.4, 0.1, 0.1, 0.1, 2.0, True, 0.3)  # incap, away, litres, kwh, faults, repair, on, smoke
written = []
for day_of in (sensors.households_day, backend.households_day):
    a = {k: v.copy() for k, v in inputs.items()}
    outs = (np.empty((H, K), np.float32), np.empty((H, K)), np.empty((H, K)), np.empty(H), np.empty(H), np.empty(H))
    day_of(17, 4, 60.0, a["alone"], a["size"], a["incap_since"], a["care_until"], a["fault"], a["fault_until"],
           a["last_reading"], *params, *outs)
    written.append(list(a.values()) + list(outs))
out["household_mismatch"] = [i for i, (x, y) in enumerate(zip(*written)) if not np.array_equal(x, y, equal_nan=True)]
out["household_busy"] = [int((written[0][-2] >= 0).sum()), int(np.isnan(written[0][8]).sum())]

# ---- mutations: a perturbed device rule must change the log
resident_day, household_day = backend.resident_day, backend.household_day


OTHER_KEYS = residents.day_keys(12345, 0, rules[0].act.shape[1], 8)  # another seed's draws (a device constant)


def perturbed_resident(i, seed, day, keys, *rest):  # other draws for every other resident
    resident_day(i, seed, day, OTHER_KEYS if i % 2 == 0 else keys, *rest)


def perturbed_household(h, seed, day, use_keys, tick_min, alone, size, incap_since, care_until, fault, fault_until,
                        last_reading, incap_p, away_p, litres, kwh, drop_p, stuck_p, drift_p, repair_days, faults_on,
                        smoke_p, *outputs):  # a smoke alarm in one home in twenty a day
    household_day(h, seed, day, use_keys, tick_min, alone, size, incap_since, care_until, fault, fault_until,
                  last_reading, incap_p, away_p, litres, kwh, drop_p, stuck_p, drift_p, repair_days, faults_on,
                  smoke_p + 0.05, *outputs)


backend.resident_day = cuda.jit(device=True)(perturbed_resident)
out["mutant_resident"] = run("cuda")
backend.resident_day = resident_day
backend.household_day = cuda.jit(device=True)(perturbed_household)
out["mutant_household"] = run("cuda")
backend.household_day = household_day

# ---- the GPU benchmark's code paths, run small (its figures mean something on a real GPU only)
from twin.bench import gpu
out["bench"] = {"run": gpu.run(), "steps": gpu.resident_steps(300, days=2), "city": gpu.city_year(300, days=2),
                "log": gpu.log_check(30, 2)}
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def simulated():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", SIMULATED], env=env, capture_output=True,
                         text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_child_ran_the_simulator(simulated):
    assert simulated["simulated"] is True


def test_cuda_engine_gives_the_cpu_event_log_and_kpis(simulated):
    cpu, gpu = simulated["cpu"], simulated["cuda"]
    assert cpu["events"] > 50  # a log with something in it: points, ballots, repairs ...
    assert gpu["log"] == cpu["log"]
    assert gpu["kpis"] == cpu["kpis"]
    assert gpu["summary"] == cpu["summary"]


def test_device_resident_rule_equals_the_compiled_rule_on_random_state(simulated):
    acts, helps, redeems, votes = simulated["resident_busy"]
    assert acts > 0 and helps > 0 and redeems > 0 and votes > 0  # every branch of the rule was taken
    assert simulated["resident_mismatch"] == []


def test_device_household_rule_equals_the_compiled_rule_on_random_state(simulated):
    onsets, silent = simulated["household_busy"]
    assert onsets > 0 and silent > 0  # incidents started, failed meters went silent
    assert simulated["household_mismatch"] == []


@pytest.mark.parametrize("mutant", ["mutant_resident", "mutant_household"])
def test_a_perturbed_device_rule_changes_the_log(simulated, mutant):
    """The comparison above can fail: the GPU path really runs the device functions."""
    assert simulated[mutant]["log"] != simulated["cpu"]["log"]


def test_gpu_bench_runs_through_but_reports_nothing_under_the_simulator(simulated):
    bench = simulated["bench"]
    assert bench["run"] == {}  # a simulator's speed is no GPU figure
    assert bench["steps"]["residents"] > 250 and bench["steps"]["steps_per_s"] > 0
    assert bench["city"]["days"] == 2 and bench["city"]["year_s"] > 0
    assert bench["log"]["same"] is True and bench["log"]["events_cpu"] == bench["log"]["events_cuda"] > 0


NO_GPU = r'''
import json
from numba import cuda
if cuda.is_available():
    print(json.dumps({"gpu": True}))
else:
    import twin
    from twin.bench import gpu
    from twin.config import ConfigError
    try:
        twin.Twin(twin.load_scenario("default", ["community.households=20", "community.buildings=1",
                                                 "sim.engine=cuda", "progress=false"]))
        error = None
    except ConfigError as e:
        error = str(e)
    print(json.dumps({"gpu": False, "error": error, "bench": gpu.run()}))
'''


def test_cuda_engine_without_a_gpu_is_a_clear_error_and_the_bench_skips():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", NO_GPU], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    if found["gpu"]:
        pytest.skip("this machine has a CUDA GPU")
    assert found["error"] and "sim.engine" in found["error"] and "GPU" in found["error"]
    assert "NUMBA_ENABLE_CUDASIM" in found["error"]
    assert found["bench"] == {}


def test_cli_says_so_in_one_line():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-m", "twin.cli", "run", "-s", "default", "sim.engine=cuda",
                          "community.households=20", "community.buildings=1", "sim.days=1", "progress=false"],
                         env=env, capture_output=True, text=True, timeout=600)
    if out.returncode == 0:
        pytest.skip("this machine has a CUDA GPU")
    assert "Traceback" not in out.stderr
    assert "sim.engine" in out.stderr and "GPU" in out.stderr


PTX = r'''
import json
from numba import cuda, typeof
from numba.cuda.cudadrv.nvvm import NVVM
try:
    NVVM()
except Exception as e:
    print(json.dumps({"nvvm": str(e).splitlines()[0] if str(e) else type(e).__name__}))
    raise SystemExit(0)
import types
import numba.cuda.dispatcher
# numba asks the current device's compute capability even to compile for a named one; there is no device here
numba.cuda.dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
import numpy as np
import twin
from agents import residents, sensors
from twin.engine import cuda as backend

t = twin.Twin(twin.load_scenario("default", ["community.households=20", "community.buildings=1", "progress=false"]))
c, rule, r, s = t.community, t.rule, t.cfg.residents, t.cfg.sensors
topics = np.zeros(8, np.int64)
keys = residents.day_keys(t.seed, 0, rule.act.shape[1], len(topics))
resident_args = (t.seed, 0, keys, c.flags, c.engagement, rule.fatigue, rule.peer, rule.last_active,
                 rule.order_of_day(0), rule.logit, rule.logit_unaware, rule.aware, r.peer_effect, r.engagement_effect,
                 r.fatigue_effect,
                 r.fatigue_gain, r.fatigue_decay,
                 np.zeros(c.n_residents, np.int64), rule.costs, r.redeem_prob, r.timebank_help_prob,
                 r.timebank_minutes_mean, c.indptr, c.indices, topics, r.vote_base, r.vote_app_effect,
                 r.vote_engagement_effect, t.topics.voted, rule.act, rule.redeem, rule.help, rule.help_minutes,
                 rule.help_t, rule.vote, rule.vote_t)
H, K = t._hourly_use.shape
use_keys = sensors.use_keys_of(t.seed, 0, K)
household_args = (t.seed, 0, use_keys, 60.0, c.hh_alone_elder, c.hh_size, t.incap_since, t.care_until, t.fault,
                  t.fault_until, t.last_reading, 1e-4, s.away_day_prob, s.water_litres_per_hour, s.kwh_per_hour,
                  s.dropout_per_device_day, s.stuck_per_device_day, s.drift_per_device_day, s.repair_device_days,
                  s.faults, 1e-4, t._hourly_use, np.empty((H, K)), np.empty((H, K)), np.empty(H), np.empty(H),
                  np.empty(H))
peer_args = (c.indptr, c.indices, rule.last_active, 0, rule.peer)
awareness_args = (t.seed, 1, c.flags, rule.aware, c.indptr, c.indices, 0.01, 0.1, rule.aware.copy())
out = {"nvvm": None}
for name, kernel, args in (("residents", backend._residents_kernel, resident_args),
                           ("households", backend._households_kernel, household_args),
                           ("peer_share", backend._peer_share_kernel, peer_args),
                           ("awareness", backend._awareness_kernel, awareness_args)):
    ptx, _ = cuda.compile_ptx(kernel.py_func, tuple(typeof(a) for a in args), cc=(9, 0))
    out[name] = ".entry" in ptx
    out[name + "_fused"] = ptx.count("fma.rn.f64")  # libdevice's exp and log fuse on purpose; the rules must not
print(json.dumps(out))
'''


def test_the_kernels_compile_for_a_real_gpu():
    """Typed and lowered for the CUDA target itself (sm_90), not the simulator's Python: device code has its own
    limits (two-argument min/max did not type there), and NVVM fuses multiply-adds unless told not to.  Needs
    NVVM, the CUDA toolkit's compiler, not a GPU."""
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_ENABLE_CUDASIM", "NUMBA_DISABLE_JIT")}
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", PTX], env=env, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-4000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    if found["nvvm"] is not None:
        pytest.skip(f"no CUDA toolkit (NVVM) to compile for a GPU: {found['nvvm']}")
    assert found["residents"] and found["households"] and found["peer_share"] and found["awareness"]
    # no multiply and add fused (the CPU rounds them apart): the household rule calls no exp or log
    assert found["households_fused"] == 0 and found["peer_share_fused"] == 0
