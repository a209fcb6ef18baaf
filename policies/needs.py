"""Residents' needs and the services that meet them: placed where a survey finds the need, or without one.

Why this model: Beijing's Huitian area reported residents' satisfaction rising from 62% (2018)
to 89% (2023) after pain points were found by surveys and data and services were added
(custom buses, canteens, book rooms).  The model asks how much of such a rise comes from
placing services where the need is, with the same money.

* **Needs.**  Each household has a need in each category of :data:`CATEGORIES` with
  probability ``need_prevalence[c]``, of an intensity drawn uniformly in [0.5, 1].
* **Services.**  Money ``f_c`` spent in category ``c`` meets the share
  ``coverage_c = 1 - exp(-f_c / unit_cost)`` of every household's need in it (the first bus
  line helps most: diminishing returns).  The money is ``budget`` a year, plus
  ``added_budget_per_year`` more each year (placed by the same method as the rest).
* **Satisfaction** (the stated function).  A household's unmet need is
  ``u = sum_c need_c * (1 - coverage_c)``; it is satisfied with probability
  ``1 / (1 + exp((u - tolerance) / slope))``.  The community's satisfaction is the mean of
  these probabilities (what a census would find on average; no survey noise in the KPI).
* **Placement.**  ``even``: the money split evenly over the categories (services placed
  without asking: the before).  ``survey``: every year ``survey_sample`` households are
  asked, each answers with probability ``response_rate`` and states each need's intensity
  with an error of sd ``answer_noise``; the planner takes the respondents' mean need per
  category and computes the placement that would meet most of it (:func:`allocate`); the
  services move ``build_rate`` of the way from what exists towards it each year (services
  take time to open and close).

Year 0 is the starting layout (even placement, the 2018 state); years 1 .. ``years`` follow.
Households' needs are the same in every arm of a seed (common random numbers); only the
survey draws differ.  ``tolerance`` is the behaviour parameter the Huitian case calibrates
on the 62%; everything else is an assumption stated in the case.
"""
from __future__ import annotations

import math

import numpy as np

from policies._arms import split_arm
from policies.base import Policy

CATEGORIES = ("commute", "meals", "reading", "elderly_care", "childcare", "health", "sports", "parking")
PLACEMENTS = ("even", "survey")

_NEEDS, _SURVEY = 0x4E45_0001, 0x4E45_0002  # numpy seed-sequence streams of this model


def coverage(funding, unit_cost: float) -> np.ndarray:
    """The share of every household's need in a category that the money spent there meets."""
    return 1.0 - np.exp(-np.asarray(funding, float) / unit_cost)


def satisfaction_probability(unmet, tolerance: float, slope: float) -> np.ndarray:
    """The chance a household with ``unmet`` need is satisfied (a logistic fall around ``tolerance``)."""
    return 1.0 / (1.0 + np.exp((np.asarray(unmet, float) - tolerance) / slope))


def unmet_need(needs: np.ndarray, funding, unit_cost: float) -> np.ndarray:
    """Each household's need (households x categories) left unmet by ``funding`` per category."""
    return needs @ (1.0 - coverage(funding, unit_cost))


def allocate(need, budget: float, unit_cost: float) -> np.ndarray:
    """The funding per category that minimises the mean unmet need ``sum_c need_c exp(-f_c / unit_cost)``.

    With ``sum f = budget`` and ``f >= 0`` the optimum equalises the marginal gains
    ``need_c / unit_cost * exp(-f_c / unit_cost)`` (water-filling): ``f_c = unit_cost *
    max(0, ln(need_c / (unit_cost * lam)))`` with ``lam`` found by bisection.
    """
    need = np.clip(np.asarray(need, float), 0.0, None)
    if budget <= 0 or not need.any():
        return np.full(len(need), budget / len(need))
    pos = need > 0

    def spent(log_lam):
        f = np.zeros(len(need))
        f[pos] = unit_cost * np.maximum(0.0, np.log(need[pos] / unit_cost) - log_lam)
        return f

    hi = math.log(need[pos].max() / unit_cost)  # nothing spent at this lam
    lo = hi - budget / unit_cost - 1.0           # more than the budget spent here
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if spent(mid).sum() > budget else (lo, mid)
    f = spent(hi)
    return f * (budget / f.sum())  # the bisection's last sliver, shared pro rata


class Needs(Policy):
    """Households' needs, the services' placement and the satisfaction they give (see the module docstring)."""

    name = "needs"

    def __init__(self, placement: str = "even", households: int = 1000, years: int = 5,
                 need_prevalence=(0.7, 0.35, 0.25, 0.2, 0.35, 0.4, 0.3, 0.3), budget: float = 8.0,
                 added_budget_per_year: float = 0.0, unit_cost: float = 1.0, tolerance: float = 0.9,
                 slope: float = 0.1, survey_sample: int = 400, response_rate: float = 0.4,
                 answer_noise: float = 0.3, build_rate: float = 0.5):
        self.placement = placement
        self.households = households
        self.years = years
        self.need_prevalence = need_prevalence
        self.budget = budget
        self.added_budget_per_year = added_budget_per_year
        self.unit_cost = unit_cost
        self.tolerance = tolerance
        self.slope = slope
        self.survey_sample = survey_sample
        self.response_rate = response_rate
        self.answer_noise = answer_noise
        self.build_rate = build_rate

    def check(self) -> "Needs":
        """Refuse values the model cannot run with, naming the key and what is allowed."""
        need = self.need

        need(self.placement in PLACEMENTS, "placement", f"one of {', '.join(PLACEMENTS)}")
        need(len(self.need_prevalence) == len(CATEGORIES) and all(0 <= p <= 1 for p in self.need_prevalence),
             "need_prevalence", f"{len(CATEGORIES)} shares in [0, 1] ({', '.join(CATEGORIES)})")
        for key in ("households", "survey_sample"):
            need(int(getattr(self, key)) >= 1, key, "a whole number >= 1")
        need(int(self.years) >= 0, "years", "a whole number >= 0")
        for key in ("budget", "added_budget_per_year", "answer_noise"):
            need(getattr(self, key) >= 0, key, "a number >= 0")
        for key in ("unit_cost", "slope"):
            need(getattr(self, key) > 0, key, "a positive number")
        for key in ("response_rate", "build_rate"):
            need(0 < getattr(self, key) <= 1, key, "a share in (0, 1]")
        return self

    def needs(self, seed: int) -> np.ndarray:
        """Households x categories: each need's intensity, 0 where the household has none."""
        g = np.random.default_rng([seed, _NEEDS])
        n = int(self.households)
        has = g.random((n, len(CATEGORIES))) < np.asarray(self.need_prevalence, float)
        return np.where(has, g.uniform(0.5, 1.0, (n, len(CATEGORIES))), 0.0)

    def survey(self, needs: np.ndarray, seed: int, year: int) -> tuple[np.ndarray, int]:
        """The planner's estimate of the mean need per category from one year's survey, and its respondents."""
        g = np.random.default_rng([seed, _SURVEY, year])
        asked = g.choice(len(needs), min(int(self.survey_sample), len(needs)), replace=False)
        answered = asked[g.random(len(asked)) < self.response_rate]
        if len(answered) == 0:
            return np.full(needs.shape[1], np.nan), 0
        stated = np.clip(needs[answered] + g.normal(0.0, self.answer_noise, (len(answered), needs.shape[1])), 0, 1)
        return stated.mean(axis=0), len(answered)

    def run(self, seed: int = 0) -> dict:
        """Year by year: the placement, the households' unmet need and the satisfaction."""
        self.check()
        needs = self.needs(seed)
        C = len(CATEGORIES)
        funding = np.full(C, self.budget / C)
        yearly, respondents = [], 0
        for year in range(int(self.years) + 1):
            if year > 0:
                added = self.added_budget_per_year
                if self.placement == "survey":
                    estimate, answered = self.survey(needs, seed, year)
                    respondents += answered
                    if answered:
                        target = allocate(estimate, funding.sum() + added, self.unit_cost)
                        funding = funding + added * target / target.sum()
                        funding = funding + self.build_rate * (target - funding)
                    else:
                        funding = funding + added / C
                else:
                    funding = funding + added / C
            unmet = unmet_need(needs, funding, self.unit_cost)
            yearly.append(float(satisfaction_probability(unmet, self.tolerance, self.slope).mean()))
        out = {"satisfaction": yearly[-1], "satisfaction_start": yearly[0],
               "unmet_need_mean": float(unmet.mean()), "respondents": float(respondents)}
        out.update({f"satisfaction_year_{y}": s for y, s in enumerate(yearly)})
        out.update({f"coverage_{c}": float(v) for c, v in zip(CATEGORIES, coverage(funding, self.unit_cost))})
        return out


def case_arm(scenario: str, overrides, seed: int) -> dict:
    """One replication of one arm of a needs case (``twin.cases`` calls it for ``model:`` cases).

    Overrides named ``needs.<param>`` set :class:`Needs` parameters; the scenario gives the
    households (``community.households``).  The years are the model's own (``needs.years``):
    the case spans 2018 to 2023, not the scenario's simulated days.
    """
    cfg, model = split_arm(Needs(), overrides, scenario, seed)
    model.set_params(households=cfg.community.households)
    return model.run(seed)
