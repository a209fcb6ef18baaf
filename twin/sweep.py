"""Parameter sweeps: the cartesian product of Hydra sweep overrides, run in parallel.

``twin sweep policies.dispatch=fifo,nearest,skill 'seed=range(1,6)'`` runs every
combination as an independent run (``backend="joblib"``: processes on this
machine; ``backend="ray"``: Ray tasks on a cluster, or a local instance; each
run is deterministic, so the backend, the order and the worker do not matter
and both backends give the same table) and writes one
``summary.csv`` row per run, with the swept values as the first columns (and the
same table as ``summary.parquet``, each KPI's unit in its schema), beside
``sweep.json`` (scenario, overrides, swept keys) and ``sweep.html``; ``twin
report`` redraws that page from them.
"""
from __future__ import annotations

import contextlib
import difflib
import itertools
import json
import logging
import os
from pathlib import Path

import numpy as np


def expand(overrides: list[str]) -> tuple[list[str], list[list[str]]]:
    """Hydra override strings → (swept keys, one list of plain overrides per combination)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    fixed, axes = [], []
    for o, text in zip(OverridesParser.create().parse_overrides(overrides), overrides):
        if o.is_sweep_override():
            axes.append([f"{o.key_or_group}={v}" for v in o.sweep_string_iterator()])
        else:
            fixed.append(text)
    keys = [a[0].split("=", 1)[0] for a in axes]
    return keys, [fixed + list(combo) for combo in itertools.product(*axes)]


def _one(scenario: str, overrides: list[str]) -> dict:
    from twin.config import load_scenario
    from twin.engine import Twin

    cfg = load_scenario(scenario, overrides + ["progress=false"])
    return Twin(cfg).run().summary


BACKENDS = ("joblib", "ray")


def sweep(scenario: str, overrides: list[str], jobs: int = -1, out=None, force: bool = False,
          plotly: str = "inline", backend: str = "joblib", address: str | None = None):
    """Run every combination; return a DataFrame (swept values, then the summary KPIs).

    ``backend``: ``joblib`` (``jobs`` processes here) or ``ray`` (one task per run on the
    cluster at ``address``, ``auto`` for the one this machine belongs to, or a local
    instance when none is given).  Refuses (:class:`~twin.memory.NotEnoughMemory`)
    when the runs that go at once would not fit in memory, unless ``force``.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from twin import memory
    from twin.config import ConfigError, load_scenario
    from twin.warmup import compile_notice, warmup

    if backend not in BACKENDS:
        raise ConfigError(f"backend: {backend!r} is not allowed; allowed: {', '.join(BACKENDS)}")
    keys, runs = expand(overrides)
    configs = [load_scenario(scenario, r) for r in runs]  # fail on a bad value before starting anything
    with contextlib.ExitStack() as stack:
        if backend == "ray":
            ray = stack.enter_context(ray_session(address))
            at_once = min(len(runs), max(1, int(ray.available_resources().get("CPU", 1))))
        else:
            from joblib import effective_n_jobs

            at_once = min(len(runs), effective_n_jobs(jobs))
        memory.check(max(configs, key=memory.estimate_for), at_once, force)
        if at_once > 1:
            warmup()  # compile once here (into the shared cache), not in every worker at the same time
        with compile_notice():
            summaries = _ray_runs(ray, scenario, runs) if backend == "ray" else _joblib_runs(jobs, scenario, runs)
            rows = []
            for r, summary in zip(runs, tqdm(summaries, total=len(runs), desc="sweep", unit="run")):
                swept = dict(o.split("=", 1) for o in r[len(r) - len(keys):]) if keys else {}
                rows.append({**swept, **summary})
    table = pd.DataFrame(rows)
    if out:
        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        table.to_csv(d / "summary.csv", index=False)
        write_parquet_table(table, keys, d / "summary.parquet")
        (d / "sweep.json").write_text(json.dumps({"scenario": scenario, "overrides": list(overrides), "keys": keys,
                                                  "runs": len(runs)}, indent=2))
        redraw(d, plotly=plotly)
    return table


def _joblib_runs(jobs: int, scenario: str, runs: list):
    """The runs' summaries in run order, as joblib's processes finish them."""
    from joblib import Parallel, delayed

    return Parallel(n_jobs=jobs, return_as="generator")(delayed(_one)(scenario, r) for r in runs)


def _ray_runs(ray, scenario: str, runs: list):
    """The runs' summaries in run order: one Ray task per run, all submitted at once."""
    one = ray.remote(_one)
    for ref in [one.remote(scenario, r) for r in runs]:
        yield ray.get(ref)


@contextlib.contextmanager
def ray_session(address: str | None = None):
    """Ray, connected: to the cluster at ``address`` (``auto``: the one this machine belongs to),
    else an instance already started in this process, else a local one for the block.

    A local instance binds loopback only, without the dashboard, usage reports or token
    auth (a private instance of this process); its CPUs are this machine's.
    """
    try:
        import ray
    except ImportError:
        from twin.config import ConfigError

        raise ConfigError("backend 'ray' needs the ray package: pip install 'ray[default]'") from None
    if ray.is_initialized():
        yield ray
        return
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                 logging_level=logging.WARNING)
    try:
        yield ray
    finally:
        ray.shutdown()


def write_parquet_table(table, keys: list, path) -> Path:
    """``summary.csv``'s Parquet twin: swept values as text (as ``summary.csv`` reads back), KPIs with their units."""
    from twin.results import label_of, tidy_unit, write_parquet

    columns = {k: ("value", "a swept override's value, as written") for k in keys}
    columns.update({k: (tidy_unit(k), label_of(k)) for k in table.columns if k not in keys})
    return write_parquet(table.astype({k: str for k in keys}), path, columns)


def kpi_names() -> list[str]:
    """The summary KPIs every run reports (the keys of the summary of an empty run)."""
    from twin.engine.kpis import summarise
    from twin.services.events import empty

    none = np.zeros(0)
    return list(summarise(empty(0), days=1, adults=1, turnouts=[], satisfaction_daily=none,
                          repair_times={"submitted": none, "started": none, "completed": none}))


def check_kpis(kpis) -> None:
    """Raise :class:`~twin.config.ConfigError` for a name that is no summary KPI."""
    from twin.config import ConfigError

    known = kpi_names()
    for k in kpis:
        if k not in known:
            close = difflib.get_close_matches(k, known, n=1)
            raise ConfigError(f"unknown KPI {k!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                              + f"; the KPIs are {', '.join(known)}")


def load(directory):
    """A sweep folder's table and swept keys; :class:`~twin.results.DamagedRunFolder` names a bad file.

    A folder written before ``sweep.json`` existed has its swept keys read off
    ``summary.csv``: the columns before the KPIs.
    """
    import pandas as pd

    from twin.results import DamagedRunFolder, read_json

    d = Path(directory)
    if (d / "sweep.json").exists():
        meta = read_json(d / "sweep.json")
    else:
        try:
            columns = pd.read_csv(d / "summary.csv", nrows=0).columns
        except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
            raise DamagedRunFolder(d / "summary.csv", f"not a CSV table of runs: {str(e).splitlines()[0]}") from None
        known = kpi_names()
        meta = {"keys": [c for c in columns if c not in known]}
    keys = meta.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise DamagedRunFolder(d / "sweep.json", f"'keys' is {keys!r}; expected a list of swept keys")
    try:
        table = pd.read_csv(d / "summary.csv", dtype={k: str for k in keys})
    except FileNotFoundError:
        raise DamagedRunFolder(d / "summary.csv", "missing") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DamagedRunFolder(d / "summary.csv", f"not a CSV table of runs: {str(e).splitlines()[0]}") from None
    missing = [k for k in keys if k not in table]
    if missing:
        raise DamagedRunFolder(d / "summary.csv", f"has no column {missing[0]!r} (a swept key)")
    text = [c for c in table if c not in keys and not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        raise DamagedRunFolder(d / "summary.csv", f"column {text[0]!r} holds text; every KPI is a number")
    return table, keys, meta


def redraw(directory, plotly: str = "inline") -> Path:
    """(Re)write ``sweep.html`` of a sweep folder from its files; returns its path."""
    import html

    from twin.report import sweep_report

    d = Path(directory)
    table, keys, meta = load(d)
    note = (f"scenario <b>{html.escape(str(meta.get('scenario')))}</b> · {len(table)} runs · "
            f"<code>{html.escape(' '.join(map(str, meta.get('overrides', []))))}</code>")
    return sweep_report(table, keys, d / "sweep.html", note=note, plotly=plotly)


def short_label(key: str) -> str:
    """A column header for terminals: ``repair_wait_minutes_mean`` → ``repair wait (min)``."""
    from twin.results import unit_of

    words = " ".join(w for w in key.split("_") if w not in ("rate", "index", "mean", "minutes", "hours"))
    return f"{words} ({unit_of(key)})" if unit_of(key) else words


def format_table(table, keys: list, kpis=None, long: bool = False) -> str:
    """A sweep for terminals: swept values and a few KPIs per run (units in the header, shares as %).

    ``kpis`` chooses the KPI columns (default: the headline KPIs); ``long`` prints one
    line per run and KPI instead, which fits any number of KPIs.
    """
    from twin.config import ConfigError
    from twin.results import HEADLINE_KPIS, format_value, text_table, unit_of

    known = [c for c in table.columns if c not in keys]
    kpis = list(kpis) if kpis else ([k for k in known] if long else [k for k in HEADLINE_KPIS if k in table])
    bad = [k for k in kpis if k not in known]
    if bad:
        raise ConfigError(f"unknown KPI {bad[0]!r}; a sweep's KPIs are {', '.join(known)}")

    def value(v, unit):
        return format_value(v.item() if hasattr(v, "item") else v, unit)

    if long:
        rows = [[str(i + 1), " ".join(f"{k}={row[k]}" for k in keys), k, value(row[k], unit_of(k)), unit_of(k)]
                for i, (_, row) in enumerate(table.iterrows()) for k in kpis]
        return text_table(["run", "swept", "kpi", "value", "unit"], rows, "rllrl")
    header = list(keys) + [short_label(k) for k in kpis]
    rows = [[str(row[k]) for k in keys] + [value(row[k], unit_of(k)) for k in kpis] for _, row in table.iterrows()]
    return text_table(header, rows, "l" * len(keys) + "r" * len(kpis))
