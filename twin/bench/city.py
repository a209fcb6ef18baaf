"""The city benchmark: wall time against the number of shards, and residents per second per core.

``run()`` runs one generated city (``COMMUNITIES`` communities from one template,
``DAYS`` days, a district crew) on a local Ray instance with 1, 2 and 4 shards (one
actor each), and checks that every shard count gives the same event logs.  The time
of a run is split into setting up (actors started, communities built) and the day
loop; the first day is left out of the loop's figure because each fresh actor
process loads the compiled kernels on it.

``city_residents_per_s_per_core`` is resident-days simulated per second of the day
loop, divided by the Ray instance's cores (a shard's kernels may use more than one
thread), from the run with as many shards as cores.  ``shards_scaling`` is the day loop's
seconds by shard count.  More shards than cores only adds exchange overhead: on a
2-core machine the 4-shard run shows what sharding costs, not what it gains.
About a minute on 2 cores, most of it starting actor processes.
"""
from __future__ import annotations

import time

COMMUNITIES = 4
DAYS = 30
SHARDS = (1, 2, 4)
TEMPLATE = ["community.households=2000", "community.buildings=40", "staff.technicians=2"]  # default-sized, short-staffed


def demo_city():
    """The benchmark's city: identical templates, each its own seed, a district crew of two."""
    from twin.city import city_config

    return city_config({"name": "bench_city", "seed": 1, "days": DAYS,
                        "communities": [{"label": "bench", "count": COMMUNITIES, "overrides": TEMPLATE}],
                        "district": {"technicians": 2}})


def run(shards=SHARDS) -> dict | None:
    """The section's figures; None where Ray is not installed (the suite then leaves the section out)."""
    import importlib.util

    from twin.city import cores, run_city
    from twin.sweep import ray_session

    if importlib.util.find_spec("ray") is None:
        return None
    city = demo_city()
    n_cores = cores()
    by_shards, logs = {}, None
    t0 = time.perf_counter()
    with ray_session() as ray:
        ray_cpus = int(ray.cluster_resources().get("CPU", n_cores))
        for n in shards:
            r = run_city(city, backend="ray", shards=n)
            these = [c["events"].tobytes() for c in r["communities"]]
            logs = these if logs is None else logs
            loop_s = sum(r["day_s"][1:])
            resident_days = r["kpis"]["residents"] * (city.days - 1)
            by_shards[n] = {"wall_s": r["wall_s"], "setup_s": r["setup_s"], "first_day_s": r["day_s"][0],
                            "days_loop_s": loop_s,
                            "residents_per_s_per_core": resident_days / loop_s / ray_cpus,
                            "same_logs_as_first": these == logs}
    headline = by_shards.get(min(max(shards), ray_cpus)) or by_shards[shards[0]]
    return {"communities": len(city.communities), "residents": r["kpis"]["residents"], "days": city.days,
            "cores": n_cores, "ray_cpus": ray_cpus, "by_shards": by_shards,
            "shards_scaling": {str(n): v["days_loop_s"] for n, v in by_shards.items()},
            "city_residents_per_s_per_core": headline["residents_per_s_per_core"],
            "city_same_logs_any_shards": all(v["same_logs_as_first"] for v in by_shards.values()),
            "note": f"local Ray on this machine: {n_cores} cores, so shard counts above {n_cores} share them",
            "bench_s": time.perf_counter() - t0}


def table_rows(r: dict) -> list[tuple[str, str]]:
    """Rows for ``twin bench``'s table."""
    rows = [(f"city on local Ray: {r['communities']} communities, {r['residents']:,} residents, {r['days']} d "
             f"({r['cores']} cores)", "day loop s by shards: " + ", ".join(
                 f"{n}: {v['days_loop_s']:.2f}" for n, v in r["by_shards"].items()))]
    rows.append(("  resident-days/s per core; same logs for every shard count",
                 f"{r['city_residents_per_s_per_core']:,.0f}; {'yes' if r['city_same_logs_any_shards'] else 'NO'}"))
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2, default=float))
