"""Engine speed and memory: resident agent-steps/s, the default community-year, bytes per resident.

A thin script over :mod:`twin.bench.engine` (which ``twin bench`` also runs); prints one JSON object.

    python benchmarks/engine.py [--full] [--no-cold]
"""
import argparse
import json

from twin.bench import engine
from twin.bench.suite import _jsonable

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--full", action="store_true", help="add 10^7 residents")
    p.add_argument("--no-cold", action="store_true", help="skip the fresh-process runs")
    a = p.parse_args()
    sizes = engine.FULL_SIZES if a.full else engine.DEFAULT_SIZES
    print(json.dumps(_jsonable({"resident_steps": [engine.resident_steps(n) for n in sizes],
                                "community_year": engine.community_year(cold=not a.no_cold),
                                "memory": engine.state_bytes()})))
