"""``twin``: the command line.

    twin run [-s SCENARIO] [key=value ...]    run a scenario, write its run folder
    twin compare [-s SCENARIO] --policy "k=v ..." [--baseline "k=v ..."] [-n N]
                                              a policy against today's, with 95% CIs
    twin sweep [-s SCENARIO] [-j JOBS] key=a,b 'key2=range(1,4)' ...
                                              every combination, in parallel → summary.csv
    twin report RUN_DIR                       redraw a run folder's report.html
    twin verify RUN_DIR [--url URL]           check a run's chain anchors
    twin scenarios                            list the shipped scenarios
    twin bench [--json] [--full]              speed and memory, side by side

Overrides are Hydra's ``key=value`` syntax, e.g.
``twin run community.households=500 sim.days=90 seed=7``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path


def _out_dir(cfg) -> Path:
    if cfg.out:
        return Path(cfg.out)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("outputs") / f"{cfg.name}-{stamp}"


def cmd_run(args) -> int:
    from twin.config import load_scenario
    from twin.engine import Twin

    cfg = load_scenario(args.scenario, args.overrides)
    print(f"community-twin: scenario {cfg.name!r}, {cfg.community.households:,} households, "
          f"{cfg.sim.days} days, seed {cfg.seed}", file=sys.stderr)
    result = Twin(cfg).run()
    out = result.save(_out_dir(cfg))
    print(result.table())
    print(f"\nrun folder: {out}")
    return 0


def cmd_compare(args) -> int:
    from twin.compare import compare

    table = compare(args.scenario, args.baseline.split(), args.policy.split(), replications=args.replications,
                    out=args.out)
    print(table)
    return 0


def cmd_sweep(args) -> int:
    import datetime as dt

    from twin.sweep import sweep

    out = args.out or Path("outputs") / f"sweep-{args.scenario}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    table = sweep(args.scenario, args.overrides, jobs=args.jobs, out=out)
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    print(f"\nsweep folder: {out}")
    return 0


def cmd_report(args) -> int:
    from twin.results import Result

    path = Result.load(args.run_dir).report(Path(args.run_dir) / "report.html")
    print(path)
    return 0


def cmd_verify(args) -> int:
    """Check a run folder's log against the chain the operator names (never the folder's say-so).

    Exit 0: verified on chain; 1: a mismatch; 6: no mismatch, but no chain was checked (a run
    anchored on the in-process EVM, or no chain named); 5: the chain could not be asked (no node,
    another chain, no registry); 2: a bad option.  Errors are one line on stderr and, for the
    chain, a JSON object on stdout.
    """
    from contracts.evidence import ChainError, ExpectationError, verify_run

    keys = ("url", "chain_id", "registry", "account")
    try:
        expect = json.loads(Path(args.expect).read_text()) if args.expect else {}
        if not isinstance(expect, dict) or set(expect) - set(keys):
            raise ExpectationError(f"{args.expect} must be a JSON object with keys among {', '.join(keys)}")
        expect.update({k: getattr(args, k) for k in keys if getattr(args, k) is not None})
        report = verify_run(args.run_dir, **expect)
    except ChainError as e:
        print(f"twin: verify: {e}", file=sys.stderr)
        print(json.dumps({"status": "chain_error", "ok": False, "chain_checked": False, "error": str(e), **expect}))
        return 5
    except ExpectationError as e:
        print(f"twin: verify: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, default=str))
    if report["status"] == "unchecked":
        print("twin: verify: the chain was not checked (give --url, --chain-id, --registry and --account, "
              "or --expect FILE; a run anchored on the in-process EVM has no chain left)", file=sys.stderr)
    return {"verified": 0, "mismatch": 1, "unchecked": 6}[report["status"]]


def cmd_scenarios(args) -> int:
    from twin.config import scenarios

    print("\n".join(scenarios()))
    return 0


def main(argv=None) -> int:
    from twin.config import ConfigError

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own flags (--json, --full) go to the benchmark suite untouched
        from twin.bench.suite import main as bench_main

        return bench_main(argv[1:])

    parser = argparse.ArgumentParser(prog="twin", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a scenario and write its run folder")
    p.add_argument("-s", "--scenario", default="default")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, key=value")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("compare", help="compare a policy with the baseline over replications")
    p.add_argument("-s", "--scenario", default="default")
    p.add_argument("--baseline", default="", help="overrides for the baseline arm (quoted, space-separated)")
    p.add_argument("--policy", required=True, help="overrides for the policy arm (quoted, space-separated)")
    p.add_argument("-n", "--replications", type=int, default=10)
    p.add_argument("--out", default=None, help="write compare.json and compare.html here")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("sweep", help="run every combination of sweep overrides (key=a,b or key=range(1,4))")
    p.add_argument("-s", "--scenario", default="default")
    p.add_argument("-j", "--jobs", type=int, default=-1, help="parallel runs (default: one per core)")
    p.add_argument("--out", default=None)
    p.add_argument("overrides", nargs="*")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("report", help="redraw a run folder's report.html")
    p.add_argument("run_dir")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("verify", help="check a run's log against the chain the operator names",
                       description=cmd_verify.__doc__.split("\n\n")[1].replace("\n    ", " ").strip())
    p.add_argument("run_dir")
    p.add_argument("--url", default=None, help="the JSON-RPC node the run anchored on")
    p.add_argument("--chain-id", dest="chain_id", type=int, default=None, help="the chain id it must serve")
    p.add_argument("--registry", default=None, help="address of the run's EvidenceRegistry")
    p.add_argument("--account", default=None, help="address of the account that anchored")
    p.add_argument("--expect", default=None, help="a JSON file with url, chain_id, registry, account (flags win)")
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("scenarios", help="list the shipped scenarios")
    p.set_defaults(func=cmd_scenarios)
    sub.add_parser("bench", help="benchmarks (table; --json for one JSON line; --full for large sizes)")
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"twin: configuration error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"twin: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
