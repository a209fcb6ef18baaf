"""MkDocs hook: fill the pages' generated sections from the code, at build time.

A page asks for a section with a marker on a line of its own, e.g.
``<!-- generated: event-kinds -->``.  The tables come from the enums and column
dictionaries the code itself uses (``EventKind``, ``Reason``, ``Channel``, the
tidy tables' columns, the summary's keys), so the schema and the KPI pages cannot
drift from the code.  An unknown marker, or a summary KPI or a case's KPI that
``kpis.md`` does not define, is an error: ``mkdocs build --strict`` fails on it.
"""
from __future__ import annotations

import inspect
import logging
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the package is read from this checkout, installed or not
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("mkdocs.plugins.generated")
MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _member_comments(enum) -> dict[str, str]:
    """Each member's comment in the enum's source: the lines just above it, or the one after it."""
    comments, above = {}, []
    for line in inspect.getsource(enum).splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        m = re.match(r"(\w+)\s*=\s*-?\d+\s*(?:#\s*(.*))?$", stripped)
        if m:
            comments[m.group(1)] = " ".join(above) or (m.group(2) or "")
        above = [] if stripped else above
    return comments


def _enum_table(enum, what: str) -> str:
    notes = _member_comments(enum)
    return _table(["code", "name", what], [[int(m), f"`{m.name}`", notes.get(m.name, "")] for m in enum])


def event_columns() -> str:
    from twin.results import EVENT_COLUMNS
    from twin.services.events import EVENT_DTYPE

    return _table(["column", "stored as", "unit", "meaning"],
                  [[f"`{name}`", str(EVENT_DTYPE[name]), *EVENT_COLUMNS[name]] for name in EVENT_DTYPE.names])


def event_kinds() -> str:
    from twin.services.events import EventKind

    return _enum_table(EventKind, "columns (per kind)")


def reasons() -> str:
    from twin.services.reasons import Reason

    return _enum_table(Reason, "note")


def channels() -> str:
    from twin.services.events import Channel

    return _table(["code", "name"], [[int(c), f"`{c.name}`"] for c in Channel])


def _columns(columns: dict) -> str:
    return _table(["column", "unit", "meaning"], [[f"`{k}`", u, m] for k, (u, m) in columns.items()])


def daily_columns() -> str:
    from twin.results import DAILY_COLUMNS

    return _columns(DAILY_COLUMNS)


def summary_columns() -> str:
    from twin.results import SUMMARY_COLUMNS

    return _columns(SUMMARY_COLUMNS)


def compare_columns() -> str:
    from twin.compare import DIFFERENCE_COLUMNS, RUN_COLUMNS

    return "`differences`:\n\n" + _columns(DIFFERENCE_COLUMNS) + "\n\n`runs`:\n\n" + _columns(RUN_COLUMNS)


def case_columns() -> str:
    from twin.results import CASE_COLUMNS, CASE_RUN_COLUMNS

    return "`cases`:\n\n" + _columns(CASE_COLUMNS) + "\n\n`case_runs`:\n\n" + _columns(CASE_RUN_COLUMNS)


def summary_units() -> str:
    from twin.results import tidy_unit, unit_of
    from twin.sweep import kpi_names

    return _table(["key", "unit in tables", "unit in tidy data"],
                  [[f"`{k}`", unit_of(k) or "count", tidy_unit(k)] for k in kpi_names()])


def city_kpis() -> str:
    from twin.city import POOLED, SUMMED
    from twin.city_mediation import MEDIATION_POOLED, MEDIATION_SUMMED

    rows = [["`communities`", "number of communities in the city"],
            ["`residents`", "residents of all communities"]]
    for summed, pooled, where in ((SUMMED, POOLED, ""),
                                  (MEDIATION_SUMMED, MEDIATION_POOLED, " (a city with `mediation:`)")):
        rows += [[f"`{k}`", f"sum of each community's `{k}`{where}"] for k in summed]
        rows += [[f"`{k}`", f"each community's `{k}` weighted by its {w.replace('_', ' ')}, over their total "
                  f"(communities without a value left out){where}"] for k, w in pooled.items()]
    return _table(["key", "definition"], rows)


def case_kpi_names() -> list[str]:
    """Every KPI a shipped case names (its ``kpi`` and ``effect_kpi``)."""
    from twin.cases import case_names, load_case

    cases = [load_case(n) for n in case_names()]
    return sorted({c.kpi for c in cases} | {c.effect_kpi for c in cases})


SECTIONS = {
    "event-columns": event_columns, "event-kinds": event_kinds, "reasons": reasons, "channels": channels,
    "daily-columns": daily_columns, "summary-columns": summary_columns, "compare-columns": compare_columns,
    "summary-units": summary_units, "city-kpis": city_kpis,
    "case-columns": case_columns,
}


def on_page_markdown(markdown: str, page, config, files) -> str:
    def fill(match):
        name = match.group(1)
        if name not in SECTIONS:
            log.error("%s: unknown generated section %r (known: %s)", page.file.src_path, name, ", ".join(SECTIONS))
            return match.group(0)
        return SECTIONS[name]()

    markdown = MARKER.sub(fill, markdown)
    if page.file.src_path == "kpis.md":
        from twin.sweep import kpi_names

        for key in kpi_names():
            if f"`{key}`" not in markdown.split("<!-- definitions end -->")[0]:
                log.error("kpis.md does not define the summary KPI %r", key)
        for key in case_kpi_names():
            if f"| `{key}` |" not in markdown:
                log.error("kpis.md does not define the case KPI %r", key)
    return markdown
