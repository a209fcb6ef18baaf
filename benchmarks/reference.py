"""The twin side by side with its reference models: Mesa (per simulated day) and SimPy (repair desk events/s).

A thin script over :mod:`twin.bench.reference` (which ``twin bench`` also runs); prints one JSON object.

    python benchmarks/reference.py [--residents 10000] [--mesa-days 3]
"""
import argparse
import json

from twin.bench import reference
from twin.bench.suite import _jsonable

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--residents", type=int, default=10_000)
    p.add_argument("--mesa-days", type=int, default=3)
    a = p.parse_args()
    print(json.dumps(_jsonable({"mesa": reference.versus_mesa(a.residents, mesa_days=a.mesa_days),
                                "simpy": reference.versus_simpy()})))
