"""Print the chain benchmark (gas per operation, transactions per second on the embedded EVM) as JSON.

    python benchmarks/chain.py
"""
import json

from twin.bench.chain import run

if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
