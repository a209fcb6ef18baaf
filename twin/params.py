"""The parameter table: every model parameter, generated from the typed configuration.

A paper cites a version of the model by its parameters.  Each parameter is described
once, where it is defined: the ``param(...)`` field of its config dataclass in
:mod:`twin.config` (meaning, unit, allowed values, source or calibration).  This module
only reads those descriptions, the shipped scenarios (``scenarios/*.yaml``: what each
changes from the defaults) and the services' default points table, and writes them as
Markdown (``docs/parameters.md``, ``twin params``) or CSV (``twin params --format csv``).
Nothing here is written by hand, so the table cannot drift from the code.
"""
from __future__ import annotations

import csv
import io
from dataclasses import MISSING, dataclass, fields, is_dataclass

FORMATS = ("md", "csv")
#: The columns of the table (and of the CSV), in order.
COLUMNS = ("key", "meaning", "unit", "default", "allowed", "source")


@dataclass(frozen=True)
class Parameter:
    """One row of the table: a config key and what its field declares."""

    key: str
    section: str
    meaning: str
    unit: str
    default: object
    allowed: str
    source: str

    def row(self) -> dict:
        return {"key": self.key, "meaning": self.meaning, "unit": self.unit, "default": format_value(self.default),
                "allowed": self.allowed, "source": self.source}


def _default_of(f_):
    if f_.default is not MISSING:
        return f_.default
    if f_.default_factory is not MISSING:
        return f_.default_factory()
    return None


def parameters(node=None, prefix: str = "") -> list[Parameter]:
    """Every parameter of ``node`` (default: the whole :class:`~twin.config.TwinConfig`), sections flattened.

    Sections become key prefixes (``community.households``); a list parameter whose
    entries are described by a dataclass (the points table) adds one row per entry key
    (``policies.points.activities[].points``).
    """
    from twin.config import ANY_NUMBER, TwinConfig

    node = TwinConfig if node is None else node
    rows = []
    for f_ in fields(node):
        key = prefix + f_.name
        meta = f_.metadata
        default = _default_of(f_)
        if is_dataclass(default):
            rows.extend(parameters(type(default), key + "."))
            continue
        allowed = meta.get("allowed", ANY_NUMBER)
        rows.append(Parameter(key, prefix.rstrip(".") or "run", meta.get("meaning", ""), meta.get("unit", ""),
                              default, allowed.describe(), meta.get("source", "")))
        if meta.get("entry") is not None:
            rows.extend(parameters(meta["entry"], key + "[]."))
    return rows


def undescribed(node=None) -> list[str]:
    """Keys whose field lacks a meaning or a unit (the parameter table needs both)."""
    return [p.key for p in parameters(node) if not p.meaning.strip() or not p.unit.strip()]


def sections(node=None) -> list[tuple[str, str]]:
    """``(name, meaning)`` of each top-level section, in declaration order; run settings first."""
    from twin.config import TwinConfig

    node = TwinConfig if node is None else node
    out = [("run", "settings of the run itself")]
    for f_ in fields(node):
        if is_dataclass(_default_of(f_)):
            out.append((f_.name, f_.metadata.get("meaning", "")))
    return out


def format_value(value) -> str:
    """A value as one writes it in a scenario's YAML: ``true``, ``null``, ``[7.0, 19.0]``, ``{plumbing: 90.0}``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


# ------------------------------------------------------------------ scenarios
def _flatten(value, prefix: str = "") -> dict:
    if is_dataclass(value):
        out = {}
        for f_ in fields(value):
            out.update(_flatten(getattr(value, f_.name), f"{prefix}{f_.name}."))
        return out
    return {prefix.rstrip("."): value}


def scenario_changes() -> dict[str, tuple[str, dict]]:
    """Per shipped scenario: its one-line description and the keys it sets away from the defaults."""
    from twin.config import TwinConfig, load_scenario, scenario_description, scenarios

    defaults = _flatten(TwinConfig())
    out = {}
    for name in scenarios():
        values = _flatten(load_scenario(name))
        changed = {k: v for k, v in values.items() if k != "name" and v != defaults.get(k)}
        out[name] = (scenario_description(name), changed)
    return out


# ------------------------------------------------------------------ points table
def default_points_table() -> tuple[list[dict], list[dict]]:
    """The services' default activities (with the schedule the twin offers them on) and catalog."""
    from policies.rules import PointsRuleTable

    table = PointsRuleTable()
    rules = table.rules()
    activities = [{"name": a.name, "points": a.points, "unit": a.unit, "daily_cap": a.daily_cap,
                   "per_week": s[0], "hour": s[1], "minutes": s[2], "appeal": s[3]}
                  for a, s in zip(rules.activities, table.schedule())]
    catalog = [{"name": i.name, "cost": i.cost, "stock": i.stock} for i in rules.catalog]
    return activities, catalog


# ------------------------------------------------------------------ writing
def to_csv() -> str:
    """The table as CSV: one row per parameter, the columns of :data:`COLUMNS` plus ``section``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["section", *COLUMNS], lineterminator="\n")
    writer.writeheader()
    for p in parameters():
        writer.writerow({"section": p.section, **p.row()})
    return buf.getvalue()


def _cell(text) -> str:
    """Text for a Markdown table cell: pipes escaped, and angle brackets (``<scenario>``) kept as text, not HTML."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def _md_table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return lines


def to_markdown() -> str:
    """The table as the Markdown page ``docs/parameters.md``."""
    from twin import __version__

    params = parameters()
    out = [
        "# Parameters",
        "",
        f"Every parameter of community-twin {__version__}, generated by `twin params` from the typed "
        "configuration (`twin/config.py`, where each parameter is declared with its meaning, unit, allowed "
        "values and source) and the shipped scenarios (`scenarios/*.yaml`). Do not edit this page by hand: "
        "`twin params --out docs/parameters.md` rewrites it, and a test fails when it is out of date.",
        "",
        "Set any key in a scenario file or on the command line (`twin run community.households=500`). "
        "**Source** says where a default comes from: *calibrated* values were fitted to a case study's "
        "reported figure (see [Validation](validation.md) for what is checked independently of that "
        "fit), *assumption* marks a round figure chosen without data, and *run setting* a choice made "
        "per run. `twin params --format csv` gives the same table as CSV.",
        "",
    ]
    for name, meaning in sections():
        rows = [p for p in params if p.section == name or p.section.startswith(name + ".")]
        if not rows:
            continue
        out += [f"## {name}", "", f"{meaning[:1].upper()}{meaning[1:]}.", ""]
        out += _md_table(["key", "meaning", "unit", "default", "allowed", "source"],
                         [[f"`{p.key}`", p.meaning, p.unit, f"`{format_value(p.default)}`", p.allowed, p.source]
                          for p in rows])
        out.append("")
    out += ["## Shipped scenarios", "", "What each scenario in `scenarios/` sets away from the defaults above.", ""]
    for name, (description, changed) in scenario_changes().items():
        out += [f"### {name}", "", description or "(no description)", ""]
        if changed:
            out += _md_table(["key", "value", "default"],
                             [[f"`{k}`", f"`{format_value(v)}`", f"`{format_value(_default(params, k))}`"]
                              for k, v in changed.items()])
        else:
            out.append("The defaults, unchanged.")
        out.append("")
    activities, catalog = default_points_table()
    out += ["## Default points table", "",
            "What `policies.points.activities` and `policies.points.catalog` mean when left empty: the "
            "rule table of the Chengdu case (from `twin.services.points`), offered on the schedule in "
            "`policies.rules`.", ""]
    out += _md_table(list(activities[0]), [[format_value(v) for v in a.values()] for a in activities])
    out += ["", "Catalog (`stock` -1: unlimited):", ""]
    out += _md_table(list(catalog[0]), [[format_value(v) for v in i.values()] for i in catalog])
    out.append("")
    return "\n".join(out)


def _default(params, key):
    return next((p.default for p in params if p.key == key), None)


def render(fmt: str = "md") -> str:
    """The table in ``fmt`` (one of :data:`FORMATS`)."""
    from twin.config import ConfigError

    if fmt not in FORMATS:
        raise ConfigError(f"format = {fmt!r} is not allowed; expected one of {', '.join(map(repr, FORMATS))}")
    return to_markdown() if fmt == "md" else to_csv()
