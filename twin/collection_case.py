"""The Hangzhou routes case: the twin's bins, replayed under fixed and fill-triggered collection.

Why here and not in ``policies/waste.py``: a case arm needs the twin to run (the residents
fill the bins), and policies never import the engine; the collection rules, routes and costs
stay in :mod:`policies.waste`, this module only runs the twin and prices one arm.
"""
from __future__ import annotations

import math

import numpy as np

from policies.base import Policy
from policies.waste import BinHistory, FillTriggered, compare_collection

COLLECTIONS = ("fixed", "fill")


class CollectionCase(Policy):
    """A routes case's arm: which collection runs, and how unlike the community's bins are.

    ``bin_spread``: the buildings' bins hold ``1 - bin_spread`` to ``1 + bin_spread`` times what
    the twin's sensors assume (sizes evenly spaced, placed at random per seed), so bins fill at
    different paces, as in an estate whose buildings differ in size and bin stands; 0 keeps the
    twin's alike bins.  The fixed arm is the cheapest fixed schedule
    (:func:`policies.waste.fixed_schedules`) that overflows no more than the fill-triggered
    policy does on the same bins, so both serve equally well.
    """

    name = "waste"

    def __init__(self, collection: str = "fixed", bin_spread: float = 0.5, top_up_hours: float = 6.0):
        self.collection = collection
        self.bin_spread = bin_spread
        self.top_up_hours = top_up_hours

    def check(self) -> "CollectionCase":
        """Refuse values the case cannot run with, naming the key and what is allowed."""
        from policies._arms import require

        require(self.collection in COLLECTIONS, "waste.collection", f"one of {', '.join(COLLECTIONS)}",
                self.collection)
        require(0 <= self.bin_spread < 1, "waste.bin_spread", "a number in [0, 1)", self.bin_spread)
        require(self.top_up_hours >= 0, "waste.top_up_hours", "a number of hours >= 0", self.top_up_hours)
        return self


_HISTORIES: dict = {}  # (scenario, overrides, seed) -> BinHistory: both arms replay the same run


def _history(scenario: str, cfg_overrides: tuple, seed: int) -> BinHistory:
    """The twin's bin readings for a scenario and seed, run once and kept for the other arm."""
    from twin.config import load_scenario
    from twin.engine import Twin

    key = (scenario, cfg_overrides, seed)
    if key not in _HISTORIES:
        if len(_HISTORIES) > 32:
            _HISTORIES.clear()
        cfg = load_scenario(scenario, [*cfg_overrides, f"seed={seed}", "progress=false"])
        _HISTORIES[key] = BinHistory.from_twin(Twin(cfg), cfg.sim.days)
    return _HISTORIES[key]


def case_arm(scenario: str, overrides, seed: int) -> dict:
    """One replication of one arm of a routes case (``twin.cases`` calls it for ``model:`` cases).

    The twin runs the scenario (its bins fill as the residents throw waste away); the bins'
    waste is replayed under the arm's collection, every round routed over the path graph and
    costed.  ``cost_vs_fixed`` is the arm's cost over the matched fixed schedule's (1 in the
    fixed arm); NaN where no fixed schedule is as clean.
    """
    from policies._arms import split_arm

    cfg, arm = split_arm(CollectionCase(), overrides, scenario, seed)
    own = tuple(o for o in overrides if not str(o).startswith(arm.name + "."))
    history = _history(scenario, own, seed)
    lo, hi = 1.0 - arm.bin_spread, 1.0 + arm.bin_spread
    # bin sizes spread evenly over the range, placed at random: every seed has the same smallest bin
    # (which sets how often a fixed schedule must come), only where the sizes stand differs
    capacity = np.random.default_rng([seed, 0x5741_5354]).permutation(np.linspace(lo, hi, len(history.bin_fill)))
    c = compare_collection(history.increments(capacity), history.tick_minutes, history.dist,
                           fill=FillTriggered(top_up_hours=arm.top_up_hours))
    fixed = c["fixed"]
    ran = c["fill_triggered"] if arm.collection == "fill" else fixed
    if fixed is None:
        return {"cost_vs_fixed": math.nan, "km_vs_fixed": math.nan, "crew_hours_vs_fixed": math.nan,
                "cost": math.nan, "overflow_hours": math.nan, "fixed_rounds_per_day": math.nan}
    return {"cost_vs_fixed": ran["cost"] / fixed["cost"], "km_vs_fixed": ran["km"] / fixed["km"],
            "crew_hours_vs_fixed": ran["crew_hours"] / fixed["crew_hours"], "cost": ran["cost"],
            "overflow_hours": ran["overflow_hours"], "fixed_rounds_per_day": float(len(fixed["hours"]))}
