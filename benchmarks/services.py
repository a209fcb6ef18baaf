"""Service throughput (ledger transfers, ticket transitions): prints one JSON object.

A thin script over :func:`twin.bench.services.run`, which ``twin bench`` also runs.
"""
import json

from twin.bench.services import run

if __name__ == "__main__":
    print(json.dumps(run()))
