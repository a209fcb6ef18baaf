"""The live server under load on loopback: durable writes/s and p50/p99 latency with group commit, with one
transaction per request, beside a no-op endpoint and reads; a table, then one JSON object.

A thin script over :func:`twin.bench.serve.run`, which ``twin bench`` also runs (uses ``wrk`` when installed,
else a multi-process Python client, and says which).

    python benchmarks/serve.py [--seconds 5] [--client auto|wrk|python] [--residents 1000]
"""
import sys

from twin.bench.serve import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
