"""Engine speed and memory: resident agent-steps per second, the community-year, bytes per resident.

* :func:`resident_steps` — the resident rule alone (``ResidentRule.decide``:
  ``peer_share`` then ``residents_day``, the call the engine makes once per
  simulated day) on a community of ``n`` residents, with 1 or more numba threads.  One resident
  agent-step is one resident in one tick, so the rate is residents x ticks per
  day x days / seconds.  The arrays handed to the rule are built as the Twin
  builds them (the community, the resident state, the activity table of the
  default policies), two of the eight topic slots open.
* :func:`community_year` — wall time of ``Twin(cfg).run()`` of the default
  scenario (build included): warm (in this process, after a first run),
  cold (a fresh process whose ``NUMBA_CACHE_DIR`` is an empty directory, so
  every kernel is compiled, on every core: ``twin.parallel_compile``; beside it the
  same on one core, for the ratio) and cache-warm (a fresh process on that populated
  cache); the fresh processes also report their peak RSS and their start
  (``start_cold_s``, ``start_cache_warm_s``: imports, config, the community
  built and the first day run, every kernel a day calls compiled or loaded), and
  where a warm year's time goes, by step phase.  Peak RSS is the process's ``VmHWM``
  (``/proc/self/status``): on Linux ``resource.getrusage``'s ``ru_maxrss``
  survives ``fork`` + ``exec``, so a child of a large benchmark process would
  report its parent's peak (it is kept as ``ru_maxrss_mb``).
* :func:`state_bytes` — bytes per resident of the engine's state: the
  community's arrays plus the Twin's per-resident arrays (the headline), with
  the per-household, per-building and services' state beside it.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
FULL_SIZES = DEFAULT_SIZES + (10_000_000,)
MEAN_HOUSEHOLD = 2.57        # residents per household in the default community (measured)
HOUSEHOLDS_PER_BUILDING = 50  # as in the default scenario (2,000 households, 40 buildings)
OPEN_TOPICS = 2
BYTES_PER_RESIDENT_TO_BUILD = 700  # peak memory of building a community (measured ~300 B; margin)


def scenario_for(n_residents: int, extra=()):
    """The default scenario scaled to about ``n_residents`` residents."""
    from twin.config import load_scenario

    households = max(1, round(n_residents / MEAN_HOUSEHOLD))
    buildings = max(1, households // HOUSEHOLDS_PER_BUILDING)
    return load_scenario("default", [f"community.households={households}", f"community.buildings={buildings}",
                                     "progress=false", *extra])


# ---------------------------------------------------------------- resident rule
class _RuleBench:
    """The engine's own :class:`agents.residents.ResidentRule` on a community, with two topics open."""

    def __init__(self, cfg):
        from agents.community import build_community
        from agents.residents import ResidentRule
        from policies import PolicySet
        from twin.engine.topics import MAX_OPEN

        self.cfg = cfg
        c = build_community(cfg.community, int(cfg.seed), cfg.facilities.elevator_share)
        self.rule = ResidentRule(c, cfg.residents, PolicySet.from_config(cfg.policies).points,
                                 cfg.sim.tick_minutes, int(cfg.seed), MAX_OPEN)
        self.n = c.n_residents
        self.ticks_per_day = 1440 // cfg.sim.tick_minutes
        self.balances = np.zeros(self.n, np.int64)
        self.voted = np.zeros(self.n, np.uint8)
        self.open_slots = np.full(MAX_OPEN, -1, np.int64)
        self.open_slots[:OPEN_TOPICS] = np.arange(OPEN_TOPICS)

    def day(self, d: int) -> None:
        """One simulated day of the resident rule (the call ``Twin`` makes per day)."""
        if d % 7 == 0:
            self.voted[:] = 0  # topics turn over about weekly
        self.rule.decide(d, self.balances, self.open_slots, self.voted)


def _days_for(n: int) -> int:
    return max(2, min(30, int(3e6 // n)))


def resident_steps(n_residents: int, threads=(1, 2), repeats: int = 2) -> dict:
    """Resident agent-steps per second at ``n_residents``, for each thread count."""
    import numba

    rule = _RuleBench(scenario_for(n_residents))
    rule.day(0)  # compile or load the kernels
    days = _days_for(rule.n)
    out = {"residents": rule.n, "days": days, "ticks_per_day": rule.ticks_per_day}
    before = numba.get_num_threads()
    try:
        for k in threads:
            if k > numba.config.NUMBA_NUM_THREADS:
                continue
            numba.set_num_threads(k)
            best = math.inf
            for rep in range(repeats):
                t0 = time.perf_counter()
                for d in range(1 + rep * days, 1 + (rep + 1) * days):
                    rule.day(d)
                best = min(best, time.perf_counter() - t0)
            out[f"steps_per_s_{k}t"] = rule.n * rule.ticks_per_day * days / best
            out[f"ns_per_resident_day_{k}t"] = 1e9 * best / (rule.n * days)
    finally:
        numba.set_num_threads(before)
    return out


def memory_available_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------- community year
_YEAR_SCRIPT = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import twin
from twin.engine import Twin
cfg = twin.load_scenario("default", ["progress=false"])
t1 = time.perf_counter()
tw = Twin(cfg)
tw.step()  # the first day: every kernel a day calls compiled or loaded
t_start = time.perf_counter()
tw.run()
t2 = time.perf_counter()
rusage_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
try:  # this process's own high-water mark: ru_maxrss carries the parent's across fork + exec
    hwm_mb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024.0
except (OSError, StopIteration):
    hwm_mb = rusage_mb
print(json.dumps({"import_s": t1 - t0, "start_s": t_start - t0, "build_run_s": t2 - t1, "total_s": t2 - t0,
                  "peak_rss_mb": hwm_mb,
                  "ru_maxrss_mb": rusage_mb, "residents": tw.community.n_residents}))
"""


def _fresh_process_year(cache_dir: str, compile_jobs: int | None = None) -> dict:
    """The default year in a fresh process on ``cache_dir``; ``compile_jobs``: processes compiling a cold cache
    (default: as a user's first run, every core or ``COMMUNITY_TWIN_COMPILE_JOBS``).

    ``cache_dir`` holds the composed configs too (``twin._config_cache``, under
    ``XDG_CACHE_HOME``): a cold process composes its scenario, a warm one reads it back.
    """
    from twin.parallel_compile import JOBS_ENV

    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, XDG_CACHE_HOME=cache_dir)
    if compile_jobs:
        env[JOBS_ENV] = str(compile_jobs)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _YEAR_SCRIPT], env=env, capture_output=True, text=True, check=False,
                          cwd=str(Path(__file__).resolve().parents[2]), timeout=1800)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"the community-year subprocess failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    return out


def _phase_times(tw) -> dict:
    """Wrap the Twin's step phases to time them (instance attributes shadow the methods)."""
    spent = {}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
        return wrapper

    for name in ("_sensors", "_repair_demand", "_residents", "_flush_transitions", "_day_end"):
        if hasattr(tw, name):
            setattr(tw, name, timed(name.strip("_"), getattr(tw, name)))
    tw.topics.step = timed("topics", tw.topics.step)
    return spent


def community_year(cold: bool = True) -> dict:
    """Warm wall time of the default year here; cold and cache-warm times in fresh processes."""
    from twin.config import load_scenario
    from twin.engine import Twin

    cfg = load_scenario("default", ["progress=false"])
    Twin(cfg).run()  # warm: kernels compiled or loaded
    best = math.inf
    for _ in range(2):
        t0 = time.perf_counter()
        tw = Twin(cfg)
        tw.run()
        best = min(best, time.perf_counter() - t0)
    out = {"community_year_warm_s": best, "residents": tw.community.n_residents, "days": cfg.sim.days}
    tw = Twin(cfg)
    spent = _phase_times(tw)
    t0 = time.perf_counter()
    tw.run()
    total = time.perf_counter() - t0
    spent["build"] = tw.timings["build_s"]
    spent["other (kpis, result)"] = total - sum(v for k, v in spent.items() if k != "build")
    out["community_year_phases_s"] = spent
    if cold:
        from twin.parallel_compile import jobs_for, load

        with tempfile.TemporaryDirectory(prefix="twin-numba-cache-") as cache:
            c = _fresh_process_year(cache)
            w = _fresh_process_year(cache)
        with tempfile.TemporaryDirectory(prefix="twin-numba-cache-") as cache:
            one = _fresh_process_year(cache, compile_jobs=1)  # side by side: compiling on one core, as before
        out.update({"start_cold_s": c["start_s"], "start_cache_warm_s": w["start_s"],
                    "community_year_cold_s": c["total_s"], "community_year_cold_process_s": c["process_wall_s"],
                    "community_year_cold_one_process_s": one["total_s"], "compile_jobs": jobs_for(load()),
                    "cold_speedup_parallel_compile": one["total_s"] / c["total_s"],
                    "community_year_cache_warm_s": w["total_s"],
                    "community_year_cache_warm_process_s": w["process_wall_s"],
                    "community_year_cache_warm_run_s": w["build_run_s"],
                    "peak_rss_mb": w["peak_rss_mb"], "peak_rss_mb_cold": c["peak_rss_mb"],
                    "ru_maxrss_mb": w["ru_maxrss_mb"]})
    return out


# ---------------------------------------------------------------- memory
def state_bytes(cfg=None) -> dict:
    """Bytes per resident of the engine's state (community arrays + the Twin's per-resident arrays)."""
    from twin.config import load_scenario
    from twin.engine import Twin

    tw = Twin(cfg or load_scenario("default", ["progress=false"]))
    c = tw.community
    n, H, B = c.n_residents, c.n_households, c.n_buildings
    per = {"resident": 0, "household": 0, "building": 0}
    arrays = [a for a in vars(tw).values() if isinstance(a, np.ndarray) and a is not tw._hourly_use]
    arrays += [a for a in vars(tw.topics).values() if isinstance(a, np.ndarray) and a.shape[:1] == (n,)]
    rule = tw.rule  # its persistent state; its output slots are one day's scratch, reported apart
    arrays += [rule.fatigue, rule.peer, rule.last_active]
    arrays = list({id(a): a for a in arrays}.values())  # an array shared by two owners counts once
    scratch = sum(a.nbytes for a in (rule.act, rule.redeem, rule.help, rule.help_minutes, rule.help_t, rule.vote,
                                     rule.vote_t, tw._hourly_use))
    for a in arrays:
        kind = {n: "resident", H: "household", B: "building"}.get(a.shape[0] if a.ndim else -1)
        if kind:
            per[kind] += a.nbytes
    services = 0
    for s in (tw.services.points, tw.services.timebank, tw.services.voting, tw.services.points.ledger,
              tw.services.timebank.ledger):
        services += sum(a.nbytes for a in vars(s).values() if isinstance(a, np.ndarray))
    community = c.nbytes()
    return {
        "bytes_per_resident": (community + per["resident"]) / n,
        "bytes_per_resident_community": community / n,
        "bytes_per_resident_twin_arrays": per["resident"] / n,
        "bytes_per_resident_with_households_buildings": (community + sum(per.values())) / n,
        "bytes_per_resident_services": services / n,
        "bytes_per_resident_daily_scratch": scratch / n,
        "residents": n,
    }
