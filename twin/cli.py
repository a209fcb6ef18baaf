"""``twin``: the command line.

    twin run [-s SCENARIO] [key=value ...]    run a scenario, write its run folder
    twin compare [-s SCENARIO] --policy "k=v ..." [--baseline "k=v ..."] [-n N]
                                              a policy against today's, with 95% CIs
    twin sweep [-s SCENARIO] [-j JOBS] [--backend joblib|ray] [--address A] key=a,b 'key2=range(1,4)' ...
                                              every combination, in parallel → summary.csv
    twin city [-s CITY] [--backend local|ray] [--shards N] [--address A] [--days D] [--out DIR]
                                              communities in shards sharing a district crew, day by day
    twin calibrate [-s SCENARIO] --param K=LOW:HIGH (--target KPI=V | --targets-csv FILE | --case NAME) [--out DIR]
                                              fit parameters to target KPIs (Optuna over replications)
    twin report DIR                           redraw a run's, comparison's or sweep's page
    twin warmup                               compile every kernel ahead of the first run
    twin verify RUN_DIR --url URL --registry ADDR --account ADDR [--chain-id N]
                                              check a run's log against the chain the operator names
    twin scenarios                            list the shipped scenarios
    twin params [--format md|csv] [--out FILE]  the parameter table (meaning, unit, default, source)
    twin viz [-s SCENARIO] [--port P] [--setup] [key=value ...]
                                              an interactive page (Mesa SolaraViz): map, KPI charts, sliders
    twin serve [--store DB] [--demo] [--roster CSV] [--host H] [--port P]
                                              the community's production server (API and pages)
    twin users add --store DB --role ROLE --id N   an account; prints its token once
    twin fork --store DB --days D --policy "k=v ..." [--baseline "k=v ..."] [-n N] [--out DIR]
                                              a what-if from production's state now, with 95% CIs
    twin devices [-s SCENARIO] [--broker URL] [--speed N] [--protocol sparkplug|json] [--days D]
                                              the twin's sensors published as hardware on MQTT
    twin emulate [-s SCENARIO] [--broker URL] [--speed N] [--days D] [--slower-technicians F] [--production "k=v ..."]
                                              a production community: devices on MQTT, people at a server's API
    twin shadow [--broker URL] [--epoch MS] [--speed N] [--record FILE] [--out DIR] [--demo]
                                              the twin beside production on live readings, compared day by day
    twin replay RECORDING [--out DIR]         re-run a recorded shadow session as fast as possible
    twin bench [--json] [--full]              speed and memory, side by side

Overrides are Hydra's ``key=value`` syntax, e.g.
``twin run community.households=500 sim.days=90 seed=7``.

Errors a user can cause (a bad key, a damaged folder, a run too big for the
machine) end in one line on stderr and an exit code of their own (``EXIT_*``
below); anything else ends in one line and a hint to rerun with ``--debug``
(or ``TWIN_DEBUG=1``), which shows the traceback.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import textwrap
from pathlib import Path

EXIT_FAILED = 1       # the command ran and its check failed (e.g. verify found a mismatch)
EXIT_USAGE = 2        # a bad option, configuration key or value (argparse uses 2 as well)
EXIT_INPUT = 3        # a folder or file to read is missing or damaged
EXIT_MEMORY = 4       # the run would not fit (refused up front) or ran out of memory
EXIT_NETWORK = 5      # a node or broker at a URL could not be reached or answered wrongly
EXIT_INTERNAL = 70    # a bug: please report it with the --debug traceback
EXIT_INTERRUPTED = 130

HELP_DESCRIPTION = ("community-twin: simulate a residential community running its real services "
                    "(repair tickets, points, time bank, voting), compare policies and draw reports.")
HELP_EPILOG = """\
Overrides are key=value pairs in Hydra's syntax, for example
  twin run community.households=500 sim.days=90 seed=7
Run `twin COMMAND --help` for a command's options. On an error, --debug (or
TWIN_DEBUG=1) shows the full traceback."""
PLOTLY_HELP = ("how reports carry plotly.js: inline (embedded, opens offline, ~5 MB a page), cdn (linked "
               "from cdn.plot.ly, ~50 kB a page) or shared (one file beside the output folders)")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help text as written, with each option's default appended where it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("%(default)" not in text and action.option_strings and action.default not in (None, False, "")
                and action.default is not argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's parser formats its help the same way."""

    def __init__(self, *args, formatter_class=_Formatter, description=None, **kwargs):
        description = textwrap.fill(description, width=79) if description else description
        super().__init__(*args, formatter_class=formatter_class, description=description, **kwargs)


def _out_dir(cfg) -> Path:
    if cfg.out:
        return Path(cfg.out)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("outputs") / f"{cfg.name}-{stamp}"


def cmd_run(args) -> int:
    from twin import memory
    from twin.config import load_scenario
    from twin.engine import Twin
    from twin.warmup import compile_notice

    cfg = load_scenario(args.scenario, args.overrides)
    args.memory_estimate = memory.check(cfg, force=args.force)
    print(f"community-twin: scenario {cfg.name!r}, {cfg.community.households:,} households, "
          f"{cfg.sim.days} days, seed {cfg.seed} (about {memory.human(args.memory_estimate)} of memory)",
          file=sys.stderr)
    with compile_notice():
        result = Twin(cfg).run()
    out = result.save(_out_dir(cfg), plotly=args.plotly)
    print(result.table())
    print(f"\nrun folder: {out}")
    return 0


def cmd_compare(args) -> int:
    from twin import memory
    from twin.compare import compare
    from twin.config import load_scenario

    both = list(args.overrides)  # for both arms; an arm's own overrides come after them and win
    baseline, policy = both + args.baseline.split(), both + args.policy.split()
    arms = [load_scenario(args.scenario, o) for o in (baseline, policy)]
    args.memory_estimate = memory.check(max(arms, key=memory.estimate_for), force=args.force)
    table = compare(args.scenario, baseline, policy, replications=args.replications, out=args.out,
                    plotly=args.plotly)
    print(table)
    if args.out:
        print(f"\ncomparison folder: {args.out}")
    return 0


def cmd_cases(args) -> int:
    """Run the case studies and print what each community reported against what the twin gives."""
    from twin import cases

    names = args.names or cases.case_names()
    chosen = [cases.load_case(n) for n in names]  # an unknown name fails before anything runs
    if args.replications < 2:
        from twin.config import ConfigError

        raise ConfigError(f"-n = {args.replications} is not allowed; expected at least 2 replications (an interval)")
    results = [cases.run_case(c, args.replications) for c in chosen]
    print(cases.table(results))
    if args.out:
        from twin.results import write_case_tables

        print(f"cases page: {cases.write_page(results, args.out, args.plotly)}")
        print("tidy tables: " + ", ".join(p.name for p in write_case_tables(results, args.out)))
    return 0


def cmd_sweep(args) -> int:
    import datetime as dt

    from twin.sweep import check_kpis, expand, format_table, sweep

    kpis = [k.strip() for k in args.kpis.split(",") if k.strip()] if args.kpis else None
    check_kpis(kpis or ())  # before the runs, not after them
    out = args.out or Path("outputs") / f"sweep-{args.scenario}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    table = sweep(args.scenario, args.overrides, jobs=args.jobs, out=out, force=args.force, plotly=args.plotly,
                  backend=args.backend, address=args.address)
    print(format_table(table, expand(args.overrides)[0], kpis=kpis, long=args.long))
    print(f"\nsweep folder: {out} (summary.csv holds every KPI; sweep.html draws them)")
    return 0


def cmd_report(args) -> int:
    from twin import compare, sweep
    from twin.results import Result

    d = Path(args.run_dir)
    if (d / "compare.json").exists():
        path = compare.redraw(d, plotly=args.plotly)
    elif (d / "sweep.json").exists() or ((d / "summary.csv").exists() and not (d / "summary.json").exists()):
        path = sweep.redraw(d, plotly=args.plotly)
    elif d.is_dir() and (d / "summary.json").exists():
        path = Result.load(d).report(d / "report.html", plotly=args.plotly)
    else:
        raise FileNotFoundError(f"{d} is not a run, comparison or sweep folder "
                                "(it holds no summary.json, compare.json or sweep.json)")
    print(path)
    return 0


def cmd_warmup(args) -> int:
    from twin.warmup import cache_location, warmup

    seconds = warmup()
    print(f"kernels ready in {seconds:.1f} s; cached in {cache_location()}")
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
    from twin.config import scenario_description, scenarios

    names = scenarios()
    width = max(map(len, names), default=0)
    for name in names:
        print(f"{name:<{width}}  {scenario_description(name)}".rstrip())
    return 0


def cmd_params(args) -> int:
    from twin.params import render

    text = render(args.format)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(args.out)
    else:
        print(text, end="")
    return 0


def cmd_viz(args) -> int:
    from twin import viz

    if args.setup:
        installed = viz.install_frontend()
        print(f"page front-end in {viz.frontend_dir()}: " + (", ".join(installed) or "already there"))
        return 0
    missing = viz.missing_frontend()
    if missing:
        print(f"twin: viz: the page's front-end is not installed ({', '.join(missing)}); the page would fetch it "
              "from a CDN. Run `twin viz --setup` once (needs npm).", file=sys.stderr)
    print(f"twin viz: http://{args.host}:{args.port}/ (Ctrl-C stops it)", file=sys.stderr)
    return viz.serve(args.scenario, args.overrides, host=args.host, port=args.port)


def _explain(e: BaseException, args) -> tuple[int, str]:
    """An exit code and one line for an error; unexpected ones get the hint to rerun with --debug."""
    from twin.config import ConfigError
    from twin.memory import NotEnoughMemory, available_bytes, human
    from twin.results import DamagedRunFolder

    command = getattr(args, "command", None)
    if isinstance(e, ConfigError):
        return EXIT_USAGE, f"configuration error: {e}"
    if isinstance(e, NotEnoughMemory):
        return EXIT_MEMORY, f"not enough memory: {e}"
    if isinstance(e, MemoryError):
        estimate = getattr(args, "memory_estimate", None)
        told = f"it was estimated at {human(estimate)}; " if estimate else ""
        return EXIT_MEMORY, (f"ran out of memory ({told}{human(available_bytes())} available now). "
                             "Use fewer households or days.")
    if isinstance(e, DamagedRunFolder):
        return EXIT_INPUT, f"damaged file: {e}"
    from twin.services.community import ReplayMismatch
    from twin.services.reasons import ServiceError
    from twin.services.store import StoreError

    if isinstance(e, (StoreError, ReplayMismatch)):
        return EXIT_INPUT, f"store: {_one_line(e)}"
    if command in ("serve", "users", "devices", "shadow", "replay", "emulate") and isinstance(e, (ServiceError, ValueError)):
        return EXIT_USAGE, f"{command}: {_one_line(e)}"
    if any(c.__module__.split(".")[0] in ("web3", "requests", "urllib3", "aiohttp", "paho")
           for c in type(e).__mro__) or isinstance(e, ConnectionError):
        return EXIT_NETWORK, f"{command or 'twin'}: cannot reach or use the node: {_one_line(e)}"
    if isinstance(e, OSError) and e.filename is not None:
        return EXIT_INPUT, f"{e.strerror or _one_line(e)}: {e.filename}"
    if isinstance(e, FileNotFoundError):
        return EXIT_INPUT, _one_line(e)
    if command in ("report", "verify") and isinstance(e, (OSError, ValueError, KeyError, EOFError)):
        # reading a folder someone else wrote: a file in it is not what this version expects
        what = f"missing entry {e.args[0]!r}" if isinstance(e, KeyError) and e.args else _one_line(e)
        return EXIT_INPUT, f"cannot {command} {getattr(args, 'run_dir', '')}: {what}"
    return EXIT_INTERNAL, (f"internal error: {type(e).__name__}: {_one_line(e)} "
                           "(rerun with --debug, or TWIN_DEBUG=1, to see the traceback)")


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (text[:300] + "…" if len(text) > 300 else text) or type(e).__name__


def _guarded(func, args, debug: bool) -> int:
    """Run a command; errors end as one line on stderr and an exit code (tracebacks only with --debug)."""
    try:
        return func(args)
    except KeyboardInterrupt:
        print("\ntwin: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `twin ... | head` closed our stdout: not an error worth a line
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:  # noqa: BLE001 - the one place that turns every error into a line and a code
        if debug:
            raise
        code, line = _explain(e, args)
        print(f"twin: {line}", file=sys.stderr)
        return code


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get("TWIN_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]  # accepted anywhere on the line
    if argv[:1] == ["bench"]:  # its own flags (--json, --full) go to the benchmark suite untouched
        from twin.bench.suite import main as bench_main

        return _guarded(lambda _: bench_main(argv[1:]), argparse.Namespace(command="bench"), debug)

    parser = _Parser(prog="twin", description=HELP_DESCRIPTION, epilog=HELP_EPILOG)
    parser.add_argument("--debug", action="store_true",
                        help="on an error, show the full traceback (also: environment TWIN_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def scenario_option(p):
        p.add_argument("-s", "--scenario", default="default", help="a shipped scenario (see `twin scenarios`)")

    def output_options(p, force: bool = True):
        p.add_argument("--plotly", choices=("inline", "cdn", "shared"), default="inline", help=PLOTLY_HELP)
        if force:
            p.add_argument("--force", action="store_true",
                           help="run even when the memory estimate exceeds the memory available")

    p = sub.add_parser("run", help="run a scenario and write its run folder",
                       description="Run a scenario and write its run folder (outputs/<scenario>-<time>/ "
                                   "unless out=DIR is given): summary, daily KPIs, event log, report.html.")
    scenario_option(p)
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="overrides, e.g. community.households=500 sim.days=90 seed=7 out=DIR progress=false")
    output_options(p)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("compare", help="compare a policy with the baseline over paired replications",
                       description="Run a baseline arm and a policy arm on the same seeds and print each KPI's "
                                   "mean difference with its 95% interval.")
    scenario_option(p)
    p.add_argument("--baseline", default="", metavar='"K=V..."',
                   help="overrides for the baseline arm, quoted and space-separated (default: the scenario as is)")
    p.add_argument("--policy", required=True, metavar='"K=V..."',
                   help="overrides for the policy arm, quoted and space-separated (required)")
    p.add_argument("-n", "--replications", type=int, default=10, help="seeds per arm")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write compare.json, each arm's daily KPIs and compare.html here (default: print only)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="overrides for both arms, e.g. community.households=500 sim.days=90 (an arm's own win)")
    output_options(p)
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("sweep", help="run every combination of sweep overrides (key=a,b or key=range(1,4))",
                       description="Run every combination of the sweep overrides in parallel; write summary.csv "
                                   "(every KPI per run), sweep.json and sweep.html.")
    scenario_option(p)
    p.add_argument("-j", "--jobs", type=int, default=-1, help="runs at once (-1: one per core; joblib only)")
    p.add_argument("--backend", choices=("joblib", "ray"), default="joblib",
                   help="joblib: processes on this machine; ray: one Ray task per run")
    p.add_argument("--address", default=None,
                   help="the Ray cluster to join (auto: the one this machine belongs to; default: a local one)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="the sweep folder (default: outputs/sweep-<scenario>-<time>/)")
    p.add_argument("--kpis", default=None, metavar="K1,K2",
                   help="KPI columns to print (default: participation, satisfaction, repair wait, alert response, "
                        "turnout)")
    p.add_argument("--long", action="store_true", help="print one line per run and KPI (every KPI, or those of --kpis)")
    output_options(p)
    p.add_argument("overrides", nargs="*", metavar="key=a,b", help="fixed (k=v) and swept (k=a,b; 'k=range(1,6)') "
                                                                    "overrides")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("cases", help="run the case studies: each reported figure against the twin, with intervals",
                       description="Run each case study's before and after arms on common seeds and print the "
                                   "reported figure against the twin's, with 95% intervals, whether it was "
                                   "calibrated on that figure, and plainly when the twin cannot reach it.")
    p.add_argument("names", nargs="*", metavar="NAME", help="cases to run (default: all in scenarios/case/)")
    p.add_argument("-n", "--replications", type=int, default=10, help="seeds per arm (at least 2)")
    p.add_argument("--out", default=None, metavar="DIR", help="write cases.html, cases.json and the tidy tables "
                   "(cases.csv/.parquet, case_runs.csv/.parquet) here")
    output_options(p, force=False)
    p.set_defaults(func=cmd_cases)
    p = sub.add_parser("report", help="redraw the page of a run, comparison or sweep folder",
                       description="Redraw report.html of a run folder, compare.html of a comparison folder "
                                   "or sweep.html of a sweep folder.")
    p.add_argument("run_dir", metavar="DIR", help="a run, comparison (twin compare --out) or sweep folder")
    output_options(p, force=False)
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
    p = sub.add_parser("scenarios", help="list the shipped scenarios, one line each")
    p.set_defaults(func=cmd_scenarios)
    p = sub.add_parser("params", help="the parameter table: every parameter's meaning, unit, default and source",
                       description="Print (or write) the table of every model parameter, generated from the "
                                   "typed configuration and the shipped scenarios (docs/parameters.md).")
    p.add_argument("--format", choices=("md", "csv"), default="md", help="Markdown or CSV")
    p.add_argument("--out", default=None, metavar="FILE", help="write the table here instead of printing it")
    p.set_defaults(func=cmd_params)
    p = sub.add_parser("viz", help="an interactive page on the twin (Mesa SolaraViz): map, KPI charts, sliders",
                       description="Serve a Mesa SolaraViz page on the twin's Mesa model: a map of buildings with "
                                   "tickets and alerts, daily KPI charts, sliders for policy parameters (applied "
                                   "on Reset) and step/play controls.")
    scenario_option(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8765, help="port to listen on")
    p.add_argument("--setup", action="store_true",
                   help="fetch the page's front-end from the npm registry once (then it works offline), and exit")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="overrides, e.g. community.households=300")
    p.set_defaults(func=cmd_viz)
    p = sub.add_parser("warmup", help="compile every kernel now (a tiny run), so the first real run starts at speed",
                       description="Compile (or load from the cache) every numba kernel by running tiny "
                                   "communities for a few days; prints the time taken and the cache folder.")
    p.set_defaults(func=cmd_warmup)
    from twin.live.serve import add_commands

    add_commands(sub)  # serve, users
    from live_bridge.fork import add_commands as add_fork

    add_fork(sub)  # fork
    from twin.city import add_command as add_city

    add_city(sub)  # city
    from twin.calibrate import add_command as add_calibrate

    add_calibrate(sub)  # calibrate
    from live_bridge.devices import add_command as add_devices_command

    add_devices_command(sub)  # devices
    from live_bridge.emulate import add_command as add_emulate_command

    add_emulate_command(sub)  # emulate
    from live_bridge.commands import add_commands as add_shadow_commands

    add_shadow_commands(sub)  # shadow, replay
    sub.add_parser("bench", help="benchmarks (table; --json for one JSON line; --full for large sizes)")
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "overrides", None), list) and not any(x.startswith("-") for x in extra):
        args.overrides += extra  # overrides after an option (`twin run a=1 --force b=2`) are overrides too
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return _guarded(args.func, args, debug)


if __name__ == "__main__":
    sys.exit(main())
