"""``twin bench [--json] [--full]``: every benchmark, a table for people, optionally one JSON line.

Sections (each a module of ``twin.bench``):

1. resident agent-steps per second at 10^4, 10^5, 10^6 residents (10^7 with
   ``--full`` when the memory is there), 1 and 2 threads (``engine``);
2. the default community-year: warm, cold (JIT compilation in a fresh process
   on an empty numba cache) and cache-warm, and where a warm year's time goes
   (``engine``);
3. the twin vs the Mesa reference at 10,000 residents, per simulated day
   (``reference``);
4. the twin's repair queue vs the SimPy desk, desk events per second (``reference``);
5. memory: bytes of state per resident and the default run's peak RSS (``engine``);
6. service throughput (``services``, when present) and, with ``--full``, the
   chain (``chain``);
7. the live server on loopback: durable writes/s and latency, group commit vs one
   transaction per request, beside a no-op endpoint and reads (``serve``, ~1 minute);
8. the live bridge: readings/s from Sparkplug B messages into the detectors' arrays, in
   process, through Mosquitto and the embedded broker; publish-to-detector latency;
   replay speed (``ingest``, ~1 minute);
9. a city on local Ray: day-loop time by shard count (1, 2, 4) and resident-days per
   second per core (``city``, ~1 minute; left out without Ray);
10. the GPU backend where a real GPU is present: resident agent-steps/s and a city-year
   (``gpu``; left out elsewhere).

The JSON object (printed as the last line with ``--json``) holds at least
``resident_agent_steps_per_s``, ``speedup_vs_mesa``, ``community_year_warm_s``,
``community_year_cold_s``, ``start_cold_s``, ``start_cache_warm_s``, ``bytes_per_resident``, ``peak_rss_mb`` and
``ledger_transfers_per_s``, plus each section's details and the goals met.
The default run stays under 8 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import sys
import time

#: The goals (not tests): key -> (comparison, target). The engine's are the scale issue's: 500x
#: the Mesa reference, a warm default year under 0.4 s, a cold start (a fresh process to its
#: first simulated day: compiling, or loading the compiled kernels) under 15 s with the numba
#: cache empty and under 2 s with it warm.
GOALS = {
    "speedup_vs_mesa": (">=", 500.0),
    "resident_agent_steps_per_s": (">=", 1e8),
    "community_year_warm_s": ("<", 0.4),
    "start_cold_s": ("<", 15.0),
    "start_cache_warm_s": ("<", 2.0),
    "bytes_per_resident": ("<=", 128.0),
}


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _optional(module: str, **kwargs):
    """``twin.bench.<module>.run(**kwargs)`` if that module exists, else None."""
    try:
        mod = importlib.import_module(f"twin.bench.{module}")
    except ModuleNotFoundError as e:
        if e.name == f"twin.bench.{module}":
            return None
        raise
    return mod.run(**kwargs) if hasattr(mod, "run") else None


def run(full: bool = False, cold: bool = True) -> dict:
    """Run every section; returns the flat figures plus a dict per section."""
    import numba

    from twin.bench import engine, reference

    out = {"machine": {"cpus": os.cpu_count(), "numba_threads": numba.config.NUMBA_NUM_THREADS,
                       "python": platform.python_version(), "numba": numba.__version__,
                       "platform": platform.platform()}, "full": full}
    t_start = time.perf_counter()

    sizes = engine.FULL_SIZES if full else engine.DEFAULT_SIZES
    steps = []
    for n in sizes:
        need = n * engine.BYTES_PER_RESIDENT_TO_BUILD
        if n > engine.DEFAULT_SIZES[-1] and engine.memory_available_bytes() < need:
            _log(f"resident rule at {n:,}: skipped, needs ~{need / 2**30:.1f} GiB")
            steps.append({"residents": n, "skipped": "not enough memory"})
            continue
        _log(f"resident rule at {n:,} residents ...")
        steps.append(engine.resident_steps(n))
    out["resident_steps"] = steps
    rates = [v for s in steps for k, v in s.items() if k.startswith("steps_per_s_")]
    out["resident_agent_steps_per_s"] = max(rates) if rates else math.nan

    _log("default community-year (warm" + (", cold, cache-warm in fresh processes" if cold else "") + ") ...")
    year = engine.community_year(cold=cold)
    out["community_year"] = year
    for key in ("community_year_warm_s", "community_year_cold_s", "community_year_cache_warm_s", "start_cold_s",
                "start_cache_warm_s", "peak_rss_mb"):
        out[key] = year.get(key, math.nan)

    _log("twin vs the Mesa reference at 10,000 residents ...")
    out["mesa"] = reference.versus_mesa()
    out["speedup_vs_mesa"] = out["mesa"]["speedup_vs_mesa"]

    _log("twin repair queue vs the SimPy desk ...")
    out["simpy"] = reference.versus_simpy()
    out["speedup_vs_simpy"] = out["simpy"]["speedup_vs_simpy"]

    _log("memory ...")
    out["memory"] = engine.state_bytes()
    out["bytes_per_resident"] = out["memory"]["bytes_per_resident"]

    _log("services ...")
    services = _optional("services")
    out["services"] = services
    out["ledger_transfers_per_s"] = (services or {}).get("ledger_transfers_per_s", math.nan)
    if full:
        _log("chain ...")
        out["chain"] = _optional("chain")

    out["serve"] = _optional("serve")  # the live server under load on loopback (twin.bench.serve)
    out.update({k: v for k, v in (out["serve"] or {}).items() if k.startswith("serve_")})
    _log("bridge ingest through Mosquitto and the embedded broker ...")
    out["ingest"] = _optional("ingest")  # the live bridge (twin.bench.ingest)
    out.update({k: v for k, v in (out["ingest"] or {}).items() if k.startswith(("ingest_", "replay_"))})

    _log("city on local Ray, 1, 2 and 4 shards ...")
    out["city"] = _optional("city")  # twin.bench.city
    out.update({k: v for k, v in (out["city"] or {}).items()
                if k in ("city_residents_per_s_per_core", "shards_scaling")})

    out["gpu"] = _optional("gpu") or None  # twin.bench.gpu: a real GPU only ({} without one)
    out.update({k: v for k, v in (out["gpu"] or {}).items() if k.startswith("gpu_")})

    out["goals"] = {k: meets(out.get(k, math.nan), *goal) for k, goal in GOALS.items()}
    out["goals"].update((out["serve"] or {}).get("goals", {}))
    out["goals"].update((out["ingest"] or {}).get("goals", {}))
    out["bench_s"] = time.perf_counter() - t_start
    return out


def meets(value, op, target) -> bool:
    """Whether a benchmark figure meets its goal (``op`` ``target``); a missing figure does not."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return {">=": value >= target, "<": value < target, "<=": value <= target}[op]


def _fmt(x, unit="") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float):
        s = f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    else:
        s = f"{x:,}"
    return s + unit


def table(r: dict) -> str:
    """The figures as an aligned table for terminals."""
    mach = r["machine"]
    rows = [("machine", f"{mach['cpus']} CPUs, numba {mach['numba']}, Python {mach['python']}")]
    for s in r["resident_steps"]:
        if "skipped" in s:
            rows.append((f"resident rule, {s['residents']:,} residents", s["skipped"]))
            continue
        rates = ", ".join(f"{k.rsplit('_', 1)[-1]}: {_fmt(v)}" for k, v in s.items() if k.startswith("steps_per_s_"))
        rows.append((f"resident agent-steps/s, {s['residents']:,} residents", rates))
    y = r["community_year"]
    rows += [
        (f"default community-year ({y['residents']:,} residents, {y['days']} days), warm",
         _fmt(y.get("community_year_warm_s"), " s")),
        (f"  cold (fresh process, empty numba cache, compiling on {y.get('compile_jobs', '?')} processes)",
         _fmt(y.get("community_year_cold_s"), " s")),
        ("  cold compiling on one process (as before)", _fmt(y.get("community_year_cold_one_process_s"), " s")
         + f"  ({_fmt(y.get('cold_speedup_parallel_compile'))}x)"),
        ("  cache-warm (fresh process, populated cache)", _fmt(y.get("community_year_cache_warm_s"), " s")),
        ("  start to the first day done: cold; cache-warm",
         f"{_fmt(y.get('start_cold_s'), ' s')}; {_fmt(y.get('start_cache_warm_s'), ' s')}"),
        ("  warm year by phase", ", ".join(f"{k} {v:.2f}" for k, v in y.get("community_year_phases_s", {}).items())),
    ]
    m = r["mesa"]
    rows += [
        (f"twin vs Mesa, {m['residents']:,} residents, s per simulated day",
         f"twin {_fmt(m['twin_s_per_day'])} ({m['twin_days']} d), Mesa {_fmt(m['mesa_s_per_day'])}"
         + f" ({m['mesa_days']} d)"),
        ("  speed-up vs Mesa (per day; a year incl. builds)",
         f"{_fmt(m['speedup_vs_mesa'])}x; {_fmt(m['speedup_vs_mesa_year_incl_build'])}x"),
    ]
    s = r["simpy"]
    rows += [
        (f"repair queue, desk events/s ({s['arrivals_per_hour']:g}/h, {s['technicians']} technicians)",
         f"twin {_fmt(s['twin_repair_events_per_s'])}, SimPy {_fmt(s['simpy_desk_events_per_s'])}"),
        ("  speed-up vs SimPy", _fmt(s["speedup_vs_simpy"], "x")),
    ]
    mem = r["memory"]
    rows += [
        ("bytes of state per resident (community + twin arrays)", _fmt(mem["bytes_per_resident"])),
        ("  + households, buildings; services' state",
         f"{_fmt(mem['bytes_per_resident_with_households_buildings'])}; {_fmt(mem['bytes_per_resident_services'])}"),
        ("peak RSS of the default run (fresh process)", _fmt(r.get("peak_rss_mb"), " MB")),
        ("ledger transfers/s (batched)", _fmt(r.get("ledger_transfers_per_s"))),
    ]
    if r.get("chain"):
        rows.append(("chain tx/s (embedded EVM)", _fmt(r["chain"].get("accepted_tx_per_s"))))
    if r.get("serve"):
        from twin.bench.serve import table_rows

        rows += table_rows(r["serve"])
    if r.get("ingest"):
        from twin.bench.ingest import table_rows as ingest_rows

        rows += ingest_rows(r["ingest"])
    if r.get("city"):
        from twin.bench.city import table_rows as city_rows

        rows += city_rows(r["city"])
    rows.append(("goals met", ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["goals"].items())))
    rows.append(("bench time", _fmt(r["bench_s"], " s")))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _jsonable(x):
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item"):
        return _jsonable(x.item())
    return x


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="twin bench", description="speed and memory, side by side with "
                                     "the Mesa and SimPy reference models")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--full", action="store_true", help="add the large sizes (10^7 residents) and the chain")
    parser.add_argument("--no-cold", action="store_true", help="skip the fresh-process (cold, cache-warm) runs")
    args = parser.parse_args(argv)
    result = run(full=args.full, cold=not args.no_cold)
    print(table(result), flush=True)
    if args.json:
        print(json.dumps(_jsonable(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
