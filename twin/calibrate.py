"""Calibration: fit named behaviour parameters to target KPIs by simulation-based optimisation.

A planner who knows what a community looks like today (a case's *before* figure,
or daily KPIs exported from a live store) wants the behaviour parameters that make
the twin look the same before trusting it with a policy.  The twin has no
likelihood to maximise, so each trial of an Optuna study (TPE or CMA-ES) runs the
scenario with the trial's values as overrides over a few replications, averages
each KPI over them (Optuna has no repeated evaluation of its own, so the noise is
handled here) and scores ``sum((twin - target) / target) ** 2`` over the targets.
Every trial runs the same seeds (common random numbers), so two trials differ by
their parameters, not by their luck.

Under noise the best trial looks better than it is: its values are run again on
fresh seeds and that fit is the one reported.  Uncertainty comes two ways: the
spread (10-90%) of each parameter over the best trials — how far the data let a
value wander without losing the fit — and a one-parameter profile of the loss
around the fitted value, the others held at theirs.

A calibration makes the twin agree with the figures it was fitted to; it is not
evidence that the twin predicts anything else (see the cases' ``role``).
"""
from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twin.config import ConfigError, did_you_mean

SAMPLERS = ("tpe", "cmaes")
#: The squared relative error a target counts for when a trial cannot measure its KPI (no ticket, no vote).
MISSING_PENALTY = 100.0
#: Share of the trials (at least :data:`MIN_BEST`) whose parameters give the spread of the fit.
BEST_SHARE = 0.1
MIN_BEST = 5
#: The profile spans this share of each parameter's search range on either side of the fitted value.
PROFILE_HALF_WIDTH = 0.25
TRIAL_COLUMNS = {
    "trial": ("number", "the trial's number, in the order the sampler proposed them"),
    "loss": ("squared relative error", "sum over targets of ((twin - target) / target)^2, KPIs averaged over "
                                       "the replications"),
}


@dataclass(frozen=True)
class Bound:
    """A parameter to fit and its search range (``integer``: the config key holds a whole number)."""

    key: str
    low: float
    high: float
    integer: bool = False


@dataclass
class Problem:
    """What to fit to what: the scenario and its fixed overrides, the parameters and the targets.

    ``days`` (from a targets CSV) makes each target the mean of a daily KPI column over
    those days; without it targets are summary KPIs.  ``case``/``arm`` run the case's
    arm (its size and overrides, and the case KPIs read off its log).
    """

    scenario: str
    overrides: list
    bounds: list
    targets: dict
    days: list = field(default_factory=list)
    case: object = None
    arm: str = ""

    def describe(self) -> dict:
        overrides = self.case.arm(self.arm, self.overrides) if self.case else list(self.overrides)
        return {"scenario": self.scenario, "overrides": overrides,
                "case": self.case.name if self.case else None, "arm": self.arm or None,
                "params": {b.key: {"low": b.low, "high": b.high, "integer": b.integer} for b in self.bounds},
                "targets": dict(self.targets), "target_days": [int(d) for d in self.days] or None}


# ------------------------------------------------------------------ reading what the user asks for
def parse_bound(spec: str) -> Bound:
    """``key=low:high`` → :class:`Bound` (type and range checked later, against the scenario)."""
    key, sep, rng = spec.partition("=")
    low, colon, high = rng.partition(":")
    try:
        if not (sep and colon and key.strip()):
            raise ValueError
        lo, hi = float(low), float(high)
    except ValueError:
        raise ConfigError(f"--param {spec!r}: expected KEY=LOW:HIGH, e.g. residents.activity_base=-8:-5") from None
    if not lo < hi:
        raise ConfigError(f"--param {spec!r}: the low bound must be below the high bound")
    return Bound(key.strip(), lo, hi)


def parse_target(spec: str) -> tuple[str, float]:
    """``kpi=value`` → ``(kpi, value)``."""
    kpi, sep, value = spec.partition("=")
    try:
        if not (sep and kpi.strip()):
            raise ValueError
        return kpi.strip(), float(value)
    except ValueError:
        raise ConfigError(f"--target {spec!r}: expected KPI=VALUE, e.g. participation_rate=0.15") from None


def summary_kpis(case: bool = False) -> tuple:
    """The KPIs a target may name: a run's summary keys (and, for a case, the KPIs read off its log)."""
    from twin.engine.kpis import summarise
    from twin.services.events import empty

    nothing = np.zeros(0)
    with warnings.catch_warnings():  # means of nothing: only the keys are wanted
        warnings.simplefilter("ignore")
        keys = list(summarise(empty(0), days=1, adults=1, turnouts=[], satisfaction_daily=nothing,
                              repair_times={"submitted": nothing, "started": nothing, "completed": nothing}))
        if case:
            from twin.cases import case_kpis, participation_trajectory

            keys += list(case_kpis(empty(0), [])) + list(participation_trajectory(empty(0), 1, 365))
    return tuple(keys)


def daily_kpis() -> tuple:
    """The daily KPI columns a targets CSV may hold (``day`` aside)."""
    from twin.results import DAILY_COLUMNS

    return tuple(k for k in DAILY_COLUMNS if k != "day")


def check_targets(targets: dict, allowed: tuple, what: str) -> None:
    """Every target names an allowed KPI and a non-zero figure (the loss divides by it)."""
    if not targets:
        raise ConfigError("no target: give --target KPI=VALUE, --targets-csv FILE or --case NAME")
    for kpi, value in targets.items():
        if kpi not in allowed:
            raise ConfigError(f"unknown KPI {kpi!r}; allowed {what}: {', '.join(allowed)}{did_you_mean(kpi, allowed)}")
        if not math.isfinite(value) or value == 0:
            raise ConfigError(f"target {kpi} = {value!r} is not allowed; expected a non-zero number (the fit "
                              "error is relative to it)")


def read_targets_csv(path) -> tuple[dict, list]:
    """Observed daily KPIs (columns ``day`` and daily KPI names) → each column's mean over its days, and the days."""
    import pandas as pd

    from twin.results import DamagedRunFolder

    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"targets CSV not found: {path}") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DamagedRunFolder(path, f"not a CSV table of daily KPIs: {str(e).splitlines()[0]}") from None
    if "day" not in frame:
        raise DamagedRunFolder(path, f"has no 'day' column; expected columns day and daily KPIs among "
                                     f"{', '.join(daily_kpis())}")
    columns = [c for c in frame if c != "day"]
    check_targets({c: 1.0 for c in columns}, daily_kpis(), "daily KPIs (columns of a targets CSV)")
    text = [c for c in frame if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:
        raise DamagedRunFolder(path, f"column {text[0]!r} holds text; every daily KPI is a number")
    days = frame["day"].to_numpy()
    if len(days) == 0 or (days < 0).any() or (days != np.round(days)).any() or len(set(days)) != len(days):
        raise DamagedRunFolder(path, "its 'day' column must hold distinct whole days counting from 0")
    targets = {c: float(frame[c].mean()) for c in columns}
    check_targets(targets, daily_kpis(), "daily KPIs (columns of a targets CSV)")
    return targets, sorted(int(d) for d in days)


def check_bounds(problem: Problem) -> list:
    """Each parameter is a numeric config key and both bounds are values it may take; returns the typed bounds.

    An unknown key fails with the configuration's own error (it names the allowed keys); a
    bound outside a parameter's range names the bound and the range.
    """
    from twin.params import parameters

    known = {p.key: p for p in parameters()}
    typed = []
    for b in problem.bounds:
        if b.key not in known:
            _load(problem, [f"{b.key}={b.low!r}"])  # the config's own "unknown key ...; allowed keys: ..."
            raise ConfigError(f"unknown key {b.key!r}")  # a key Hydra would take but no parameter describes
        default = known[b.key].default
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            raise ConfigError(f"--param {b.key}: only numeric parameters can be fitted; {b.key} is "
                              f"{known[b.key].allowed}")
        integer = isinstance(default, int)
        if integer and not (float(b.low).is_integer() and float(b.high).is_integer()):
            raise ConfigError(f"--param {b.key}: takes whole numbers; give integer bounds")
        bound = Bound(b.key, int(b.low) if integer else b.low, int(b.high) if integer else b.high, integer)
        for value in (bound.low, bound.high):
            try:
                _load(problem, [f"{b.key}={value!r}"])
            except ConfigError as e:
                raise ConfigError(f"--param {b.key}={b.low:g}:{b.high:g}: the bound {value:g} is outside the "
                                  f"parameter's range ({e})") from None
        typed.append(bound)
    if len({b.key for b in typed}) != len(typed):
        raise ConfigError("--param: each parameter may be given once")
    return typed


def _load(problem: Problem, extra: list):
    from twin.config import load_scenario

    if problem.case is not None:
        return load_scenario(problem.case.scenario, problem.case.arm(problem.arm, [*problem.overrides, *extra]))
    return load_scenario(problem.scenario, [*problem.overrides, *extra])


# ------------------------------------------------------------------ one trial
def overrides_of(values: dict) -> list[str]:
    """A trial's values as Hydra overrides."""
    return [f"{k}={v!r}" for k, v in values.items()]


def simulate(problem: Problem, values: dict, seeds: list) -> dict:
    """Each target KPI averaged over ``seeds`` (NaN where no replication measured it), the trial's values applied."""
    runs = []
    for seed in seeds:
        if problem.case is not None:
            from twin.cases import run_arm

            runs.append(run_arm(problem.case, problem.arm, seed, [*problem.overrides, *overrides_of(values)]))
            continue
        from twin.compare import run_arm

        result = run_arm(problem.scenario, [*problem.overrides, *overrides_of(values)], [seed])[0]
        if problem.days:
            kpis = result.kpis.set_index("day")
            runs.append({k: float(kpis.loc[kpis.index.intersection(problem.days), k].mean()) for k in problem.targets})
        else:
            runs.append(result.summary)
    out = {}
    for k in problem.targets:
        column = np.array([r.get(k, math.nan) for r in runs], float)
        out[k] = math.nan if np.isnan(column).all() else float(np.nanmean(column))
    return out


def loss(simulated: dict, targets: dict) -> float:
    """Sum over targets of the squared relative error; a KPI the trial could not measure costs :data:`MISSING_PENALTY`."""
    total = 0.0
    for k, target in targets.items():
        value = simulated.get(k, math.nan)
        total += MISSING_PENALTY if math.isnan(value) else ((value - target) / target) ** 2
    return total


# ------------------------------------------------------------------ the study
def make_sampler(name: str, seed: int):
    """A seeded Optuna sampler: the same seed proposes the same trials."""
    import optuna

    if name not in SAMPLERS:
        raise ConfigError(f"sampler = {name!r} is not allowed; expected one of {', '.join(map(repr, SAMPLERS))}")
    if name == "cmaes":
        # one parameter: CMA-ES has no covariance to learn and Optuna falls back to random search (with a warning)
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed)


def _suggest(trial, bounds: list) -> dict:
    return {b.key: (trial.suggest_int(b.key, int(b.low), int(b.high)) if b.integer
                    else trial.suggest_float(b.key, b.low, b.high)) for b in bounds}


def calibrate(problem: Problem, sampler: str = "tpe", trials: int = 30, replications: int = 3, seed: int = 1,
              profile_points: int = 7, out=None, plotly: str = "inline", progress: bool = True) -> dict:
    """Fit ``problem``'s parameters; returns the calibration record (and writes it to ``out``, if given).

    Trials run the replication seeds ``seed .. seed+replications-1``; the best values are
    re-run on the next ``replications`` seeds for the reported fit.
    """
    import optuna
    from tqdm.auto import tqdm

    from twin.warmup import compile_notice

    if trials < 1 or replications < 1 or profile_points < 2:
        raise ConfigError("trials and replications must be at least 1, profile points at least 2")
    problem.bounds = check_bounds(problem)
    seeds = list(range(seed, seed + replications))
    fresh = list(range(seed + replications, seed + 2 * replications))
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial's traceback is the CLI's to report, in a line
    study = optuna.create_study(direction="minimize", sampler=make_sampler(sampler, seed))

    def objective(trial):
        values = _suggest(trial, problem.bounds)
        simulated = simulate(problem, values, seeds)
        trial.set_user_attr("kpis", simulated)
        return loss(simulated, problem.targets)

    with compile_notice(), tqdm(total=trials, desc="trials", unit="trial", disable=not progress) as bar:
        def advance(study, trial):
            bar.update(1)
            bar.set_postfix(best=f"{study.best_value:.4g}")

        study.optimize(objective, n_trials=trials, callbacks=[advance])
    done = [t for t in study.trials if t.value is not None]
    best = study.best_trial
    best_values = dict(best.params)
    refit = simulate(problem, best_values, fresh)
    record = {
        **problem.describe(),
        "sampler": sampler, "trials": trials, "replications": replications, "seed": seed,
        "seeds": seeds, "fresh_seeds": fresh,
        "fitted": best_values,
        "best_trial": best.number,
        "loss_on_trial_seeds": best.value,
        "loss_on_fresh_seeds": loss(refit, problem.targets),
        "fit": {k: {"target": t, "twin": refit[k], "twin_on_trial_seeds": best.user_attrs["kpis"][k],
                    "relative_error": (refit[k] - t) / t} for k, t in problem.targets.items()},
        "uncertainty": spread(done, problem.bounds),
        "at_bound": at_bounds(best_values, problem.bounds),
        "profile": profile(problem, best_values, seeds, profile_points),
        "note": ("Fitted values make the twin agree with these targets; they are not evidence that it "
                 "predicts anything else. The spread is the 10-90% range of each parameter over the best "
                 "trials; the profile varies one parameter with the others at their fitted values."),
    }
    if out:
        write(out, record, done, problem.bounds, plotly=plotly)
    return record


def spread(trials: list, bounds: list) -> dict:
    """Each parameter's 10%, 50% and 90% points over the best trials (:data:`BEST_SHARE`, at least :data:`MIN_BEST`)."""
    ranked = sorted(trials, key=lambda t: t.value)
    top = ranked[: max(MIN_BEST, math.ceil(BEST_SHARE * len(ranked)))]
    out = {}
    for b in bounds:
        values = np.array([t.params[b.key] for t in top], float)
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        out[b.key] = {"best_trials": len(top), "p10": float(p10), "p50": float(p50), "p90": float(p90),
                      "loss_worst_of_them": float(top[-1].value)}
    return out


#: A fitted value this close to an end of its range (a share of the range) is said to sit on it.
AT_BOUND_SHARE = 0.01


def at_bounds(fitted: dict, bounds) -> dict:
    """``{parameter: "low" | "high"}`` for fitted values on an end of their search range: the best fit
    may lie beyond it, and the range should be widened before the value is trusted."""
    out = {}
    for b in bounds:
        margin = AT_BOUND_SHARE * (b.high - b.low)
        value = fitted[b.key]
        if value <= b.low + margin:
            out[b.key] = "low"
        elif value >= b.high - margin:
            out[b.key] = "high"
    return out


def profile_grid(bound: Bound, best: float, points: int) -> list:
    """Values around ``best``: :data:`PROFILE_HALF_WIDTH` of the range either side, clipped to it, ``best`` included."""
    half = PROFILE_HALF_WIDTH * (bound.high - bound.low)
    grid = np.linspace(max(bound.low, best - half), min(bound.high, best + half), points)
    values = sorted({*(float(v) for v in grid), float(best)})
    if bound.integer:
        values = sorted({int(round(v)) for v in values})
    return values


def profile(problem: Problem, best: dict, seeds: list, points: int) -> dict:
    """The loss along each parameter with the others at their fitted values (the trials' seeds)."""
    out = {}
    for b in problem.bounds:
        out[b.key] = [{"value": v, "loss": loss(simulate(problem, {**best, b.key: v}, seeds), problem.targets)}
                      for v in profile_grid(b, best[b.key], points)]
    return out


# ------------------------------------------------------------------ the folder
def trials_frame(trials: list, bounds: list, targets: dict):
    """One row per trial: its number, loss, parameter values and each target KPI (averaged over replications)."""
    import pandas as pd

    return pd.DataFrame([{"trial": t.number, "loss": t.value, **{b.key: t.params[b.key] for b in bounds},
                          **{f"twin.{k}": t.user_attrs["kpis"][k] for k in targets}} for t in trials])


def write(out, record: dict, trials: list, bounds: list, plotly: str = "inline") -> Path:
    """``calibration.json``, ``trials.csv``/``.parquet`` and ``calibration.html`` in ``out``."""
    from twin.results import _jsonable, write_parquet

    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    (d / "calibration.json").write_text(json.dumps(_jsonable(record), indent=2), encoding="utf-8")
    frame = trials_frame(trials, bounds, record["targets"])
    frame.to_csv(d / "trials.csv", index=False)
    columns = {**TRIAL_COLUMNS, **{b.key: ("value", "the trial's value of this parameter") for b in bounds},
               **{f"twin.{k}": ("per KPI", "the twin's KPI, averaged over the replications") for k in record["targets"]}}
    write_parquet(frame, d / "trials.parquet", columns)
    page(record, frame, d / "calibration.html", plotly=plotly)
    return d


def page(record: dict, frame, path, plotly: str = "inline") -> Path:
    """The calibration page: fitted values with their spread, the fit per target, loss by trial, profiles."""
    import html

    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from twin.report import _figure_html, _write_page

    keys = list(record["params"])
    losses = frame.sort_values("trial")
    trace = go.Figure()
    trace.add_trace(go.Scatter(x=losses["trial"], y=losses["loss"], mode="markers", name="trial",
                               marker=dict(color="#1f77b4", size=7, opacity=0.7)))
    trace.add_trace(go.Scatter(x=losses["trial"], y=losses["loss"].cummin(), mode="lines", name="best so far",
                               line=dict(color="#d62728")))
    trace.update_xaxes(title_text="trial")
    trace.update_yaxes(title_text="loss (sum of squared relative errors)", type="log")
    trace.update_layout(height=380, legend=dict(orientation="h", y=1.1))
    curves = make_subplots(rows=1, cols=len(keys), subplot_titles=keys)
    for i, key in enumerate(keys, start=1):
        points = record["profile"][key]
        curves.add_trace(go.Scatter(x=[p["value"] for p in points], y=[p["loss"] for p in points],
                                    mode="lines+markers", name=key, showlegend=False), row=1, col=i)
        curves.add_vline(x=record["fitted"][key], line=dict(color="#d62728", dash="dot"), row=1, col=i)
        curves.update_xaxes(title_text=key, row=1, col=i)
        curves.update_yaxes(title_text="loss", row=1, col=i)
    curves.update_layout(height=360, margin=dict(t=60))
    fitted = "".join(
        f"<tr><td>{html.escape(k)}</td><td class='value'>{record['fitted'][k]:.4g}</td>"
        f"<td class='ci'>[{u['p10']:.4g}, {u['p90']:.4g}]</td>"
        f"<td class='ci'>[{record['params'][k]['low']:g}, {record['params'][k]['high']:g}]</td></tr>"
        for k, u in record["uncertainty"].items())
    fit = "".join(f"<tr><td>{html.escape(k)}</td><td class='value'>{f['target']:.4g}</td>"
                  f"<td class='value'>{_num(f['twin'])}</td><td class='value'>{_num(100 * f['relative_error'], '+.1f')}"
                  f"</td></tr>" for k, f in record["fit"].items())
    best_n = next(iter(record["uncertainty"].values()))["best_trials"] if record["uncertainty"] else 0
    sections = [
        ("Fitted values", "<table class='summary'><thead><tr><th>parameter</th><th>fitted</th>"
                          f"<th>10–90% over the best {best_n} trials</th><th>search range</th></tr></thead>"
                          f"<tbody>{fitted}</tbody></table>"),
        ("Fit on fresh seeds", "<table class='summary'><thead><tr><th>target KPI</th><th>target</th><th>twin</th>"
                               f"<th>error (%)</th></tr></thead><tbody>{fit}</tbody></table>"
                               f"<p class='meta'>loss {_num(record['loss_on_fresh_seeds'])} on seeds "
                               f"{_seeds(record['fresh_seeds'])} (the trials ran seeds {_seeds(record['seeds'])}; "
                               f"there the best trial's loss was {_num(record['loss_on_trial_seeds'])}).</p>"),
        ("Loss by trial", _figure_html(trace, "loss")),
        ("Profiles (one parameter varied, the others at their fitted values)", _figure_html(curves, "profile")),
    ]
    where = (f"case <b>{html.escape(record['case'])}</b> ({html.escape(record['arm'])})" if record.get("case")
             else f"scenario <b>{html.escape(record['scenario'])}</b>")
    header = (f"<p class='meta'>{where} · sampler <b>{record['sampler']}</b> · {record['trials']} trials × "
              f"{record['replications']} replications · seed {record['seed']}</p>"
              f"<p class='meta'>{html.escape(record['note'])}</p>")
    return _write_page(path, "community-twin calibration", header, sections, plotly)


def _num(value, spec: str = ".4g") -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _seeds(seeds: list) -> str:
    return f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])


def summary_line(record: dict) -> str:
    """The result for terminals: each fitted value with its spread, each target against the twin."""
    from twin.results import text_table

    params = text_table(["parameter", "fitted", "10–90% of best trials"],
                        [[k, f"{record['fitted'][k]:.4g}", f"[{u['p10']:.4g}, {u['p90']:.4g}]"]
                         for k, u in record["uncertainty"].items()], "lrr")
    fit = text_table(["target KPI", "target", "twin (fresh seeds)", "error"],
                     [[k, f"{f['target']:.4g}", _num(f["twin"]), _num(100 * f["relative_error"], "+.1f") + "%"]
                      for k, f in record["fit"].items()], "lrrr")
    warnings = "".join(
        f"\nnote: {k} = {record['fitted'][k]:.4g} is on the {end} end of its search range "
        f"[{record['params'][k]['low']:g}, {record['params'][k]['high']:g}]: the best fit may lie beyond it; "
        f"widen the range" for k, end in record.get("at_bound", {}).items())
    return f"{params}\n\n{fit}\nloss {_num(record['loss_on_fresh_seeds'])} on fresh seeds{warnings}"


# ------------------------------------------------------------------ the command
def problem_from_args(args) -> Problem:
    """The :class:`Problem` a ``twin calibrate`` command line describes (every input checked, none run)."""
    from twin.cases import ARMS, load_case

    targets = dict(parse_target(t) for t in args.target or [])
    case, days = None, []
    if args.case:
        case = load_case(args.case)
        if args.arm not in ARMS:
            raise ConfigError(f"--arm = {args.arm!r} is not allowed; expected one of {', '.join(ARMS)}")
        if not targets and not args.targets_csv:
            if args.arm not in case.reported:
                raise ConfigError(f"case {case.name!r} reports no {args.arm} figure; give --target KPI=VALUE")
            targets = {case.kpi: float(case.reported[args.arm])}
    if args.targets_csv:
        if targets and not args.case:
            raise ConfigError("give --target or --targets-csv, not both")
        if case is not None:
            raise ConfigError("--targets-csv fits daily KPIs of a scenario; it does not take --case")
        targets, days = read_targets_csv(args.targets_csv)
    elif case is not None:
        check_targets(targets, summary_kpis(case=True), "KPIs (summary and case KPIs)")
    else:
        check_targets(targets, summary_kpis(), "KPIs (summary keys)")
    overrides = list(args.overrides)
    if days and not any(o.startswith("sim.days=") for o in overrides):
        overrides.append(f"sim.days={days[-1] + 1}")  # the twin runs as long as the observations go
    if not args.param:
        raise ConfigError("no parameter to fit: give --param KEY=LOW:HIGH (one or more)")
    problem = Problem(scenario=case.scenario if case else args.scenario, overrides=overrides,
                      bounds=[parse_bound(p) for p in args.param], targets=targets, days=days, case=case,
                      arm=args.arm if case else "")
    if days:
        cfg = _load(problem, [])
        if cfg.sim.days <= days[-1]:
            raise ConfigError(f"sim.days = {cfg.sim.days} is too short for the targets CSV, whose days run to "
                              f"{days[-1]}; set sim.days={days[-1] + 1} or more")
    return problem


def cmd_calibrate(args) -> int:
    import sys

    problem = problem_from_args(args)
    print(f"community-twin: calibrating {', '.join(b.key for b in problem.bounds)} on "
          f"{', '.join(problem.targets)} ({args.sampler}, {args.trials} trials × {args.replications} replications)",
          file=sys.stderr)
    out = Path(args.out) if args.out else None
    record = calibrate(problem, sampler=args.sampler, trials=args.trials, replications=args.replications,
                       seed=args.seed, profile_points=args.profile_points, out=out, plotly=args.plotly)
    print(summary_line(record))
    if out:
        print(f"\ncalibration folder: {out}")
    return 0


def add_command(sub) -> None:
    """``twin calibrate``: its options on the CLI's subcommand parser."""
    from twin.cases import ARMS
    from twin.cli import PLOTLY_HELP

    p = sub.add_parser("calibrate", help="fit behaviour parameters to target KPIs (Optuna over replications)",
                       description="Fit named parameters so the twin's KPIs match targets (KPI=VALUE, a targets "
                                   "CSV of observed daily KPIs, or a case's reported figure): each trial runs the "
                                   "scenario over replications and scores the squared relative errors. Writes "
                                   "calibration.json, trials.csv/.parquet and calibration.html with --out.")
    p.add_argument("-s", "--scenario", default="default", help="a shipped scenario (see `twin scenarios`)")
    p.add_argument("--param", action="append", metavar="KEY=LOW:HIGH",
                   help="a parameter and its search range, e.g. residents.activity_base=-8:-5 (repeatable)")
    p.add_argument("--target", action="append", metavar="KPI=VALUE",
                   help="a summary KPI and the figure to fit, e.g. participation_rate=0.15 (repeatable)")
    p.add_argument("--targets-csv", dest="targets_csv", default=None, metavar="FILE",
                   help="observed daily KPIs: a column day and daily KPI columns (each fitted on its mean)")
    p.add_argument("--case", default=None, metavar="NAME", help="fit to a case's arm (its size, overrides and figure)")
    p.add_argument("--arm", choices=ARMS, default="before", help="the case's arm")
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="Optuna's TPE or CMA-ES")
    p.add_argument("--trials", type=int, default=30, help="trials of the study")
    p.add_argument("-n", "--replications", type=int, default=3, help="seeds each trial averages over")
    p.add_argument("--seed", type=int, default=1, help="the sampler's seed and the first replication seed")
    p.add_argument("--profile-points", dest="profile_points", type=int, default=7,
                   help="points of each parameter's loss profile")
    p.add_argument("--out", default=None, metavar="DIR", help="write calibration.json, trials and calibration.html")
    p.add_argument("--plotly", choices=("inline", "cdn", "shared"), default="inline", help=PLOTLY_HELP)
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="fixed overrides, e.g. community.households=200 sim.days=30")
    p.set_defaults(func=cmd_calibrate)


__all__ = ["Bound", "Problem", "calibrate", "check_bounds", "loss", "parse_bound", "parse_target",
           "read_targets_csv", "simulate", "summary_kpis", "add_command"]
