"""The GPU backend's speed (``sim.engine: cuda``): resident agent-steps/s and a city-year on one device.

Runs only where ``numba.cuda.is_available()`` finds a real GPU (the CUDA
simulator does not count: its speed says nothing); anywhere else :func:`run`
prints a note and returns ``{}``.

* :func:`resident_steps` — :meth:`twin.engine.cuda.DeviceResidentRule.decide`,
  the call the engine makes once a day (peer share and decisions on the
  device, the day's decisions copied back), at ``n`` residents; one resident
  agent-step is one resident in one tick, as in ``twin.bench.engine``.  Also
  the two kernels alone (``kernel_steps_per_s``: no host transfers).
* :func:`city_year` — a year of a city's per-agent rules on the device: each
  day the households' meters (their readings back to the host, as the
  detectors need) and the residents' decisions.  Communities are independent
  populations, so a city of ``n`` residents is built as one population of
  ``n``.  The services (ledger, tickets, ballots) run on the CPU for either
  engine and are not in this figure; ``twin.bench.engine``'s community-year
  measures the whole twin.
* :func:`log_check` — a small community's event log on the device against
  the CPU's: a GPU's ``exp``/``log`` and fused multiply-adds may round a
  float's last bit differently, and this says whether the logs still match.

``python -m twin.bench.gpu [--residents N] [--days D]`` prints the JSON.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time

import numpy as np

CITY_RESIDENTS = 10_000_000
STEP_SIZES = (1_000_000, 10_000_000)


def _note(msg: str) -> None:
    print(f"[bench gpu] {msg}", file=sys.stderr, flush=True)


def gpu_name() -> str | None:
    """The device's name when a real CUDA GPU is present, else None."""
    from twin.engine import cuda as backend

    if backend.simulated() or not backend.cuda.is_available():
        return None
    name = backend.cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)


@functools.lru_cache(maxsize=2)
def _rule(n_residents: int):
    """A community of about ``n_residents`` and its resident rule on the device (built once per size: the
    city-year reuses the largest rule benchmark's)."""
    from agents.community import build_community
    from policies import PolicySet
    from twin.bench.engine import scenario_for
    from twin.engine.cuda import DeviceResidentRule
    from twin.engine.topics import MAX_OPEN

    cfg = scenario_for(n_residents)
    c = build_community(cfg.community, int(cfg.seed), cfg.facilities.elevator_share)
    rule = DeviceResidentRule(c, cfg.residents, PolicySet.from_config(cfg.policies).points, cfg.sim.tick_minutes,
                              int(cfg.seed), MAX_OPEN)
    return cfg, c, rule


def resident_steps(n_residents: int, days: int = 20) -> dict:
    """Resident agent-steps per second on the device at ``n_residents``: the engine's call, and the kernels alone."""
    from twin.bench.engine import OPEN_TOPICS
    from twin.engine import cuda as backend

    cfg, c, rule = _rule(n_residents)
    n, ticks = c.n_residents, 1440 // cfg.sim.tick_minutes
    balances, voted = np.zeros(n, np.int64), np.zeros(n, np.uint8)
    open_slots = np.full(rule.vote.shape[1], -1, np.int64)
    open_slots[:OPEN_TOPICS] = np.arange(OPEN_TOPICS)
    rule.decide(0, balances, open_slots, voted)  # compile
    t0 = time.perf_counter()
    for d in range(1, days + 1):
        rule.decide(d, balances, open_slots, voted)
    decide_s = time.perf_counter() - t0
    # the kernels alone, on arrays already on the device
    on = [backend.cuda.to_device(a) for a in (balances, open_slots, voted)]
    backend.cuda.synchronize()
    t0 = time.perf_counter()
    for d in range(1, days + 1):
        rule.launch(d, *on)
    backend.cuda.synchronize()
    kernel_s = time.perf_counter() - t0
    return {"residents": n, "days": days, "ticks_per_day": ticks, "steps_per_s": n * ticks * days / decide_s,
            "kernel_steps_per_s": n * ticks * days / kernel_s, "ms_per_day": 1e3 * decide_s / days}


def city_year(n_residents: int = CITY_RESIDENTS, days: int = 365) -> dict:
    """Wall time of ``days`` days of a city's per-agent rules on the device (households' meters, residents)."""
    from twin.bench.engine import OPEN_TOPICS
    from twin.engine import cuda as backend

    cfg, c, rule = _rule(n_residents)
    sc, H, K = cfg.sensors, c.n_households, 1440 // cfg.sim.tick_minutes
    state = dict(incap_since=np.full(H, -1.0), care_until=np.zeros(H), fault=np.zeros(H, np.int8),
                 fault_until=np.zeros(H), last_reading=np.zeros(H, np.float32))
    outs = (np.empty((H, K), np.float32), np.empty((H, K)), np.empty((H, K)), np.empty(H), np.empty(H), np.empty(H))
    balances, voted = np.zeros(c.n_residents, np.int64), np.zeros(c.n_residents, np.uint8)
    open_slots = np.full(rule.vote.shape[1], -1, np.int64)
    open_slots[:OPEN_TOPICS] = np.arange(OPEN_TOPICS)

    def day(d):
        backend.households_day(
            int(cfg.seed), d, float(cfg.sim.tick_minutes), c.hh_alone_elder, c.hh_size, state["incap_since"],
            state["care_until"], state["fault"], state["fault_until"], state["last_reading"],
            sc.incapacitation_per_elder_year / 365.0, sc.away_day_prob, sc.water_litres_per_hour, sc.kwh_per_hour,
            sc.dropout_per_device_day, sc.stuck_per_device_day, sc.drift_per_device_day, sc.repair_device_days,
            sc.faults, sc.smoke_per_household_year / 365.0, *outs)
        t = time.perf_counter()
        rule.decide(d, balances, open_slots, voted)
        return time.perf_counter() - t

    day(0)  # compile
    t0 = time.perf_counter()
    residents_s = sum(day(d) for d in range(1, days + 1))
    wall = time.perf_counter() - t0
    return {"residents": c.n_residents, "households": H, "days": days, "wall_s": wall,
            "residents_s": residents_s, "households_s": wall - residents_s,
            "year_s": wall * 365.0 / days}


def log_check(households: int = 300, days: int = 20) -> dict:
    """Whether a small community's event log on the device equals the CPU's (same seed)."""
    import hashlib

    import twin

    logs = {}
    for engine in ("cpu", "cuda"):
        cfg = twin.load_scenario("default", [f"community.households={households}", "community.buildings=6",
                                             f"sim.days={days}", "progress=false", f"sim.engine={engine}"])
        logs[engine] = twin.Twin(cfg).run().event_log
    a, b = logs["cpu"], logs["cuda"]
    same = len(a) == len(b) and hashlib.sha256(a.tobytes()).digest() == hashlib.sha256(b.tobytes()).digest()
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return {"households": households, "days": days, "events_cpu": len(a), "events_cuda": len(b), "same": same,
            "first_difference": int(differ[0]) if len(differ) else (None if same else n)}


def run(city_residents: int = CITY_RESIDENTS, days: int = 365, sizes=STEP_SIZES) -> dict:
    """Every GPU figure, or ``{}`` (with a note) where there is no real GPU."""
    name = gpu_name()
    if name is None:
        _note("no CUDA GPU here (or only the simulator): GPU benchmark skipped")
        return {}
    t0 = time.perf_counter()
    out = {"device": name}
    _note(f"on {name}: event log on the device vs the CPU ...")
    out["log_check"] = log_check()
    out["gpu_log_matches_cpu"] = out["log_check"]["same"]
    steps = []
    for n in sizes:
        _note(f"resident rule at {n:,} residents ...")
        steps.append(resident_steps(n))
    out["resident_steps"] = steps
    out["gpu_resident_agent_steps_per_s"] = max(s["steps_per_s"] for s in steps)
    out["gpu_resident_kernel_steps_per_s"] = max(s["kernel_steps_per_s"] for s in steps)
    _note(f"city-year at {city_residents:,} residents ({days} days) ...")
    out["city_year"] = city_year(city_residents, days)
    out["gpu_city_year_s"] = out["city_year"]["year_s"]
    out["bench_s"] = time.perf_counter() - t0
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twin.bench.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--residents", type=int, default=CITY_RESIDENTS, help="residents of the city-year")
    parser.add_argument("--days", type=int, default=365, help="days measured (the year is scaled from them)")
    args = parser.parse_args(argv)
    for key in ("residents", "days"):
        if getattr(args, key) < 1:
            parser.error(f"--{key} = {getattr(args, key)} is not allowed; expected an integer >= 1")
    print(json.dumps(run(args.residents, args.days)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
