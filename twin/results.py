"""``Result``: what a run produced — KPIs, events, summary — and its run folder.

A run folder holds ``config.yaml`` (the resolved config), ``provenance.json``
(package version, git commit, seed, numba threads, timings), ``summary.json``
(NaN written as ``null``), ``kpis.csv`` (daily), ``events.npy`` (the event log,
structured array) with ``events.csv.gz`` beside it for other tools, ``map.json``
(buildings with their tickets and alerts) and ``report.html``.  Its ``tidy/`` folder holds
the same figures as Parquet tables for analysis (``kpis.parquet``, ``events.parquet`` with
kinds, reasons and channels by name, ``summary.parquet`` one row per KPI), each column's unit
and meaning in the Parquet schema (see :data:`DAILY_COLUMNS`, :data:`EVENT_COLUMNS`);
``events.npy`` stays the authoritative log.
``Result.load(dir)`` reads a folder back, checking each file as it goes: a file
that is missing, truncated or holds the wrong types raises :class:`DamagedRunFolder`
naming it, so ``twin report DIR`` never draws a report from garbage.

The units of summary keys and the way values are written (``unit_of``,
``format_value``: rates, shares and turnout as percentages) serve the terminal
tables and the HTML report alike.
"""
from __future__ import annotations

import json
import math
import subprocess
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from twin.services.events import EVENT_DTYPE, EventKind, to_frame


class DamagedRunFolder(ValueError):
    """A file of a run (or comparison, or sweep) folder that cannot be read as it was written."""

    def __init__(self, path, problem: str):
        self.path = Path(path)
        super().__init__(f"{self.path}: {problem}")


def _jsonable(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


@dataclass
class Result:
    summary: dict
    kpis: pd.DataFrame
    event_log: np.ndarray
    config: dict
    provenance: dict = field(default_factory=dict)
    map: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)

    @property
    def events(self) -> pd.DataFrame:
        """The event log as a tidy DataFrame: ``kind``, ``reason`` and ``channel`` as categorical names."""
        return events_frame(self.event_log)

    # -------------------------------------------------------------- building
    @classmethod
    def from_twin(cls, twin) -> "Result":
        from twin.engine.kpis import summarise
        from twin.services.repair import Status

        events = twin.log.events.copy()
        kpis = twin.kpis.frame()
        desk = twin.services.repair
        times = desk.state.times[: desk.n_tickets]
        c = twin.community
        summary = summarise(
            events, days=twin.day, adults=int(c.adults().sum()),
            repair_times={"submitted": times[:, Status.submitted], "started": times[:, Status.in_progress],
                          "completed": times[:, Status.completed]},
            turnouts=twin.topics.turnouts, satisfaction_daily=kpis["satisfaction"].to_numpy())
        return cls(summary=summary, kpis=kpis, event_log=events,
                   config=config_dict(twin.cfg),
                   provenance=_provenance(twin), map=_map(twin, events), extras=dict(twin.extras))

    # ----------------------------------------------------------------- files
    def save(self, directory, plotly: str = "inline") -> Path:
        """Write the run folder (see the module docstring); returns its path.

        ``plotly`` says how its report carries plotly.js (see :func:`twin.report.write_report`).
        """
        import yaml

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False, allow_unicode=True))
        (d / "provenance.json").write_text(json.dumps(_jsonable(self.provenance), indent=2))
        (d / "summary.json").write_text(json.dumps(_jsonable(self.summary), indent=2))
        (d / "map.json").write_text(json.dumps(_jsonable(self.map)))
        self.kpis.to_csv(d / "kpis.csv", index=False)
        np.save(d / "events.npy", self.event_log)
        to_frame(self.event_log).to_csv(d / "events.csv.gz", index=False)  # codes as in events.npy, kinds by name
        self.save_tidy(d / TIDY_DIR)
        for name, value in self.extras.items():
            (d / f"{name}.json").write_text(json.dumps(_jsonable(value), indent=2))
        self.report(d / "report.html", plotly=plotly)
        return d

    def save_tidy(self, directory) -> Path:
        """Write the Parquet tables of ``tidy/`` (see the module docstring) into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        write_parquet(self.kpis, d / "kpis.parquet", DAILY_COLUMNS)
        write_parquet(self.events, d / "events.parquet", EVENT_COLUMNS)
        write_parquet(summary_frame(self.summary), d / "summary.parquet", SUMMARY_COLUMNS)
        return d

    @classmethod
    def load(cls, directory) -> "Result":
        """Read a run folder back; raises :class:`DamagedRunFolder` naming a file that is not as written."""
        d = Path(directory)
        if not (d / "summary.json").exists():
            raise FileNotFoundError(f"{d} is not a run folder (no summary.json)")
        summary = read_json(d / "summary.json")
        for k, v in summary.items():
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise DamagedRunFolder(d / "summary.json", f"{k!r} is {v!r}; expected a number or null")
        summary = {k: (math.nan if v is None else v) for k, v in summary.items()}
        config = read_yaml(d / "config.yaml")
        provenance = read_json(d / "provenance.json")
        return cls(summary=summary, kpis=read_kpis(d / "kpis.csv"), event_log=read_events(d / "events.npy"),
                   config=config, provenance=provenance,
                   map=read_json(d / "map.json") if (d / "map.json").exists() else {})

    def report(self, path, plotly: str = "inline") -> Path:
        """Write the plotly dashboard to ``path`` (HTML); ``plotly`` as in :func:`twin.report.write_report`."""
        from twin.report import write_report

        return write_report(self, path, plotly=plotly)

    def table(self) -> str:
        """The summary for terminals: key, value and unit, rates as percentages (as in the report)."""
        rows = [[k, format_value(v, unit_of(k)), unit_of(k)] for k, v in self.summary.items()]
        return text_table(["kpi", "value", "unit"], rows, "lrl")


# ------------------------------------------------------------ tidy tables
#: The folder of a run's Parquet tables, inside the run folder.
TIDY_DIR = "tidy"

#: Daily KPI columns (``kpis.csv``, ``tidy/kpis.parquet``): unit and meaning; one row per simulated day.
DAILY_COLUMNS = {
    "day": ("day", "simulated day, counting from 0"),
    "participants": ("residents", "residents who earned points that day"),
    "points_issued": ("points", "points earned that day"),
    "points_redeemed": ("points", "points spent on catalog items that day"),
    "ballots": ("ballots", "ballots cast that day"),
    "tickets_started": ("tickets", "repairs started that day"),
    "satisfaction": ("0–100", "mean adult satisfaction at the day's end"),
    "technician_utilisation": ("share", "technicians' busy minutes over their shift minutes that day"),
    "backlog": ("tickets", "tickets open at the day's end"),
    "tickets_opened": ("tickets", "repair tickets submitted that day"),
    "tickets_completed": ("tickets", "repairs completed that day"),
    "alerts": ("alerts", "sensor alerts raised that day"),
    "timebank_minutes": ("min", "time-bank minutes confirmed that day"),
    "timebank_refused": ("records", "time-bank confirmations refused that day"),
    "bin_overflow_hours": ("bin-hours", "hours bins spent full, summed over bins"),
    "water_m3": ("m³", "water used by households"),
    "electricity_kwh": ("kWh", "electricity metered in households"),
    "faulty_meters": ("meters", "household meters faulty at the day's end"),
    "alert_response_minutes_sum": ("min", "alert raised → a worker arrives, summed over the day's alerts"),
}

#: Event columns (``tidy/events.parquet``; the codes behind the names are in :mod:`twin.services.events`).
EVENT_COLUMNS = {
    "t": ("min", "when, in minutes since the start of the run"),
    "kind": ("name", "what happened: an EventKind name"),
    "reason": ("name", "a Reason name for kinds that record one (Accepted otherwise)"),
    "channel": ("name", "how the command came in: a Channel name"),
    "actor": ("id", "who acted (resident, member, worker, account), per kind"),
    "subject": ("id", "what it acted on (ticket, record, topic, occurrence), per kind"),
    "target": ("id", "the other party (account, receiver, worker, location), per kind"),
    "amount": ("per kind", "points, minutes, priority, rating ... (see the event schema)"),
    "code": ("per kind", "a category, activity, item, role, method or packed ballot"),
    "extra": ("per kind", "a second quantity (units, shortfall, flag)"),
}

#: Summary columns (``tidy/summary.parquet``): one row per KPI of ``summary.json``.
SUMMARY_COLUMNS = {
    "kpi": ("name", "the summary key (DESIGN.md, KPI meanings)"),
    "value": ("per KPI", "the run's figure; shares as fractions, NaN where nothing was measured"),
    "unit": ("name", "the value's unit: min, h, share (a fraction), 0–100, 1–5, points or count"),
}


def config_dict(cfg) -> dict:
    """A run's config as plain data (what ``config.yaml`` holds).  The scenario's dataclasses convert
    directly (half a millisecond); through OmegaConf, as any other config does, takes 30 ms a run."""
    if is_dataclass(cfg) and not isinstance(cfg, type):
        return asdict(cfg)
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(cfg))


def _named(codes, enum) -> pd.Categorical:
    """Integer codes as a categorical of ``enum``'s names, in the enum's order; an unknown code is NaN."""
    index = {int(m): i for i, m in enumerate(enum)}
    return pd.Categorical.from_codes([index.get(int(c), -1) for c in codes], categories=[m.name for m in enum])


def events_frame(events: np.ndarray) -> pd.DataFrame:
    """An event array as a tidy DataFrame: ``kind``, ``reason`` and ``channel`` as categorical names."""
    from twin.services.events import Channel
    from twin.services.reasons import Reason

    frame = pd.DataFrame(np.asarray(events).copy())
    for column, enum in (("kind", EventKind), ("reason", Reason), ("channel", Channel)):
        frame[column] = _named(frame[column].to_numpy(), enum)
    return frame


def tidy_unit(key: str) -> str:
    """A summary key's unit as tidy tables hold its value: shares as fractions (``share``), counts as ``count``."""
    unit = unit_of(key)
    return "share" if unit == "%" else unit or "count"


def summary_frame(summary: dict) -> pd.DataFrame:
    """A summary as a long table: one row per KPI with its value and unit (:func:`tidy_unit`)."""
    return pd.DataFrame({"kpi": list(summary), "value": [float(v) for v in summary.values()],
                         "unit": [tidy_unit(k) for k in summary]})


def write_parquet(frame: pd.DataFrame, path, columns: dict) -> Path:
    """Write ``frame`` as Parquet with each column's unit and meaning (from ``columns``) in its schema metadata.

    A column missing from ``columns`` is written without them; :func:`column_units` reads them back.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    described = []
    for f in table.schema:
        unit, meaning = columns.get(f.name, ("", ""))
        described.append(f.with_metadata({"unit": unit, "meaning": meaning}) if unit or meaning else f)
    pq.write_table(table.cast(pa.schema(described, metadata=table.schema.metadata)), path)
    return Path(path)


def column_units(path) -> dict:
    """``{column: (unit, meaning)}`` as written in a Parquet file's schema by :func:`write_parquet`."""
    import pyarrow.parquet as pq

    out = {}
    for f in pq.read_schema(path):
        meta = {k.decode(): v.decode() for k, v in (f.metadata or {}).items()}
        out[f.name] = (meta.get("unit", ""), meta.get("meaning", ""))
    return out


# ------------------------------------------------------------ case studies
#: Columns of ``cases.csv`` / ``.parquet`` (``twin cases --out``): one row per case and arm.
CASE_COLUMNS = {
    "case": ("name", "the case (scenarios/case/<case>.yaml)"),
    "role": ("name", "calibration, validation or prediction: what the reported figure is to the twin"),
    "arm": ("name", "before or after the policy"),
    "kpi": ("name", "the case's KPI (docs/kpis.md)"),
    "reported": ("per KPI", "the figure the source reports for the arm (NaN: none)"),
    "mean": ("per KPI", "the twin's mean over replications"),
    "low": ("per KPI", "lower end of the 95% t-interval of the mean (NaN: one replication)"),
    "high": ("per KPI", "upper end of the 95% t-interval of the mean"),
    "replications": ("runs", "replications (seeds, the same in both arms)"),
    "tolerance": ("per KPI", "how far from the reported figure still counts as reached"),
    "verdict": ("text", "whether the twin reaches the reported figure, in words"),
}
#: Columns of ``case_runs.csv`` / ``.parquet``: one row per case, arm, seed and KPI (long format).
CASE_RUN_COLUMNS = {
    "case": CASE_COLUMNS["case"],
    "arm": CASE_COLUMNS["arm"],
    "seed": ("seed", "the replication's seed (common random numbers: the same in both arms)"),
    "kpi": ("name", "a KPI the arm's run gives (docs/kpis.md: summary and case KPIs)"),
    "value": ("per KPI", "the replication's figure; shares as fractions, NaN where nothing was measured"),
}


def case_frames(results) -> dict[str, pd.DataFrame]:
    """``{"cases": ..., "case_runs": ...}``: the case studies' figures as tidy tables.

    ``results`` are :class:`twin.cases.CaseResult` objects; the rows say what ``twin cases``
    prints (reported against twin, with intervals and verdicts) and every replication's KPIs.
    """
    from twin.cases import verdict

    cases, runs = [], []
    for r in results:
        c = r.case
        for arm, replications in r.arms.items():
            ci = r.interval(arm)
            reported = c.reported.get(arm)
            cases.append({"case": c.name, "role": c.role, "arm": arm, "kpi": c.kpi,
                          "reported": math.nan if reported is None else float(reported),
                          "mean": ci["mean"], "low": ci["low"], "high": ci["high"], "replications": len(r.seeds),
                          "tolerance": float(c.tolerance), "verdict": verdict(r, arm) if reported is not None else ""})
            for seed, kpis in zip(r.seeds, replications):
                runs += [{"case": c.name, "arm": arm, "seed": int(seed), "kpi": k, "value": float(v)}
                         for k, v in kpis.items()]
    return {"cases": pd.DataFrame(cases, columns=list(CASE_COLUMNS)),
            "case_runs": pd.DataFrame(runs, columns=list(CASE_RUN_COLUMNS))}


def write_case_tables(results, directory) -> list[Path]:
    """Write :func:`case_frames` into ``directory`` as CSV and as Parquet (units in the schema); returns the paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in case_frames(results).items():
        columns = CASE_COLUMNS if name == "cases" else CASE_RUN_COLUMNS
        frame.to_csv(d / f"{name}.csv", index=False)
        written += [d / f"{name}.csv", write_parquet(frame, d / f"{name}.parquet", columns)]
    return written


# ------------------------------------------------------------ reading folders
def read_json(path) -> dict:
    """A JSON object from ``path``; :class:`DamagedRunFolder` if it is missing, truncated or not an object."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedRunFolder(path, "missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DamagedRunFolder(path, f"not valid JSON (truncated or overwritten?): {e}") from None
    if not isinstance(value, dict):
        raise DamagedRunFolder(path, f"holds a {type(value).__name__}, not a JSON object")
    return value


def read_yaml(path) -> dict:
    import yaml

    path = Path(path)
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedRunFolder(path, "missing") from None
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise DamagedRunFolder(path, f"not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(value, dict):
        raise DamagedRunFolder(path, f"holds a {type(value).__name__}, not a mapping of settings")
    return value


def read_kpis(path) -> pd.DataFrame:
    """Daily KPIs: a ``day`` column counting 0, 1, 2, ... and numbers in every column."""
    path = Path(path)
    try:
        kpis = pd.read_csv(path)
    except FileNotFoundError:
        raise DamagedRunFolder(path, "missing") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DamagedRunFolder(path, f"not a CSV table of daily KPIs: {str(e).splitlines()[0]}") from None
    if "day" not in kpis:
        raise DamagedRunFolder(path, "has no 'day' column; not a table of daily KPIs")
    text = [c for c in kpis if not pd.api.types.is_numeric_dtype(kpis[c])]
    if text:
        raise DamagedRunFolder(path, f"column {text[0]!r} holds text; every daily KPI is a number")
    if not np.array_equal(kpis["day"].to_numpy(), np.arange(len(kpis))):
        raise DamagedRunFolder(path, "its 'day' column does not count 0, 1, 2, ...")
    return kpis


def read_events(path) -> np.ndarray:
    path = Path(path)
    try:
        events = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DamagedRunFolder(path, "missing") from None
    except (ValueError, EOFError, OSError) as e:
        raise DamagedRunFolder(path, f"not a numpy event log (empty or truncated?): {e}") from None
    if not isinstance(events, np.ndarray) or events.dtype != EVENT_DTYPE or events.ndim != 1:
        raise DamagedRunFolder(path, "does not hold this version's event schema")
    return events


# ------------------------------------------------------------ units and tables
#: The KPIs a sweep page plots against the swept values and ``twin sweep`` prints by default.
HEADLINE_KPIS = ("participation_rate", "satisfaction_index", "repair_wait_minutes_mean",
                 "alert_response_minutes_mean", "turnout_mean")


def label_of(key: str) -> str:
    """A summary key in words (its unit, named apart, left out): ``repair_wait_minutes_mean`` → Repair wait mean."""
    words = [w for w in key.split("_") if w not in ("minutes", "hours", "days")]
    return " ".join(words).capitalize()


def unit_of(key: str) -> str:
    """The unit a summary key names (DESIGN.md "KPI meanings": units are in the name)."""
    if "minutes" in key:
        return "min"
    if "hours" in key:
        return "h"
    if "_days_" in key:
        return "d"
    if key.endswith(("_rate", "_precision", "_recall")) or key.startswith("turnout"):
        return "%"
    if key == "satisfaction_index":
        return "0–100"
    if "rating" in key:
        return "1–5"
    if key.startswith("points"):
        return "points"
    return ""


def format_value(value, unit: str, signed: bool = False) -> str:
    """A value as tables show it: counts with separators, shares (unit ``%``) times 100, NaN as n/a."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    sign = "+" if signed else ""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{value:{sign},}"
    if unit == "%":
        return f"{100 * value:{sign}.1f}"
    return f"{value:{sign},.3f}" if abs(value) < 10 else f"{value:{sign},.1f}"


def format_interval(low, high, unit: str) -> str:
    """``[low, high]`` signed, both ends to the same precision (that of the larger); n/a without bounds."""
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return "n/a"
    wider = max(abs(low), abs(high))
    ends = (format_value(v, unit, signed=True) if unit == "%" else f"{v:+,.3f}" if wider < 10 else f"{v:+,.1f}"
            for v in (float(low), float(high)))
    return "[{}, {}]".format(*ends)


def text_table(header: list, rows: list, align: str) -> str:
    """Rows of strings as aligned columns; ``align`` has one ``l`` or ``r`` per column."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]

    def line(cells):
        return "  ".join(f"{c:<{w}}" if a == "l" else f"{c:>{w}}" for c, w, a in zip(cells, widths, align)).rstrip()

    head = line(header)
    return "\n".join([head, "-" * len(head), *map(line, rows)])


def _provenance(twin) -> dict:
    import numba

    from twin import __version__

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"package": "community-twin", "version": __version__, "git_commit": commit, "seed": twin.seed,
            "numba_threads": numba.get_num_threads(), "numba_version": numba.__version__,
            "numpy_version": np.__version__, "timings_s": dict(twin.timings),
            "residents": twin.community.n_residents, "households": twin.community.n_households}


def building_map(twin) -> dict:
    """Buildings with their tickets and alerts so far, as ``map.json`` holds them (also the ``twin viz`` map)."""
    return _map(twin, twin.log.events)


def _map(twin, events) -> dict:
    c = twin.community
    k = events["kind"]
    tickets = events[k == EventKind.TicketSubmitted]
    from twin.services.repair import LOCATION_BASE

    t_b = np.bincount(tickets["target"] // LOCATION_BASE, minlength=c.n_buildings)
    alerts = events[k == EventKind.AlertRaised]
    a_b = np.bincount(c.hh_building[alerts["actor"]], minlength=c.n_buildings)
    return {"x": c.building_x.tolist(), "y": c.building_y.tolist(), "tickets": t_b.tolist(),
            "alerts": a_b.tolist(), "households": np.bincount(c.hh_building, minlength=c.n_buildings).tolist()}
