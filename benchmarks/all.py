"""Every benchmark, as ``twin bench`` runs them: a table, and with ``--json`` one JSON object as the last line.

    python benchmarks/all.py [--json] [--full] [--no-cold]
"""
import sys

from twin.bench.suite import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
