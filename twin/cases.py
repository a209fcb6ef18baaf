"""Case studies: what a community reported, against what the twin gives for the same policy.

A case (``scenarios/case/<name>.yaml``) is a before/after pair of scenarios (a
shipped scenario plus override lists), the reported figure with the source line
it comes from, a tolerance, the KPI it maps to, and which parameters were
calibrated on which figure.  Its ``role`` keeps calibration and validation apart:
a ``calibration`` case reproduces a figure some parameter was tuned to (it can
only show the tuning still holds); a ``validation`` case reproduces one nothing
was tuned to.

:func:`run_case` runs both arms on the same seeds (common random numbers: every
seed's community and draws are the same in both arms except where the policy
acts), so the per-seed differences are the policy's effect.  :func:`verdict`
says plainly whether the twin reaches the reported figure, cannot reach it, or
cannot tell with this many replications.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.config import SCENARIO_DIR, ConfigError

CASE_DIR = SCENARIO_DIR / "case"
ROLES = ("calibration", "validation", "prediction")
COMPARES = ("equal", "at_most")
ARMS = ("before", "after")


@dataclass
class Case:
    """One case study, as written in its YAML file (see the module docstring)."""

    name: str
    title: str
    source: str
    quote: str
    kpi: str
    reported: dict
    tolerance: float
    role: str
    calibrated: list
    scenario: str = "default"
    compare: str = "equal"
    effect_kpi: str = ""
    note: str = ""
    size: list = field(default_factory=list)
    before: list = field(default_factory=list)
    after: list = field(default_factory=list)
    policy_off: list = field(default_factory=list)
    model: str = ""  # "module:name" of a standalone policy model (run_model_arm); empty: the twin runs the arms

    def __post_init__(self):
        where = f"case {self.name!r}"
        if self.role not in ROLES:
            raise ConfigError(f"{where}: role = {self.role!r} is not allowed; expected one of {', '.join(ROLES)}")
        if self.compare not in COMPARES:
            raise ConfigError(f"{where}: compare = {self.compare!r} is not allowed; expected one of "
                              f"{', '.join(COMPARES)}")
        bad = set(self.reported) - set(ARMS)
        if bad or not self.reported:
            raise ConfigError(f"{where}: reported keys {sorted(bad) or '(none)'} are not allowed; expected before "
                              "and/or after")
        for entry in self.calibrated:
            if not isinstance(entry, dict) or set(entry) != {"param", "figure"}:
                raise ConfigError(f"{where}: calibrated entry {entry!r} is not allowed; expected "
                                  "{param: <config key>, figure: <the figure it was tuned on>}")
        self.effect_kpi = self.effect_kpi or self.kpi

    def arm(self, name: str, extra=()) -> list[str]:
        """The overrides of arm ``before``, ``after`` or ``off`` (the after arm with its policy switched off)."""
        own = {"before": self.before, "after": self.after, "off": [*self.after, *self.policy_off]}[name]
        return [*self.size, *own, *extra]


def case_names() -> list[str]:
    """The shipped cases' names."""
    return sorted(p.stem for p in CASE_DIR.glob("*.yaml"))


def load_case(name: str) -> Case:
    """Read ``scenarios/case/<name>.yaml``; an unknown name or key is a :class:`ConfigError` naming it."""
    import yaml

    if name not in case_names():
        raise ConfigError(f"unknown case {name!r}; shipped cases: {', '.join(case_names())}")
    data = yaml.safe_load((CASE_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    allowed = [f for f in Case.__dataclass_fields__ if f != "name"]
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(f"case {name!r}: unknown key {unknown[0]!r}; allowed keys: {', '.join(allowed)}")
    try:
        return Case(name=name, **data)
    except TypeError as e:  # a required key left out
        raise ConfigError(f"case {name!r}: {e}; allowed keys: {', '.join(allowed)}") from None


# ------------------------------------------------------------------ what a run gives
def run_arm(case: Case, arm: str, seed: int, extra=()) -> dict:
    """One replication of one arm: the run's summary plus the case KPIs read off its log."""
    from twin.config import load_scenario
    from twin.engine import Twin
    from twin.results import Result

    if case.model:
        return run_model_arm(case, arm, seed, extra)
    cfg = load_scenario(case.scenario, case.arm(arm, extra) + [f"seed={seed}", "progress=false"])
    tw = Twin(cfg)
    onsets = []  # (minute, building) of every burst, a hidden truth the log does not hold
    while tw.day < cfg.sim.days:
        tw.step()
        onset_b = tw._burst_onsets
        onsets += [(float(onset_b[b]), int(b)) for b in np.flatnonzero(onset_b >= 0)]
    result = Result.from_twin(tw)
    return {**result.summary, **case_kpis(result.event_log, onsets),
            **participation_trajectory(result.event_log, int(tw.community.adults().sum()), tw.day)}


def participation_trajectory(events: np.ndarray, adults: int, days: int) -> dict:
    """Each whole 30-day month's share of adults who earned points (``participation_month_<k>``), and the last.

    ``participation_rate`` is their mean: for a programme that grows over a year
    the last month ("after a year") is the figure a source reports.
    """
    from twin.engine.kpis import monthly_participation

    shares = monthly_participation(events, adults, days)
    return {**{f"participation_month_{m + 1}": x for m, x in enumerate(shares)},
            "participation_last_month": shares[-1]}


def run_model_arm(case: Case, arm: str, seed: int, extra=()) -> dict:
    """One replication of an arm of a standalone policy model (``case.model``, ``module:name``).

    ``name`` is a function ``(scenario, overrides, seed) -> KPIs``, or a policy class whose
    ``run(cfg, community)`` returns a run with ``kpis()``: its overrides named
    ``<policy name>.<param>`` set its parameters, the rest the scenario's, and it runs on the
    community the scenario describes, built here (policies do not import the agents).
    """
    import importlib

    module, _, name = case.model.partition(":")
    target = getattr(importlib.import_module(module), name)
    if not isinstance(target, type):
        return target(case.scenario, case.arm(arm, extra), seed)
    from agents.community import build_community
    from policies._arms import split_arm

    cfg, policy = split_arm(target(), case.arm(arm, extra), case.scenario, seed)
    return policy.run(cfg, build_community(cfg.community, seed)).kpis()


def case_kpis(events: np.ndarray, burst_onsets: list) -> dict:
    """KPIs the run summary lacks, read off the event log and the bursts' hidden onsets."""
    from twin.engine.twin import ALERT_INACTIVITY, FAMILY_FINDS_AFTER_MINUTES
    from twin.services.events import EventKind
    from twin.services.repair import LOCATION_BASE, Category

    k = events["kind"]
    raised = events[(k == EventKind.AlertRaised) & (events["code"] == ALERT_INACTIVITY)]
    attended = events[(k == EventKind.AlertAttended) & (events["code"] == ALERT_INACTIVITY)]
    incidents = events[k == EventKind.IncidentStarted]
    end = events["t"].max() if len(events) else 0.0
    # an incident ends when a worker arrives on a true alert, else when the family finds the elder (at a day's end)
    rescue = {}
    alert_of = {int(r["subject"]): int(r["target"]) for r in raised[raised["extra"] == 1]}
    for r in attended[attended["extra"] == 1]:
        rescue.setdefault(alert_of.get(int(r["subject"]), -1), float(r["t"]))
    help_minutes = []
    for r in incidents:
        t0 = float(r["t"])
        family = math.ceil((t0 + FAMILY_FINDS_AFTER_MINUTES) / 1440.0) * 1440.0
        helped = min(rescue.get(int(r["subject"]), math.inf), family)
        if helped <= end:
            help_minutes.append(helped - t0)
    submitted = events[(k == EventKind.TicketSubmitted) & (events["code"] == int(Category.plumbing))
                       & (events["amount"] == 2)]  # priority 2: a burst
    completed = {int(r["subject"]): float(r["t"]) for r in events[k == EventKind.TicketCompleted]}
    repair, onset_to_report, onset_to_repair = [], [], []
    unpaired = sorted(burst_onsets)
    for r in np.sort(submitted, order="t"):
        done = completed.get(int(r["subject"]))
        if done is None:
            continue
        repair.append(done - float(r["t"]))
        building = int(r["target"]) // LOCATION_BASE
        match = [o for o in unpaired if o[1] == building and o[0] <= r["t"]]
        if match:  # the burst this ticket was raised on (a detector's ticket on no burst has none)
            unpaired.remove(match[-1])
            onset_to_report.append(float(r["t"]) - match[-1][0])
            onset_to_repair.append(done - match[-1][0])
    return {
        "alert_visits": int(len(attended)),
        "alert_visit_precision": _mean(attended["extra"] == 1),
        "incident_help_minutes_mean": _mean(help_minutes),
        "burst_repair_minutes_mean": _mean(repair),
        "burst_onset_to_report_minutes_mean": _mean(onset_to_report),
        "burst_onset_to_repair_minutes_mean": _mean(onset_to_repair),
    }


def _mean(x) -> float:
    x = np.asarray(x, float)
    return float(x.mean()) if len(x) else math.nan


# ------------------------------------------------------------------ both arms, compared
@dataclass
class CaseResult:
    """Every replication's KPIs of each arm, on the same seeds."""

    case: Case
    seeds: list
    arms: dict  # arm -> list of KPI dicts, one per seed

    def values(self, arm: str, kpi: str) -> np.ndarray:
        return np.array([r.get(kpi, math.nan) for r in self.arms[arm]], float)

    def interval(self, arm: str, kpi: str | None = None) -> dict:
        """The arm's mean of ``kpi`` (default: the case's) with a 95% t-interval over seeds."""
        from twin.compare import paired_ci

        x = self.values(arm, kpi or self.case.kpi)
        ci = paired_ci(np.zeros(len(x)), x)  # the difference from zero is the mean itself
        return {"mean": ci["diff"], "low": ci["low"], "high": ci["high"], "n": ci["n"]}

    def effect(self, kpi: str | None = None, arm: str = "after") -> dict:
        """``arm`` − before on the same seeds, with its 95% interval."""
        from twin.compare import paired_ci

        kpi = kpi or self.case.effect_kpi
        return paired_ci(self.values("before", kpi), self.values(arm, kpi))


def run_case(case: Case, replications: int = 10, first_seed: int = 1, extra=(), arms=ARMS) -> CaseResult:
    """Run ``arms`` of ``case`` over ``replications`` common seeds; ``extra`` overrides go to every arm."""
    seeds = list(range(first_seed, first_seed + replications))
    return CaseResult(case, seeds, {arm: [run_arm(case, arm, s, extra) for s in seeds] for arm in arms})


def verdict(result: CaseResult, arm: str) -> str:
    """Whether the twin reaches the reported figure of ``arm`` (within the tolerance), in plain words."""
    case = result.case
    target = float(case.reported[arm])
    ci = result.interval(arm)
    if math.isnan(ci["mean"]):
        return "the twin gives no value"
    lo, hi = ci["low"], ci["high"]
    if math.isnan(lo):  # one replication: no interval
        lo = hi = ci["mean"]
    if case.compare == "at_most":
        limit = target + case.tolerance
        if hi <= limit:
            return "reached"
        if lo > limit:
            return f"CANNOT reach: the twin gives {ci['mean']:.3g}, above the reported {target:g}"
        return "undecided: more replications needed"
    if abs(ci["mean"] - target) <= case.tolerance and lo <= target + case.tolerance and hi >= target - case.tolerance:
        return "reached"
    if lo > target + case.tolerance or hi < target - case.tolerance:
        return f"CANNOT reach: the twin gives {ci['mean']:.3g}, the report {target:g} (± {case.tolerance:g})"
    return "undecided: more replications needed"


def table(results: list[CaseResult]) -> str:
    """Reported against twin, with 95% intervals, one block per case."""
    lines = []
    for r in results:
        c = r.case
        lines.append(f"{c.name} — {c.title}  [{c.role}; {len(r.seeds)} replications]")
        lines.append(f"  source {c.source}: {c.quote}")
        for arm in ARMS:
            if arm not in r.arms:
                continue
            ci = r.interval(arm)
            reported = c.reported.get(arm)
            shown = "—" if reported is None else ("≤ " if c.compare == "at_most" else "") + f"{reported:g}"
            line = f"  {arm:<6} {c.kpi}: reported {shown:<8} twin {_fmt(ci)}"
            if reported is not None:
                line += f"  → {verdict(r, arm)}"
                if c.role == "prediction" and arm == "after" and not math.isnan(ci["mean"]):
                    line += f"  (prediction error {ci['mean'] - reported:+.3g})"
            lines.append(line)
        e = r.effect()
        lines.append(f"  effect on {c.effect_kpi} (after − before, paired): {e['diff']:+.4g} "
                     f"[{e['low']:+.4g}, {e['high']:+.4g}]")
        lines.append("  calibrated: " + "; ".join(f"{p['param']} on {p['figure']}" for p in c.calibrated)
                     if c.calibrated else "  calibrated: nothing")
        if c.note:
            lines.append(f"  note: {c.note}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _jsonable(v):
    v = float(v)
    return None if math.isnan(v) else v  # NaN is written as null


def _fmt(ci: dict) -> str:
    if math.isnan(ci["mean"]):
        return "no value"
    if math.isnan(ci["low"]):
        return f"{ci['mean']:.4g}"
    return f"{ci['mean']:.4g} [{ci['low']:.4g}, {ci['high']:.4g}]"


def write_page(results: list[CaseResult], out, plotly: str = "inline") -> Path:
    """``cases.html`` (reported against twin, per case and arm, with intervals) and ``cases.json`` in ``out``."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from twin.report import _figure_html, _write_page

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig = make_subplots(rows=1, cols=len(results), subplot_titles=[r.case.name for r in results])
    for i, r in enumerate(results, start=1):
        arms = [a for a in ARMS if a in r.arms]
        cis = [r.interval(a) for a in arms]
        fig.add_trace(go.Bar(x=arms, y=[c["mean"] for c in cis], name="twin", showlegend=i == 1,
                             marker_color="#1f77b4",
                             error_y={"type": "data", "symmetric": False,
                                      "array": [c["high"] - c["mean"] for c in cis],
                                      "arrayminus": [c["mean"] - c["low"] for c in cis]}), row=1, col=i)
        fig.add_trace(go.Scatter(x=[a for a in arms if a in r.case.reported],
                                 y=[r.case.reported[a] for a in arms if a in r.case.reported], mode="markers",
                                 marker={"symbol": "diamond", "size": 12, "color": "#d62728"}, name="reported",
                                 showlegend=i == 1), row=1, col=i)
        fig.update_yaxes(title_text=r.case.kpi, row=1, col=i)
    fig.update_layout(height=420, margin={"t": 60})
    rows = "".join(f"<tr><td>{html.escape(r.case.name)}</td><td>{r.case.role}</td>"
                   f"<td>{html.escape(r.case.source)}: {html.escape(r.case.quote)}</td>"
                   f"<td>{html.escape('; '.join(verdict(r, a) for a in r.case.reported if a in r.arms))}</td></tr>"
                   for r in results)
    sections = [("Reported against twin (95% intervals)", _figure_html(fig, "cases")),
                ("Cases", f"<table class='summary'><tr><th>case</th><th>role</th><th>source line</th>"
                          f"<th>verdict</th></tr>{rows}</table>"),
                ("Text", f"<pre>{html.escape(table(results))}</pre>")]
    _write_page(out / "cases.html", "community-twin cases", "", sections, plotly)
    runs = [{"case": r.case.name, "seeds": r.seeds,
             "arms": {a: [{k: _jsonable(v) for k, v in run.items()} for run in rs] for a, rs in r.arms.items()}}
            for r in results]
    (out / "cases.json").write_text(json.dumps(runs, indent=1), encoding="utf-8")
    return out / "cases.html"
