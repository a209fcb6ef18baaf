"""Policy comparison: a policy arm against a baseline arm, over paired replications.

Both arms run the same seeds (common random numbers: the counter-based draws
make every seed's community and events identical except where the policy
changes them), so the per-seed differences have small variance.  Each KPI's
mean difference gets a 95% confidence interval from Student's t.
"""
from __future__ import annotations

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


def compare(scenario: str, baseline: list[str], policy: list[str], replications: int = 10, out=None,
            first_seed: int = 1) -> str:
    """Run both arms and return a table of KPI means and differences with 95% CIs."""
    from tqdm.auto import tqdm

    seeds = list(range(first_seed, first_seed + replications))
    base, pol = [], []
    for seed in tqdm(seeds, desc="replications", unit="seed"):
        base += run_arm(scenario, baseline, [seed])
        pol += run_arm(scenario, policy, [seed])
    keys = list(base[0].summary)
    rows = {}
    for k in keys:
        a = [r.summary[k] for r in base]
        b = [r.summary[k] for r in pol]
        rows[k] = {"baseline": float(np.nanmean(a)) if not all(map(math.isnan, a)) else math.nan,
                   "policy": float(np.nanmean(b)) if not all(map(math.isnan, b)) else math.nan,
                   **paired_ci(a, b)}
    if out:
        from twin.report import compare_report
        from twin.results import _jsonable

        d = Path(out)
        d.mkdir(parents=True, exist_ok=True)
        (d / "compare.json").write_text(json.dumps(_jsonable({"baseline": baseline, "policy": policy,
                                                               "seeds": seeds, "kpis": rows}), indent=2))
        compare_report({"baseline": base[0], "policy": pol[0]}, d / "compare.html")
    return format_table(rows)


def format_table(rows: dict) -> str:
    width = max(map(len, rows))
    head = f"{'kpi':<{width}}  {'baseline':>12}  {'policy':>12}  {'difference [95% CI]':>34}"
    lines = [head, "-" * len(head)]
    for k, r in rows.items():
        ci = "" if math.isnan(r["low"]) else f"[{r['low']:,.3f}, {r['high']:,.3f}]"
        lines.append(f"{k:<{width}}  {r['baseline']:>12,.3f}  {r['policy']:>12,.3f}  {r['diff']:>+12,.3f} {ci:>21}")
    return "\n".join(lines)
