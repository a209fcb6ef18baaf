"""Policy comparison: a policy arm against a baseline arm, over paired replications.

Both arms run the same seeds (common random numbers: the counter-based draws
make every seed's community and events identical except where the policy
changes them), so the per-seed differences have small variance.  Each KPI's
mean difference gets a 95% confidence interval from Student's t and a paired
t-test; the p-values are adjusted with Holm's step-down correction over all the
KPIs compared, so "significant" holds for the family of KPIs at once (a page of
fifteen KPIs at 5% each would otherwise show one false difference in two runs).
"""
from __future__ import annotations

import dataclasses
import html
import json
import math
from pathlib import Path

import numpy as np


def run_arm(scenario: str, overrides: list[str], seeds) -> list:
    from twin.config import load_scenario
    from twin.engine import Twin

    results = []
    for seed in seeds:
        cfg = load_scenario(scenario, list(overrides) + [f"seed={seed}", "progress=false"])
        results.append(Twin(cfg).run())
    return results


def paired_ci(a, b, level: float = 0.95) -> dict:
    """Mean of b − a with a t-interval; NaN pairs are dropped."""
    from scipy import stats

    d = np.asarray(b, float) - np.asarray(a, float)
    d = d[~np.isnan(d)]
    n = len(d)
    if n == 0:
        return {"diff": math.nan, "low": math.nan, "high": math.nan, "n": 0}
    mean = float(d.mean())
    if n == 1:
        return {"diff": mean, "low": math.nan, "high": math.nan, "n": 1}
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / math.sqrt(n))
    return {"diff": mean, "low": mean - half, "high": mean + half, "n": n}


#: The family-wise error rate of the significance flags, and the correction that holds it.
ALPHA = 0.05
CORRECTION = "Holm"


def paired_p(a, b) -> float:
    """Two-sided p-value of a paired t-test of b − a against zero; NaN pairs dropped, NaN with fewer than two.

    Pairs that all differ by the same amount (up to rounding) have no spread: p is 1 when
    that amount is zero (identical arms) and 0 otherwise (a difference no replication contradicts).
    """
    from scipy import stats

    d = np.asarray(b, float) - np.asarray(a, float)
    d = d[~np.isnan(d)]
    if len(d) < 2:
        return math.nan
    scale = float(np.abs(d).max())
    if scale == 0.0:
        return 1.0
    if float(d.max() - d.min()) <= 1e-12 * scale:  # the same shift, up to rounding
        return 0.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def holm(pvalues: dict) -> dict:
    """Holm's step-down adjustment of ``{name: p}`` (NaN stays NaN and does not count among the tests).

    The k-th smallest of m p-values is multiplied by m − k + 1, and the adjusted values are
    made non-decreasing in that order and capped at 1; an adjusted p below :data:`ALPHA`
    keeps the chance of any false "significant" among the m at most ALPHA.
    """
    tested = sorted((p, k) for k, p in pvalues.items() if not math.isnan(p))
    m = len(tested)
    out = {k: math.nan for k in pvalues}
    running = 0.0
    for i, (p, k) in enumerate(tested):
        running = max(running, min(1.0, (m - i) * p))
        out[k] = running
    return out


def compare(scenario: str, baseline: list[str], policy: list[str], replications: int = 10, out=None,
            first_seed: int = 1, plotly: str = "inline") -> str:
    """Run both arms and return a table of KPI means and differences with 95% CIs.

    With ``out``, the folder gets ``compare.json`` (the overrides, seeds, each
    KPI's row and every run's summary), each arm's daily KPIs averaged over the
    seeds (``baseline_kpis.csv``, ``policy_kpis.csv``), the tidy tables
    ``differences``, ``runs`` and ``daily_runs`` (see :func:`write_tidy`; every CSV
    with a Parquet twin) and ``compare.html``, the arms side by side; ``twin report``
    redraws that page from them.
    """
    from tqdm.auto import tqdm

    from twin.warmup import compile_notice

    seeds = list(range(first_seed, first_seed + replications))
    with compile_notice():  # the first pair compiles any kernel the cache lacks; the bar starts after it
        base, pol = _light(run_arm(scenario, baseline, seeds[:1])), _light(run_arm(scenario, policy, seeds[:1]))
    for seed in tqdm(seeds[1:], desc="replications", unit="seed", initial=1, total=len(seeds)):
        base += _light(run_arm(scenario, baseline, [seed]))
        pol += _light(run_arm(scenario, policy, [seed]))
    rows = kpi_rows([r.summary for r in base], [r.summary for r in pol])
    if out:
        from twin.results import _jsonable

        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        record = {"scenario": scenario, "baseline": list(baseline), "policy": list(policy), "seeds": seeds,
                  "kpis": rows, "summaries": {"baseline": [r.summary for r in base],
                                              "policy": [r.summary for r in pol]},
                  "config": {"baseline": base[0].config, "policy": pol[0].config}}
        (d / "compare.json").write_text(json.dumps(_jsonable(record), indent=2))
        for arm, results in (("baseline", base), ("policy", pol)):
            mean_kpis([r.kpis for r in results]).to_csv(d / f"{arm}_kpis.csv", index=False)
        write_tidy(d, rows, seeds, base, pol)
        redraw(d, plotly=plotly)
    return format_table(rows)


#: Columns of ``differences.csv`` / ``.parquet``: one row per KPI (units per KPI in the ``unit`` column).
DIFFERENCE_COLUMNS = {
    "kpi": ("name", "the summary key"),
    "unit": ("name", "the KPI's unit: min, h, share (a fraction), 0–100, 1–5, points or count"),
    "baseline": ("per KPI", "mean over the baseline arm's seeds"),
    "policy": ("per KPI", "mean over the policy arm's seeds"),
    "diff": ("per KPI", "mean of policy − baseline over paired seeds"),
    "low": ("per KPI", "95% t-interval of diff, lower end"),
    "high": ("per KPI", "95% t-interval of diff, upper end"),
    "n": ("seeds", "paired seeds with a value in both arms"),
    "p": ("probability", "two-sided paired t-test of diff = 0"),
    "p_holm": ("probability", "p adjusted by Holm's step-down correction over every KPI with a p"),
    "significant": ("flag", "p_holm below 0.05: a difference at a 5% family-wise error rate"),
}
#: Columns of ``daily_runs.csv`` / ``.parquet`` beyond the daily KPIs: one row per arm, seed and day.
DAILY_RUN_COLUMNS = {
    "arm": ("name", "baseline or policy"),
    "seed": ("seed", "the replication's seed, the same in both arms"),
}
#: Columns of ``runs.csv`` / ``.parquet``: one row per arm, seed and KPI (long format).
RUN_COLUMNS = {
    "arm": ("name", "baseline or policy"),
    "seed": ("seed", "the replication's seed, the same in both arms"),
    "kpi": ("name", "the summary key"),
    "value": ("per KPI", "that run's figure"),
}


def write_tidy(directory, rows: dict, seeds: list, base: list, pol: list) -> None:
    """The comparison as tidy tables, CSV and Parquet side by side: ``differences`` and ``runs``.

    Each daily-KPI table (``<arm>_kpis.csv``) gets its Parquet twin as well, and
    ``daily_runs`` holds every replication's daily KPIs (the page's bands).
    """
    import pandas as pd

    from twin.results import DAILY_COLUMNS, tidy_unit, write_parquet

    d = Path(directory)
    differences = pd.DataFrame([{"kpi": k, "unit": tidy_unit(k), **r} for k, r in rows.items()])
    runs = pd.DataFrame([{"arm": arm, "seed": seed, "kpi": k, "value": float(v)}
                         for arm, results in (("baseline", base), ("policy", pol))
                         for seed, r in zip(seeds, results) for k, v in r.summary.items()])
    for name, frame, columns in (("differences", differences, DIFFERENCE_COLUMNS), ("runs", runs, RUN_COLUMNS)):
        frame.to_csv(d / f"{name}.csv", index=False)
        write_parquet(frame, d / f"{name}.parquet", columns)
    for arm in ("baseline", "policy"):
        write_parquet(pd.read_csv(d / f"{arm}_kpis.csv"), d / f"{arm}_kpis.parquet", DAILY_COLUMNS)
    daily = pd.concat([r.kpis.assign(arm=arm, seed=seed) for arm, results in (("baseline", base), ("policy", pol))
                       for seed, r in zip(seeds, results)], ignore_index=True)
    daily = daily[["arm", "seed", *[c for c in daily if c not in ("arm", "seed")]]]
    daily.to_csv(d / "daily_runs.csv", index=False)
    write_parquet(daily, d / "daily_runs.parquet", {**DAILY_RUN_COLUMNS, **DAILY_COLUMNS})


def _light(results: list) -> list:
    """The results without their event logs: a comparison keeps summaries and daily KPIs, so memory stays one run's."""
    return [dataclasses.replace(r, event_log=r.event_log[:0].copy()) for r in results]


def kpi_rows(base: list[dict], pol: list[dict]) -> dict:
    """Per KPI: each arm's mean over seeds, the paired difference with its 95% interval and its significance.

    ``p`` is the paired t-test's, ``p_holm`` that p after Holm's correction over every
    KPI, and ``significant`` says ``p_holm`` < :data:`ALPHA`.
    """
    rows = {}
    for k in base[0]:
        a = [s[k] for s in base]
        b = [s[k] for s in pol]
        rows[k] = {"baseline": _nanmean(a), "policy": _nanmean(b), **paired_ci(a, b), "p": paired_p(a, b)}
    for k, p in holm({k: r["p"] for k, r in rows.items()}).items():
        rows[k]["p_holm"] = p
        rows[k]["significant"] = bool(p < ALPHA)
    return rows


def _nanmean(values) -> float:
    values = np.asarray(values, float)
    return math.nan if np.isnan(values).all() else float(np.nanmean(values))


def mean_kpis(frames: list):
    """Daily KPIs averaged over replications, day by day."""
    import pandas as pd

    return pd.concat(frames).groupby("day", as_index=False).mean()


def redraw(directory, plotly: str = "inline") -> Path:
    """(Re)write ``compare.html`` of a comparison folder from its files; returns its path."""
    from twin.report import compare_report
    from twin.results import DamagedRunFolder, Result, read_json, read_kpis
    from twin.services.events import empty

    d = Path(directory)
    record = read_json(d / "compare.json")
    try:
        rows = {k: {c: math.nan if v is None else v for c, v in r.items()} for k, r in record["kpis"].items()}
        for r in rows.values():
            for c in ("baseline", "policy", "diff", "low", "high"):
                float(r[c])
            for c in ("p", "p_holm"):  # a comparison written before significance was added has none
                float(r.get(c, math.nan))
        arms = {}
        for arm in ("baseline", "policy"):
            config = record.get("config", {}).get(arm) or {}
            summary = {k: r[arm] for k, r in rows.items()}
            arms[arm] = Result(summary=summary, kpis=read_kpis(d / f"{arm}_kpis.csv"), event_log=empty(0),
                               config=config, provenance={"seed": _seed_range(record["seeds"])})
        daily_runs = read_daily_runs(d / "daily_runs.csv") if (d / "daily_runs.csv").exists() else None
        note = (f"scenario <b>{html.escape(str(record['scenario']))}</b> · {len(record['seeds'])} paired seeds · "
                f"baseline <code>{html.escape(' '.join(record['baseline']) or '(as configured)')}</code> · "
                f"policy <code>{html.escape(' '.join(record['policy']))}</code>")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DamagedRunFolder(d / "compare.json", f"not a comparison record ({type(e).__name__}: {e})") from None
    return compare_report(arms, d / "compare.html", differences=rows, note=note, plotly=plotly,
                          daily_runs=daily_runs)


def read_daily_runs(path) -> dict:
    """``daily_runs.csv`` → ``{arm: [each seed's daily KPIs]}``; :class:`DamagedRunFolder` if it is not that table."""
    import pandas as pd

    from twin.results import DamagedRunFolder

    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DamagedRunFolder(path, f"not a CSV table of daily KPIs: {str(e).splitlines()[0]}") from None
    missing = [c for c in ("arm", "seed", "day") if c not in frame]
    if missing:
        raise DamagedRunFolder(path, f"has no {missing[0]!r} column; not a table of each run's daily KPIs")
    values = frame.drop(columns=["arm", "seed"])
    text = [c for c in values if not pd.api.types.is_numeric_dtype(values[c])]
    if text:
        raise DamagedRunFolder(path, f"column {text[0]!r} holds text; every daily KPI is a number")
    runs = {}
    for (arm, _), run in frame.groupby(["arm", "seed"], sort=False):
        runs.setdefault(str(arm), []).append(run.drop(columns=["arm", "seed"]).sort_values("day")
                                             .reset_index(drop=True))
    return runs


def _seed_range(seeds: list) -> str:
    return f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])


def format_table(rows: dict) -> str:
    """The comparison for terminals: aligned columns, units, shares as % (their differences in pp)."""
    from twin.results import format_interval, format_value, text_table, unit_of

    lines = []
    for k, r in rows.items():
        unit = unit_of(k)
        ci = format_interval(r["low"], r["high"], unit)
        lines.append([k, format_value(r["baseline"], unit), format_value(r["policy"], unit),
                      format_value(r["diff"], unit, signed=True), ci, format_p(r.get("p_holm")),
                      "yes" if r.get("significant") else "", unit])
    table = text_table(["kpi", "baseline", "policy", "difference", "95% CI", f"p ({CORRECTION})", "signif.", "unit"],
                       lines, "lrrrrrll")
    return table + ("\nshares in %, their differences in percentage points; both arms ran the same seeds; "
                    f"p: paired t-test, {CORRECTION}-corrected over the KPIs; signif.: p < {ALPHA:g}")


def format_p(p) -> str:
    """A p-value for tables: three decimals, ``<0.001`` below, n/a without one."""
    if p is None or math.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"
