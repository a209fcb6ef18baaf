"""Plotly dashboards of runs, as single self-contained HTML files.

``write_report(result, path)`` draws one run: a header (scenario, seed, days,
households, package version), the summary table, the daily KPI series,
distributions (repair waits, alert responses, ratings), staff utilisation and
a map of the buildings.  ``compare_report(results, path)`` sets several named
runs side by side: one summary table with a column per run, the daily KPI
series overlaid (given each replication's daily KPIs, their mean with a band
over the replications) and, given a policy comparison's rows, each KPI's
difference with its 95% interval and its significance after the comparison's
multiple-comparison correction (named on the page).  ``sweep_report(table, keys, path)`` draws a sweep: every
run's KPIs and the headline KPIs against the swept values.

By default plotly.js (about 4.6 MB) is embedded once in the page head, so a
report opens offline; ``plotly="cdn"`` links it from plotly's CDN instead, and
``plotly="shared"`` writes it once beside the folder (``../plotly-<version>.min.js``),
for a directory holding many runs.  Every figure is drawn from a
:class:`~twin.results.Result` alone (its summary, daily KPIs, event log, map and
config), so ``twin report DIR`` can redraw a saved run.  A run without tickets,
alerts or a map gets a note in place of the empty chart.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs, get_plotlyjs_version
from plotly.subplots import make_subplots

from twin.results import HEADLINE_KPIS, format_interval, format_value, label_of, unit_of
from twin.services.events import EventKind

MINUTES_PER_DAY = 1440.0
ALERT_TYPES = {0: "inactivity", 1: "smoke"}
RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
SERIES_DASHES = ("solid", "dash", "dot")
SIGNIFICANT_COLOUR = "#d62728"
#: Percentiles of the replications that a side-by-side page's bands span.
BAND_PERCENTILES = (10, 90)
PLOTLY_MODES = ("inline", "cdn", "shared")


class Series(NamedTuple):
    """One line of a daily KPI panel: a ``kpis`` column, drawn per day, cumulated or as a rolling mean."""

    column: str
    name: str
    cumulative: bool = False
    scale: float = 1.0
    smooth_days: int = 1


class Panel(NamedTuple):
    """One subplot of the daily KPI figure and the series it overlays."""

    title: str
    y_label: str
    series: tuple


KPI_PANELS = (
    Panel("Participants", "residents earning points / day", (Series("participants", "participants"),)),
    Panel("Points (cumulative)", "points", (Series("points_issued", "issued", cumulative=True),
                                            Series("points_redeemed", "redeemed", cumulative=True))),
    # daily counts of a few tickets jump between 0 and 5: a weekly mean shows the trend
    Panel("Repair tickets (7-day mean)", "tickets / day", (Series("tickets_opened", "opened", smooth_days=7),
                                                           Series("tickets_completed", "completed", smooth_days=7))),
    Panel("Repair backlog", "open tickets at day end", (Series("backlog", "backlog"),)),
    Panel("Satisfaction", "index (0–100)", (Series("satisfaction", "mean satisfaction"),)),
    Panel("Ballots", "ballots cast / day", (Series("ballots", "ballots"),)),
    Panel("Alerts", "alerts raised / day", (Series("alerts", "alerts"),)),
    Panel("Time bank", "service hours / day", (Series("timebank_minutes", "hours recorded", scale=1 / 60),)),
)


# ------------------------------------------------------------------ public API
def write_report(result, path, plotly: str = "inline") -> Path:
    """Write the dashboard of one run to ``path`` (one HTML file; ``plotly``: inline, cdn or shared)."""
    sections = [
        ("Summary", _summary_table({"": result.summary})),
        ("Daily KPIs", _figure_html(_kpi_figure({"": result.kpis}), "kpis")),
        ("Distributions", _figure_html(_distributions_figure(result.event_log), "distributions")),
        ("Staff", _figure_html(_staff_figure(result), "staff")),
        ("Map", _figure_html(_map_figure(result.map), "map")),
    ]
    header = f"<p class='meta'>{_run_meta(result)}</p>"
    return _write_page(path, f"community-twin report — {_scenario_name(result)}", header, sections, plotly)


def compare_report(results: dict, path, differences: dict | None = None, note: str = "",
                   plotly: str = "inline", daily_runs: dict | None = None) -> Path:
    """Write a side-by-side report of several named runs (e.g. baseline vs policy) to ``path``.

    ``differences`` (a policy comparison's rows: KPI → baseline, policy, diff,
    low, high, n, and where tested p, p_holm, significant) adds a table and a chart
    of each KPI's difference with its 95% interval and significance; ``daily_runs``
    (run name → each replication's daily KPIs) draws each run's daily series as the
    replications' mean with a 10–90% band; ``note`` is a line of HTML under the title.
    """
    if not results:
        raise ValueError("compare_report needs at least one run")
    header = (f"<p class='meta'>{note}</p>" if note else "") + "".join(
        f"<p class='meta'><b>{html.escape(name)}</b>: {_run_meta(r)}</p>" for name, r in results.items())
    sections = []
    if differences:
        sections += [("Differences (policy − baseline, 95% CI)", _differences_table(differences)),
                     ("Relative differences", _figure_html(_differences_figure(differences), "differences"))]
    if daily_runs:
        daily = ("Daily KPIs (line: mean over replications; band: 10–90% of replications)",
                 _figure_html(_kpi_figure(daily_runs), "kpis"))
    else:
        daily = ("Daily KPIs", _figure_html(_kpi_figure({name: r.kpis for name, r in results.items()}), "kpis"))
    sections += [("Summary", _summary_table({name: r.summary for name, r in results.items()})), daily]
    return _write_page(path, "community-twin comparison — " + " vs ".join(results), header, sections, plotly)


def sweep_report(table: pd.DataFrame, keys: list, path, note: str = "", plotly: str = "inline") -> Path:
    """Write a sweep's page: every run's KPIs, and the headline KPIs against the swept values."""
    header = f"<p class='meta'>{note}</p>" if note else ""
    sections = [("Headline KPIs by swept value", _figure_html(_sweep_figure(table, keys), "sweep")),
                ("Runs", _runs_table(table, keys))]
    return _write_page(path, "community-twin sweep — " + (", ".join(keys) or "one run"), header, sections, plotly)


# ---------------------------------------------------------------- page layout
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.5em; }
.meta { color: #555; margin: 0.2em 0; }
table.summary { border-collapse: collapse; }
table.summary th, table.summary td { padding: 0.25em 0.8em; border-bottom: 1px solid #eee; }
table.summary td.value { text-align: right; font-variant-numeric: tabular-nums; }
table.summary td.unit { color: #777; }
table.summary td.ci { color: #555; font-variant-numeric: tabular-nums; }
.empty { color: #777; font-style: italic; }
"""


def _write_page(path, title: str, header: str, sections, plotly: str = "inline") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"<section><h2>{html.escape(name)}</h2>{content}</section>" for name, content in sections)
    page = (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style>{_plotly_script(path, plotly)}</head>"
            f"<body><h1>{html.escape(title)}</h1>{header}{body}</body></html>\n")
    path.write_text(page, encoding="utf-8")
    return path


def _plotly_script(page: Path, mode: str) -> str:
    """The page head's plotly.js: embedded, from the CDN, or one file shared by the folders beside this one."""
    if mode not in PLOTLY_MODES:
        raise ValueError(f"plotly={mode!r}; expected one of {', '.join(PLOTLY_MODES)}")
    if mode == "inline":
        return f"<script type='text/javascript'>{get_plotlyjs()}</script>"
    name = f"plotly-{get_plotlyjs_version()}.min.js"
    if mode == "cdn":
        return f"<script src='https://cdn.plot.ly/{name}' charset='utf-8'></script>"
    shared = page.resolve().parent.parent / name
    if not shared.exists():
        shared.write_text(get_plotlyjs(), encoding="utf-8")
    return f"<script src='../{name}' charset='utf-8'></script>"


def _figure_html(fig, div_id: str) -> str:
    if fig is None:
        return f"<p class='empty' id='{div_id}'>Nothing to draw for this run.</p>"
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _scenario_name(result) -> str:
    return str(result.config.get("name", "unnamed scenario"))


def _run_meta(result) -> str:
    prov, cfg = result.provenance, result.config
    facts = {
        "scenario": _scenario_name(result),
        "seed": prov.get("seed", cfg.get("seed")),
        "days": cfg.get("sim", {}).get("days", len(result.kpis)),
        "households": prov.get("households", cfg.get("community", {}).get("households")),
        "version": prov.get("version"),
        "commit": (prov.get("git_commit") or "")[:10] or None,
    }
    return " · ".join(f"{k} <b>{html.escape(str(v))}</b>" for k, v in facts.items() if v is not None)


# ---------------------------------------------------------------- summary table
def _summary_table(summaries: dict) -> str:
    """One row per summary key, one value column per run (a blank name: one run)."""
    keys = list(dict.fromkeys(k for s in summaries.values() for k in s))
    head = "".join(f"<th>{html.escape(name)}</th>" for name in summaries)
    rows = []
    for key in keys:
        unit = unit_of(key)
        cells = "".join(f"<td class='value'>{format_value(s.get(key), unit)}</td>" for s in summaries.values())
        rows.append(f"<tr><td title='{html.escape(key)}'>{html.escape(label_of(key))}</td>{cells}"
                    f"<td class='unit'>{unit}</td></tr>")
    return (f"<table class='summary'><thead><tr><th>KPI</th>{head}<th>unit</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _tested(rows: dict) -> bool:
    """Whether the rows carry significance (a comparison written before it was added has none)."""
    return any("p_holm" in r for r in rows.values())


def _differences_table(rows: dict) -> str:
    """Baseline, policy, their difference and its 95% interval, per KPI (shares in percentage points).

    Rows with significance add the corrected p-value and a flag, and the page says which
    correction it is and over how many KPIs.
    """
    from twin.compare import ALPHA, CORRECTION, format_p

    tested = _tested(rows)
    body = []
    for key, r in rows.items():
        unit = unit_of(key)
        ci = format_interval(r.get("low"), r.get("high"), unit)
        cells = "".join(f"<td class='value'>{format_value(r.get(c), unit, signed=c == 'diff')}</td>"
                        for c in ("baseline", "policy", "diff"))
        flags = (f"<td class='value'>{format_p(_number(r.get('p_holm')))}</td>"
                 f"<td class='significant'>{'yes' if r.get('significant') else 'no'}</td>") if tested else ""
        body.append(f"<tr><td title='{html.escape(key)}'>{html.escape(label_of(key))}</td>{cells}"
                    f"<td class='ci'>{ci}</td>{flags}<td class='unit'>{unit}</td></tr>")
    head = f"<th>p ({CORRECTION})</th><th>significant</th>" if tested else ""
    m = sum(not math.isnan(_number(r.get("p_holm"))) for r in rows.values())
    correction = (f" Significance: a paired t-test per KPI, p-values adjusted by {CORRECTION}'s step-down "
                  f"correction over the {m} KPIs tested; <b>significant</b> means p ({CORRECTION}) &lt; {ALPHA:g}, "
                  f"so the chance of any false difference on this page is at most {ALPHA:.0%}." if tested else "")
    return ("<table class='summary'><thead><tr><th>KPI</th><th>baseline</th><th>policy</th><th>difference</th>"
            f"<th>95% CI</th>{head}<th>unit</th></tr></thead><tbody>{''.join(body)}</tbody></table>"
            "<p class='meta'>Both arms run the same seeds; a difference of shares (%) is in percentage points."
            f"{correction}</p>")


def _number(value) -> float:
    return math.nan if value is None else float(value)


def _differences_figure(rows: dict):
    """Each KPI's difference relative to its baseline mean, with the interval: one axis for every unit."""
    keys = [k for k, r in rows.items() if r["baseline"] and not math.isnan(r["baseline"]) and not math.isnan(r["diff"])]
    if not keys:
        return None
    base = np.array([abs(rows[k]["baseline"]) for k in keys])
    diff = np.array([rows[k]["diff"] for k in keys]) / base * 100
    low = np.array([rows[k]["low"] for k in keys], float) / base * 100
    high = np.array([rows[k]["high"] for k in keys], float) / base * 100
    colour = ([SIGNIFICANT_COLOUR if rows[k].get("significant") else "#1f77b4" for k in keys] if _tested(rows)
              else "#1f77b4")
    fig = go.Figure(go.Scatter(
        x=diff, y=[label_of(k) for k in keys], mode="markers", marker=dict(size=9, color=colour),
        error_x=dict(type="data", symmetric=False, array=np.nan_to_num(high - diff),
                     arrayminus=np.nan_to_num(diff - low), color="#1f77b4"),
        hovertemplate="%{y}: %{x:+.1f}% of the baseline<extra></extra>"))
    fig.add_vline(x=0, line=dict(color="#777", dash="dot"))
    title = "policy − baseline, % of the baseline mean (95% CI)"
    if _tested(rows):
        from twin.compare import CORRECTION

        title += f"; red: significant after {CORRECTION}'s correction"
    fig.update_xaxes(title_text=title, zeroline=False)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=120 + 28 * len(keys), margin=dict(l=220, t=30), showlegend=False)
    return fig


def _runs_table(table: pd.DataFrame, keys: list) -> str:
    """A sweep's runs: swept values, then every KPI (units in the header, shares as %)."""
    kpis = [c for c in table.columns if c not in keys]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "".join(
        f"<th title='{html.escape(k)}'>{html.escape(label_of(k))}" + (f" ({unit_of(k)})" if unit_of(k) else "") + "</th>"
        for k in kpis)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(row[k]))}</td>" for k in keys) + "".join(
        f"<td class='value'>{format_value(_plain(row[k]), unit_of(k))}</td>" for k in kpis) + "</tr>"
        for _, row in table.iterrows())
    return f"<table class='summary'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _plain(value):
    """A table cell as a Python number: integral floats (CSV round trips) as ints."""
    if isinstance(value, (np.integer, int)):
        return int(value)
    value = float(value)
    return int(value) if value.is_integer() and abs(value) >= 1 else value


def _sweep_figure(table: pd.DataFrame, keys: list):
    """Headline KPIs against the first swept key (colour: the second); seeds are replications, their mean a line."""
    axes = [k for k in keys if k != "seed"] or list(keys)
    kpis = [k for k in HEADLINE_KPIS if k in table]
    if not axes or not kpis or table.empty:
        return None
    x_key, colour_key = axes[0], (axes[1] if len(axes) > 1 else None)
    groups = table.groupby(colour_key, sort=False) if colour_key else [(None, table)]
    fig = make_subplots(rows=1, cols=len(kpis), subplot_titles=[
        label_of(k) + (f" ({unit_of(k)})" if unit_of(k) else "") for k in kpis], horizontal_spacing=0.06)
    for g, (value, rows) in enumerate(groups):
        name = f"{colour_key}={value}" if colour_key else x_key
        colour = RUN_COLOURS[g % len(RUN_COLOURS)]
        for i, k in enumerate(kpis, start=1):
            y = rows[k].astype(float) * (100 if unit_of(k) == "%" else 1)
            x = rows[x_key].astype(str)
            mean = y.groupby(x, sort=False).mean()
            fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name=name, legendgroup=name, showlegend=False,
                                     marker=dict(color=colour, size=7, opacity=0.5)), row=1, col=i)
            fig.add_trace(go.Scatter(x=mean.index, y=mean.to_numpy(), mode="lines+markers", name=name,
                                     legendgroup=name, showlegend=i == 1 and colour_key is not None,
                                     line=dict(color=colour)), row=1, col=i)
            fig.update_xaxes(title_text=x_key, type="category", row=1, col=i)
    fig.update_layout(height=380, legend=dict(orientation="h", y=-0.3), margin=dict(t=60))
    return fig


# ---------------------------------------------------------------- daily KPIs
def _series_values(kpis: pd.DataFrame, series: Series) -> np.ndarray:
    values = kpis[series.column].to_numpy(dtype=float) * series.scale
    if series.smooth_days > 1:
        values = pd.Series(values).rolling(series.smooth_days, min_periods=1).mean().to_numpy()
    return np.cumsum(values) if series.cumulative else values


def _days(kpis: pd.DataFrame) -> np.ndarray:
    return kpis["day"].to_numpy() if "day" in kpis else np.arange(len(kpis))


def _panel_legend(fig, index: int, row: int, col: int) -> str:
    """A legend of its own in the top-left corner of one subplot; returns its layout name."""
    name = f"legend{index + 1}" if index else "legend"
    cell = fig.get_subplot(row, col)
    fig.update_layout({name: dict(x=cell.xaxis.domain[0] + 0.005, y=cell.yaxis.domain[1], xanchor="left",
                                  yanchor="top", bgcolor="rgba(255,255,255,0.7)", font=dict(size=10))})
    return name


def _band_fill(colour: str) -> str:
    """A run's colour, faint, for the band behind its line."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},0.18)"


def _kpi_figure(runs: dict):
    """The daily KPI panels that the runs' columns allow.

    Named runs are overlaid (colour per run, dash per series); ``write_report``
    passes its one run unnamed (colour per series).  A run given as a list of
    replications' daily KPIs is drawn as their mean with a band spanning
    :data:`BAND_PERCENTILES` of them (each replication cumulated or smoothed first).
    """
    runs = {name: k if isinstance(k, list) else [k] for name, k in runs.items()}
    panels = [p for p in KPI_PANELS if any(s.column in k[0] for s in p.series for k in runs.values() if k)]
    if not panels or all(not k or len(k[0]) == 0 for k in runs.values()):
        return None
    comparing = any(runs)
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[p.title for p in panels],
                        vertical_spacing=0.25 / rows, horizontal_spacing=0.08)
    for i, panel in enumerate(panels):
        row, col = i // cols + 1, i % cols + 1
        legend = _panel_legend(fig, i, row, col)
        for r, (run, replications) in enumerate(runs.items()):
            if not replications:
                continue
            kpis = replications[0]
            for s, series in enumerate(panel.series):
                if series.column not in kpis:
                    continue
                colour = RUN_COLOURS[(r if comparing else s) % len(RUN_COLOURS)]
                name = f"{run}: {series.name}" if comparing else series.name
                values = np.vstack([_series_values(k, series) for k in replications])
                if len(replications) > 1:
                    low, high = np.percentile(values, BAND_PERCENTILES, axis=0)
                    band = f"{name} {BAND_PERCENTILES[0]}–{BAND_PERCENTILES[1]}%"
                    fig.add_trace(go.Scatter(x=_days(kpis), y=high, mode="lines", line=dict(width=0),
                                             name=band, legend=legend, showlegend=False, hoverinfo="skip"),
                                  row=row, col=col)
                    fig.add_trace(go.Scatter(x=_days(kpis), y=low, mode="lines", line=dict(width=0),
                                             fill="tonexty", fillcolor=_band_fill(colour), name=band,
                                             legend=legend, showlegend=False, hoverinfo="skip"), row=row, col=col)
                fig.add_trace(go.Scatter(
                    x=_days(kpis), y=values.mean(axis=0), mode="lines", name=name,
                    legend=legend, showlegend=comparing or len(panel.series) > 1,
                    line=dict(color=colour, dash=SERIES_DASHES[s % len(SERIES_DASHES)] if comparing else "solid"),
                ), row=row, col=col)
        fig.update_xaxes(title_text="day", row=row, col=col)
        fig.update_yaxes(title_text=panel.y_label, row=row, col=col, rangemode="tozero")
    fig.update_layout(height=320 * rows, hovermode="x unified", margin=dict(t=60, b=40))
    return fig


# ---------------------------------------------------------------- distributions
def _of_kind(events: np.ndarray, kind: EventKind) -> np.ndarray:
    return events[events["kind"] == kind]


def _first_time_per_ticket(events: np.ndarray, kind: EventKind) -> pd.Series:
    rows = _of_kind(events, kind)
    return pd.Series(rows["t"]).groupby(rows["subject"]).min()


def repair_wait_minutes(events: np.ndarray) -> np.ndarray:
    """Per ticket started: its first start minus its submission (minutes)."""
    submitted = _first_time_per_ticket(events, EventKind.TicketSubmitted)
    started = _first_time_per_ticket(events, EventKind.TicketStarted)
    both = started.index.intersection(submitted.index)
    return (started[both] - submitted[both]).to_numpy()


def _note_if_empty(fig, values, note: str, row: int, col: int) -> None:
    if len(values) == 0:
        fig.add_annotation(text=note, showarrow=False, xref="x domain", yref="y domain", x=0.5, y=0.5,
                           font=dict(color="#777"), row=row, col=col)


def _distributions_figure(events: np.ndarray):
    fig = make_subplots(rows=1, cols=3, subplot_titles=("Repair wait (submitted → started)",
                                                        "Alert response (raised → worker arrives)",
                                                        "Repair ratings"))
    waits = repair_wait_minutes(events)
    fig.add_trace(go.Histogram(x=waits, name="repair wait", marker_color="#1f77b4", showlegend=False),
                  row=1, col=1)
    _note_if_empty(fig, waits, "no ticket was started", 1, 1)

    attended = _of_kind(events, EventKind.AlertAttended)
    for code, name in ALERT_TYPES.items():
        minutes = attended["amount"][attended["code"] == code]
        fig.add_trace(go.Histogram(x=minutes, name=f"{name} alerts", showlegend=len(minutes) > 0), row=1, col=2)
    _note_if_empty(fig, attended, "no alert was attended", 1, 2)

    ratings = _of_kind(events, EventKind.TicketRated)["amount"]
    stars = np.arange(1, 6)
    fig.add_trace(go.Bar(x=stars, y=[(ratings == s).sum() for s in stars], name="ratings",
                         marker_color="#2ca02c", showlegend=False), row=1, col=3)
    _note_if_empty(fig, ratings, "no ticket was rated", 1, 3)

    fig.update_xaxes(title_text="minutes", row=1, col=1)
    fig.update_xaxes(title_text="minutes", row=1, col=2)
    fig.update_xaxes(title_text="rating (stars)", dtick=1, row=1, col=3)
    fig.update_yaxes(title_text="tickets", row=1, col=1)
    fig.update_yaxes(title_text="alerts", row=1, col=2)
    fig.update_yaxes(title_text="ratings", row=1, col=3)
    fig.update_layout(height=380, barmode="stack", legend=dict(orientation="h", y=-0.25))
    return fig


# ---------------------------------------------------------------- staff
def technician_work_hours(events: np.ndarray, n_days: int, n_technicians: int = 0) -> np.ndarray:
    """Hours each technician spent on site (started → completed), by the day work started.

    Returns an array (technician, day); a job is credited to the worker its
    ticket was last dispatched to before work started.
    """
    def frame(kind, time, **columns):
        rows = _of_kind(events, kind)
        return pd.DataFrame({time: rows["t"], "subject": rows["subject"],
                             **{name: rows[col] for name, col in columns.items()}}).sort_values(time)

    jobs = pd.merge_asof(frame(EventKind.TicketCompleted, "done"), frame(EventKind.TicketStarted, "start"),
                         left_on="done", right_on="start", by="subject").dropna(subset=["start"])
    jobs = pd.merge_asof(jobs.sort_values("start"), frame(EventKind.TicketDispatched, "dispatched", worker="target"),
                         left_on="start", right_on="dispatched", by="subject").dropna(subset=["worker"])
    worker = jobs["worker"].to_numpy(dtype=np.int64)
    day = (jobs["start"].to_numpy() // MINUTES_PER_DAY).astype(np.int64)
    hours = np.zeros((max(n_technicians, worker.max(initial=-1) + 1), max(n_days, day.max(initial=-1) + 1)))
    np.add.at(hours, (worker, day), (jobs["done"] - jobs["start"]).to_numpy() / 60.0)
    return hours


def _staff_figure(result):
    kpis = result.kpis
    n_technicians = int(result.config.get("staff", {}).get("technicians", 0))
    hours = technician_work_hours(result.event_log, len(kpis), n_technicians)
    has_utilisation = "technician_utilisation" in kpis and len(kpis) > 0
    if not has_utilisation and hours.size == 0:
        return None
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.18, row_heights=(0.45, 0.55),
                        subplot_titles=("Technician utilisation (busy share of shift time)",
                                        "On-site repair hours per technician (by day work started)"))
    if has_utilisation:
        share = kpis["technician_utilisation"].to_numpy(dtype=float) * 100
        fig.add_trace(go.Scatter(x=_days(kpis), y=share, mode="lines", name="daily",
                                 line=dict(color="#9ecae1")), row=1, col=1)
        fig.add_trace(go.Scatter(x=_days(kpis), y=pd.Series(share).rolling(7, min_periods=1).mean(),
                                 mode="lines", name="7-day mean", line=dict(color="#08519c", width=3)),
                      row=1, col=1)
    if hours.size:
        fig.add_trace(go.Heatmap(z=hours, x=np.arange(hours.shape[1]), y=[f"tech {i}" for i in range(len(hours))],
                                 colorscale="Blues", zmin=0, colorbar=dict(title="hours", y=0.28, len=0.55),
                                 hovertemplate="%{y}, day %{x}: %{z:.1f} h<extra></extra>"), row=2, col=1)
    _note_if_empty(fig, hours[hours > 0], "no repair work was done", 2, 1)
    fig.update_xaxes(title_text="day", row=1, col=1)
    fig.update_yaxes(title_text="% of shift time", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title_text="day", row=2, col=1)
    fig.update_yaxes(title_text="technician", row=2, col=1)
    fig.update_layout(height=640, legend=dict(orientation="h", y=1.08))
    return fig


# ---------------------------------------------------------------- map
def _marker_sizes(households: np.ndarray) -> np.ndarray:
    """Marker diameters (px) with area proportional to households."""
    biggest = max(1, households.max(initial=0))
    return 10 + 30 * np.sqrt(households / biggest)


def _map_range(values: np.ndarray) -> list:
    """An axis range around the buildings: half a grid step (or 30 m) of margin beyond the outermost ones."""
    steps = np.diff(np.unique(values))
    pad = 0.6 * (steps.min() if len(steps) else 50.0)
    return [float(values.min() - pad), float(values.max() + pad)]


def _ticket_scale(tickets: np.ndarray) -> tuple:
    """The colour range of ticket counts: from the quietest building to the busiest, so they differ in colour."""
    low, high = (int(tickets.min()), int(tickets.max())) if len(tickets) else (0, 0)
    return (low, high) if high > low else (0, max(1, high))


def _map_figure(building_map: dict):
    if not building_map or not len(building_map.get("x", ())):
        return None
    x, y = np.asarray(building_map["x"], float), np.asarray(building_map["y"], float)
    households, tickets, alerts = (np.asarray(building_map.get(k, np.zeros(len(x))), dtype=np.int64)
                                   for k in ("households", "tickets", "alerts"))
    sizes = _marker_sizes(households)
    cmin, cmax = _ticket_scale(tickets)
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=x, y=y, mode="markers", name="buildings (size: households, colour: tickets)",
        marker=dict(size=sizes, color=tickets, colorscale="Viridis", reversescale=True, cmin=cmin, cmax=cmax,
                    showscale=True, colorbar=dict(title="tickets"), line=dict(width=1, color="#444")),
        customdata=np.column_stack([np.arange(len(x)), households, tickets, alerts]),
        hovertemplate=("building %{customdata[0]}<br>%{customdata[1]} households<br>"
                       "%{customdata[2]} tickets<br>%{customdata[3]} alerts<extra></extra>")))
    with_alerts = alerts > 0
    fig.add_trace(go.Scatter(
        x=x[with_alerts], y=y[with_alerts], mode="markers", name="alerts (ring width: count)",
        marker=dict(symbol="circle-open", size=sizes[with_alerts] + 10, color="crimson",
                    line=dict(width=np.clip(alerts[with_alerts], 1, 6))),
        customdata=alerts[with_alerts], hovertemplate="%{customdata} alerts<extra></extra>"))
    # the ranges hug the buildings; equal scale shrinks the plot area rather than widening a range
    fig.update_xaxes(title_text="x (m)", range=_map_range(x), constrain="domain", showgrid=False, zeroline=False)
    fig.update_yaxes(title_text="y (m)", range=_map_range(y), scaleanchor="x", scaleratio=1, constrain="domain",
                     showgrid=False, zeroline=False)
    fig.update_layout(title=dict(text="Buildings: households, repair tickets and alerts"), height=560,
                      legend=dict(orientation="h", y=-0.15))
    return fig
