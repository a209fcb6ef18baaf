"""``CommunityModel``: the numba twin as a ``mesa.Model``, for researchers who think in Mesa.

One ``model.step()`` is one simulated day (:meth:`twin.Twin.step`: 24 hourly
ticks in one compiled call), so Mesa's own tools work on the twin unchanged::

    from mesa import DataCollector, batch_run
    from twin.mesa import CommunityModel

    model = CommunityModel("default", {"community.households": 500, "sim.days": 90}, seed=7)
    for _ in range(30):
        model.step()
    model.datacollector.get_model_vars_dataframe()        # a row per day
    model.summary["participation_rate"]                   # the summary.json figures so far

    rows = batch_run(CommunityModel, {"community.households": [300, 600],
                                      "residents.reward_effect": [0.6, 0.9],
                                      "sim.days": 60, "seed": range(5)},
                     max_steps=60, display_progress=False)

Scenario keys are passed as keyword arguments with dots (``**{"sim.days": 60}``,
which is what ``batch_run`` does with its ``parameters``) or with double
underscores (``sim__days=60``), or as a mapping or a list of Hydra overrides.
The model stops (``running = False``) after ``sim.days`` days.  Data are
collected at the end of each day, so the collector's row ``i`` (``batch_run``'s
``Step`` ``i``) is the twin's day ``i`` (0-based, as in its KPI table).

Seeds follow Mesa's convention: ``seed=None`` draws a fresh one from the
operating system (so ``batch_run``'s ``iterations`` are independent
replications); the seed used is ``model.seed`` and the config's ``seed``.
Give ``seed`` (or ``"seed"`` in ``parameters``) for a reproducible run.

Residents are arrays here, not ``mesa.Agent`` objects (that is what makes the
twin fast; ``twin.reference.mesa_model`` is the one-object-per-agent version),
so there are no agent reporters: write model reporters over ``model.twin``'s
arrays instead, e.g. ``lambda m: float(m.twin.satisfaction.mean())``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import mesa
import numpy as np

from twin.config import load_scenario
from twin.engine import Twin

#: The daily KPI columns collected by default (see ``twin.engine.kpis.DailyKpis``).
DAILY = ("day", "satisfaction", "participants", "points_issued", "points_redeemed", "ballots", "tickets_opened",
         "tickets_completed", "tickets_started", "backlog", "technician_utilisation", "alerts",
         "timebank_minutes", "bin_overflow_hours", "water_m3")


def _override(key: str, value) -> str:
    key = key.replace("__", ".")
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, (np.integer, np.floating)):
        value = value.item()
    elif isinstance(value, (list, tuple)):
        value = "[" + ",".join(str(v) for v in value) + "]"
    return f"{key}={value}"


def _daily_reporter(name: str):
    def report(model):
        return model.today.get(name, math.nan)

    report.__name__ = f"daily_{name}"
    return report


class CommunityModel(mesa.Model):
    """The twin of scenario ``scenario`` with ``overrides``; ``step()`` advances one day.

    Parameters
    ----------
    scenario : str
        A shipped scenario (``twin.config.scenarios()``).
    overrides : mapping or list of str, optional
        Scenario keys and values (``{"sim.days": 90}``) or Hydra overrides (``["sim.days=90"]``).
    seed : int, optional
        The run's seed; None draws one (Mesa's convention).
    model_reporters : dict, optional
        Mesa model reporters; default: the daily KPIs of :data:`DAILY`.
    **params
        More scenario keys, dotted (``**{"sim.days": 90}``) or with ``__`` (``sim__days=90``).
    """

    def __init__(self, scenario: str = "default", overrides=(), *, seed=None, model_reporters=None, **params):
        given = [_override(k, v) for k, v in overrides.items()] if isinstance(overrides, Mapping) else list(overrides)
        given += [_override(k, v) for k, v in params.items()]
        explicit = [o for o in given if o.split("=", 1)[0].lstrip("+") == "seed"]
        if seed is None and explicit:
            seed = int(explicit[-1].split("=", 1)[1])
        super().__init__(seed=None if seed is None else int(seed))
        if seed is None:
            seed = int(self.rng.integers(2**63 - 1))
        self.seed = int(seed)
        self.cfg = load_scenario(scenario, [o for o in given if o not in explicit] + [f"seed={self.seed}",
                                                                                     "progress=false"])
        self.twin = Twin(self.cfg)
        # collected after each day only, so row i of the collector (and batch_run's "Step" i)
        # is the twin's day i, as in the twin's own KPI table
        self.datacollector = mesa.DataCollector(
            model_reporters=model_reporters if model_reporters is not None
            else {name: _daily_reporter(name) for name in DAILY})

    def step(self) -> None:
        """One simulated day (``Twin.step``), then the data collection."""
        if self.twin.day >= self.cfg.sim.days:
            self.running = False
            return
        self.twin.step()
        self.running = self.twin.day < self.cfg.sim.days
        self.datacollector.collect(self)

    # ------------------------------------------------------------ what to report
    @property
    def day(self) -> int:
        """Days simulated so far (``Twin.day``: the index of the next day)."""
        return self.twin.day

    @property
    def today(self) -> dict:
        """The last simulated day's KPI row (empty before the first day)."""
        rows = self.twin.kpis.rows
        return rows[-1] if rows else {}

    @property
    def summary(self) -> dict:
        """The ``summary.json`` figures of the days simulated so far."""
        return self.result().summary

    def result(self):
        """A :class:`~twin.results.Result` of the days simulated so far (save it, report it)."""
        from twin.results import Result

        return Result.from_twin(self.twin)


__all__ = ["DAILY", "CommunityModel"]
