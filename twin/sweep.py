"""Parameter sweeps: the cartesian product of Hydra sweep overrides, run in parallel.

``twin sweep policies.dispatch=fifo,nearest,skill 'seed=range(1,6)'`` runs every
combination as an independent run (joblib processes locally; each run is
deterministic, so the order and the worker do not matter) and writes one
``summary.csv`` row per run, with the swept values as the first columns.
"""
from __future__ import annotations

import itertools
from pathlib import Path


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


def sweep(scenario: str, overrides: list[str], jobs: int = -1, out=None):
    """Run every combination; return a DataFrame (swept values, then the summary KPIs)."""
    import pandas as pd
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from twin.config import load_scenario

    keys, runs = expand(overrides)
    for r in runs:  # fail on a bad value before starting anything
        load_scenario(scenario, r)
    summaries = Parallel(n_jobs=jobs, return_as="generator")(delayed(_one)(scenario, r) for r in runs)
    rows = []
    for r, summary in zip(runs, tqdm(summaries, total=len(runs), desc="sweep", unit="run")):
        swept = dict(o.split("=", 1) for o in r[len(r) - len(keys):]) if keys else {}
        rows.append({**swept, **summary})
    table = pd.DataFrame(rows)
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        table.to_csv(Path(out) / "summary.csv", index=False)
    return table
