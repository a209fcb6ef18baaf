"""The shadow's page: twin against production per day, the devices, and what the ingest refused.

Rewritten after every window; the page reloads itself every few seconds while
a session runs, so operations can leave it open.
"""
from __future__ import annotations

import html
import math
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from live_bridge.compare import METRICS
from twin.report import _figure_html, _write_page

TITLES = {"tickets_raised": "tickets raised", "tickets_completed": "tickets completed",
          "response_minutes": "mean response (min)", "repair_minutes": "mean repair time (min)", "backlog": "backlog at day end",
          "alerts_raised": "alerts raised", "alert_response_minutes": "mean alert response (min)"}


def write_dashboard(path, shadow, refresh_s: int | None = 5, plotly: str = "inline") -> Path:
    """Write the shadow's page to ``path`` (``refresh_s=None``: a final page that stays put)."""
    rows = shadow.windows
    header = _differences_table(shadow)
    if refresh_s:
        header = f"<meta http-equiv='refresh' content='{int(refresh_s)}'>" + header
    sections = [("Twin and production, day by day", _figure_html(_metrics_figure(rows), "metrics")),
                ("Devices", _figure_html(_devices_figure(rows), "devices") + _drift_table(rows)),
                ("Messages refused, by reason", _figure_html(_ingest_figure(shadow), "ingest"))]
    return _write_page(path, "community-twin shadow", header, sections, plotly)


def _differences_table(shadow) -> str:
    out = ["<table><tr><th>metric</th><th>windows</th><th>twin</th><th>production</th>"
           "<th>interval (production − twin)</th><th></th></tr>"]
    for d in shadow.differences():
        interval = "n/a" if math.isnan(d.low) else f"[{d.low:+.1f}, {d.high:+.1f}]"
        out.append(f"<tr><td>{html.escape(TITLES[d.metric])}</td><td>{d.windows}</td><td>{d.twin_mean:.1f}</td>"
                   f"<td>{d.production_mean:.1f}</td><td>{interval}</td>"
                   f"<td>{'<b>differs</b>' if d.flagged else ''}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _drift_table(rows) -> str:
    """Live against simulated readings of the last day, per kind (two-sample KS)."""
    drift = rows[-1]["devices"].get("drift", {}) if rows and rows[-1]["devices"] else {}
    if not drift:
        return ""
    out = ["<table><tr><th>readings</th><th>live</th><th>simulated</th><th>KS</th><th>p</th><th></th></tr>"]
    for kind, d in drift.items():
        out.append(f"<tr><td>{html.escape(kind)}</td><td>{d['n_live']}</td><td>{d['n_simulated']}</td>"
                   f"<td>{d['ks']:.3f}</td><td>{d['p']:.3g}</td><td>{'<b>drift</b>' if d['drift'] else ''}</td></tr>")
    out.append("</table>")
    return "".join(out)


def _metrics_figure(rows):
    if not rows:
        return None
    fig = make_subplots(rows=2, cols=4, subplot_titles=[TITLES[m] for m in METRICS])
    days = [r["day"] for r in rows]
    for i, m in enumerate(METRICS):
        row, col = i // 4 + 1, i % 4 + 1
        fig.add_trace(go.Scatter(x=days, y=[r["twin"][m] for r in rows], name="twin", mode="lines+markers",
                                 line={"color": "#1f77b4"}, showlegend=i == 0), row=row, col=col)
        fig.add_trace(go.Scatter(x=days, y=[r["production"][m] if r["production"] else None for r in rows],
                                 name="production", mode="lines+markers", line={"color": "#d62728"},
                                 showlegend=i == 0), row=row, col=col)
    fig.update_layout(height=560, margin={"t": 40})
    return fig


def _devices_figure(rows):
    if not rows or not rows[-1]["devices"]:
        return None
    kinds = list(rows[-1]["devices"]["counts"])
    fig = go.Figure()
    for state, color in (("live", "#2ca02c"), ("stale", "#ff7f0e"), ("simulated", "#7f7f7f")):
        fig.add_trace(go.Bar(x=kinds, y=[rows[-1]["devices"]["counts"][k][state] for k in kinds], name=state,
                             marker_color=color))
    fig.update_layout(barmode="stack", height=320, title=f"day {rows[-1]['day']}: devices by state",
                      margin={"t": 40})
    return fig


def _ingest_figure(shadow):
    counts = {k: v for k, v in shadow.ingest.counts.items() if k not in ("messages", "readings", "events")}
    if not counts:
        return None
    fig = go.Figure(go.Bar(x=list(counts), y=list(counts.values()), marker_color="#9467bd"))
    fig.update_layout(height=300, margin={"t": 20})
    return fig
