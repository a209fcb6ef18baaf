"""Smart mediation: disputes filed online, matched to mediators by skill and load.

Neighbours' disputes (elevator retrofits, parking, noise, pets) are filed online, a Poisson
number a day, each with a difficulty.  Each mediator has a skill per kind (a specialty and
weaker others) and takes at most ``max_cases`` disputes at once.  Every morning the oldest
waiting disputes, as many as there are free places, are matched to the free places by one of:

* ``rotation``: the next free mediator in turn, whatever the kind (matching by hand, the before);
* ``greedy``: in filing order, each dispute to the free mediator most likely to settle it
  (ties: the less loaded one);
* ``optimal``: the assignment that maximises the expected settlements of the day's matches,
  a min-cost assignment (``scipy.optimize.linear_sum_assignment``) over disputes x free places.

All three serve the same disputes each morning (the oldest first); only who mediates differs,
so their success rates compare like for like.  A match settles with probability
``sigmoid(base_logit + skill_weight * (skill - difficulty))`` (match quality raises it) and
takes ``mean_days * (1 + difficulty - skill)`` days on average (exponential).  Every draw is a
hash of (seed, stream, day, dispute) (``twin.rng``), so two matching methods see the same
disputes, difficulties and luck.  ``base_logit`` is the one free behaviour parameter; the
Shenzhen case calibrates it (see ``scenarios/case/shenzhen_mediation.yaml``).

The rules live in small parts a city reuses (``twin.city_mediation``): :class:`Centre` (who is
free each morning and the matching), :meth:`Mediation.outcome` (a match's settlement and
duration) and :class:`Desk` (a community's desk stepped one morning at a time, which
:meth:`Mediation.run` steps through every day).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies._arms import split_arm
from policies.base import Policy

KINDS = ("elevator", "parking", "noise", "pets")
METHODS = ("rotation", "greedy", "optimal")

# Our streams in twin.rng.
_COUNT, _KIND, _DIFFICULTY, _OUTCOME, _DURATION, _SKILL, _FILED = (0x4D45_0000 + k for k in range(7))


def success_probability(skill, difficulty, base_logit: float, skill_weight: float):
    """The chance a mediator of ``skill`` settles a dispute of ``difficulty`` (both in [0, 1])."""
    z = base_logit + skill_weight * (np.asarray(skill, float) - np.asarray(difficulty, float))
    return 1.0 / (1.0 + np.exp(-z))


def assign(prob: np.ndarray, method: str, load=None, turn: int = 0) -> np.ndarray:
    """The place (column) each dispute (row) of ``prob`` goes to; rows <= columns.

    ``prob``: disputes x free places, each entry the chance that place's mediator settles the
    dispute.  ``load``: each place's mediator's open cases (greedy's tie-break).  ``turn``:
    rotation's starting place.  ``optimal`` maximises the sum of the chances (the expected
    settlements); ``greedy`` takes the rows in order, each the best column left.
    """
    prob = np.asarray(prob, float)
    n, m = prob.shape
    if n > m:
        raise ValueError(f"{n} disputes for {m} free places; match at most as many as there are places")
    if method == "optimal":
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(-prob)  # min cost = max total chance
        out = np.empty(n, np.int64)
        out[rows] = cols
        return out
    if method == "greedy":
        load = np.zeros(m) if load is None else np.asarray(load, float)
        free = np.ones(m, bool)
        out = np.empty(n, np.int64)
        for i in range(n):
            choices = np.flatnonzero(free)
            best = choices[np.lexsort((load[choices], -prob[i, choices]))[0]]
            out[i], free[best] = best, False
        return out
    if method == "rotation":
        return (turn + np.arange(n)) % m
    raise ValueError(f"method = {method!r} is not allowed; expected one of {', '.join(METHODS)}")


@dataclass
class MediationResult:
    """Every dispute of a run: its kind, whether and when it was settled, and its match."""

    method: str
    kind: np.ndarray
    filed: np.ndarray        # day filed (fractional)
    resolved: np.ndarray     # day the mediation ended, NaN: not by the horizon
    settled: np.ndarray      # bool: ended in an agreement
    match_probability: np.ndarray   # the chance its match gave, NaN: never matched
    days: int

    @property
    def ended(self) -> np.ndarray:
        return ~np.isnan(self.resolved)

    def summary(self) -> dict:
        e = self.ended
        out = {"method": self.method, "disputes": int(len(self.kind)), "ended": int(e.sum()),
               "success_rate": float(self.settled[e].mean()) if e.any() else math.nan,
               "resolution_days_mean": float((self.resolved - self.filed)[e].mean()) if e.any() else math.nan,
               "match_probability_mean": float(np.nanmean(self.match_probability))
               if np.isfinite(self.match_probability).any() else math.nan}
        for k, name in enumerate(KINDS):
            m = e & (self.kind == k)
            out[f"success_rate_{name}"] = float(self.settled[m].mean()) if m.any() else math.nan
        return out

    def to_frame(self):
        """One row per dispute."""
        import pandas as pd

        return pd.DataFrame({"kind": np.array(KINDS)[self.kind], "filed_day": self.filed,
                             "resolved_day": self.resolved, "settled": self.settled,
                             "match_probability": self.match_probability})


class Mediation(Policy):
    """Disputes, mediators and how they are matched (see the module docstring)."""

    name = "mediation"

    def __init__(self, method: str = "optimal", households: int = 1000, days: int = 120,
                 disputes_per_household_year: float = 0.5, kind_mix=(0.2, 0.3, 0.35, 0.15),
                 mediators: int = 4, max_cases: int = 3, specialty_skill: float = 0.9, other_skill: float = 0.4,
                 skill_spread: float = 0.1, base_logit: float = 1.6, skill_weight: float = 4.0,
                 mean_days: float = 5.0):
        self.method = method
        self.households = households
        self.days = days
        self.disputes_per_household_year = disputes_per_household_year
        self.kind_mix = kind_mix
        self.mediators = mediators
        self.max_cases = max_cases
        self.specialty_skill = specialty_skill
        self.other_skill = other_skill
        self.skill_spread = skill_spread
        self.base_logit = base_logit
        self.skill_weight = skill_weight
        self.mean_days = mean_days

    def check(self) -> "Mediation":
        """Refuse values the model cannot run with, naming the key and what is allowed."""
        need = self.need

        need(self.method in METHODS, "method", f"one of {', '.join(METHODS)}")
        need(len(self.kind_mix) == len(KINDS) and min(self.kind_mix) >= 0 and sum(self.kind_mix) > 0,
             "kind_mix", f"{len(KINDS)} shares >= 0 ({', '.join(KINDS)}), not all 0")
        for key in ("households", "days", "mediators", "max_cases"):
            need(int(getattr(self, key)) >= 1, key, "a whole number >= 1")
        for key in ("specialty_skill", "other_skill", "skill_spread"):
            need(0 <= getattr(self, key) <= 1, key, "a number in [0, 1]")
        need(self.disputes_per_household_year >= 0, "disputes_per_household_year", "a number >= 0")
        need(self.mean_days > 0, "mean_days", "a positive number of days")
        need(self.skill_weight >= 0, "skill_weight", "a number >= 0")
        return self

    def skills(self, seed: int) -> np.ndarray:
        """Mediators x kinds: a specialty near ``specialty_skill``, the others near ``other_skill``.

        The centre spreads specialties over the kinds (mediator ``i`` specialises in kind
        ``i mod 4``), as a centre hiring for its disputes would.
        """
        return skill_table(np.arange(int(self.mediators)) % len(KINDS), self.specialty_skill, self.other_skill,
                           self.skill_spread, seed)

    def disputes(self, seed: int):
        """The run's disputes in filing order: kind (index into ``KINDS``), day filed, difficulty."""
        from twin import rng

        lam = self.households * self.disputes_per_household_year / 365.0
        mix = np.cumsum(np.asarray(self.kind_mix, float) / sum(self.kind_mix))
        kind, filed, difficulty = [], [], []
        for day in range(int(self.days)):
            n = int(rng.poisson(lam, seed, _COUNT, day, 0))
            for j in range(n):
                kind.append(int(np.searchsorted(mix, rng.uniform(seed, _KIND, day, j), side="right").clip(0, 3)))
                filed.append(day + rng.uniform(seed, _FILED, day, j))
                difficulty.append(rng.uniform(seed, _DIFFICULTY, day, j))
        kind, filed, difficulty = np.array(kind, np.int64), np.array(filed), np.array(difficulty)
        order = np.argsort(filed, kind="stable")
        return kind[order], filed[order], difficulty[order]

    def outcome(self, seed: int, dispute: int, skill: float, difficulty: float, chance: float, morning: float):
        """Whether a match made on ``morning`` settles dispute ``dispute`` and the day it ends.

        The draws are keyed on the dispute alone, so the same dispute has the same luck
        whoever mediates it; only the match's ``chance`` and the mediator's ``skill`` differ.
        """
        from twin import rng

        settled = bool(rng.uniform(seed, _OUTCOME, 0, dispute) < chance)
        mean = self.mean_days * (1.0 + difficulty - skill)
        return settled, morning + rng.exponential(mean, seed, _DURATION, 0, dispute)

    def run(self, seed: int = 0) -> MediationResult:
        """File, match and mediate the run's disputes, day by day."""
        self.check()
        desk = Desk(self, seed)
        for day in range(int(self.days)):
            desk.morning(day)
        return desk.result()


def skill_table(specialty, specialty_skill: float, other_skill: float, skill_spread: float, seed: int) -> np.ndarray:
    """Mediators x kinds: mediator ``i``'s skill near ``specialty_skill`` in kind ``specialty[i]``,
    near ``other_skill`` in the others, spread by ``skill_spread`` with draws keyed on (seed, i, kind)."""
    from twin import rng

    specialty = np.asarray(specialty, np.int64)
    noise = np.array([[rng.uniform(seed, _SKILL, k, i) for k in range(len(KINDS))] for i in range(len(specialty))])
    base = np.where(np.arange(len(KINDS))[None, :] == specialty[:, None], specialty_skill, other_skill)
    return np.clip(base + (2 * noise.reshape(len(specialty), len(KINDS)) - 1) * skill_spread, 0.0, 1.0)


class Centre:
    """Mediators and their open cases: who is free each morning, and the matching of a day's disputes.

    One centre's rule serves a community's own desk and a pool of mediators shared by
    several communities alike; the chance of a match comes from each dispute's own
    ``base_logit`` and ``skill_weight`` (scalars, or one per dispute).
    """

    def __init__(self, skill: np.ndarray, max_cases: int, method: str):
        self.skill = np.asarray(skill, float).reshape(-1, len(KINDS))
        self.max_cases = int(max_cases)
        self.method = method
        self.busy_until: list[list[float]] = [[] for _ in range(len(self.skill))]
        self.turn = 0  # rotation's next place

    def free_places(self, morning: float) -> list[int]:
        """The mediator of each free place this morning (a mediator once per free case), cases ended by now closed."""
        for cases in self.busy_until:
            cases[:] = [t for t in cases if t > morning]
        return [m for m, cases in enumerate(self.busy_until) for _ in range(self.max_cases - len(cases))]

    def match(self, places: list[int], kind, difficulty, base_logit, skill_weight):
        """The mediator each dispute goes to and the chance of settling that match gives (disputes <= places)."""
        kind, difficulty = np.asarray(kind, np.int64), np.asarray(difficulty, float)
        load = np.array([len(self.busy_until[m]) for m in places], float)
        p = success_probability(self.skill[places][:, kind].T, difficulty[:, None],
                                np.asarray(base_logit, float).reshape(-1, 1), np.asarray(skill_weight, float).reshape(-1, 1))
        cols = assign(p, self.method, load, self.turn)
        self.turn = (self.turn + len(kind)) % len(places)
        return np.asarray(places, np.int64)[cols], p[np.arange(len(kind)), cols]

    def book(self, mediator: int, end: float) -> None:
        """Mediator ``mediator`` holds a case until ``end``."""
        self.busy_until[mediator].append(end)


class Desk:
    """One community's mediation desk stepped one morning at a time (:meth:`Mediation.run` steps it
    through every day; a city steps it beside its community and lets a district pool take some
    disputes, :meth:`hand_over`)."""

    def __init__(self, model: Mediation, seed: int):
        self.model, self.seed = model, int(seed)
        self.skill = model.skills(self.seed)
        self.kind, self.filed, self.difficulty = model.disputes(self.seed)
        self.centre = Centre(self.skill, model.max_cases, model.method)
        n = len(self.kind)
        self.resolved, self.settled, self.chance = np.full(n, np.nan), np.zeros(n, bool), np.full(n, np.nan)
        self.matched = np.full(n, np.nan)   # the morning it was matched, NaN: never
        self.outside = np.zeros(n, bool)    # matched by mediators other than the desk's own
        self.waiting: list[int] = []
        self._next = 0

    def morning(self, day: int) -> None:
        """File the disputes since yesterday morning and match the oldest waiting ones to the free places."""
        morning = float(day)
        while self._next < len(self.kind) and self.filed[self._next] <= morning:
            self.waiting.append(self._next)
            self._next += 1
        places = self.centre.free_places(morning)
        today, self.waiting = self.waiting[:len(places)], self.waiting[len(places):]
        if not today:
            return
        who, chance = self.centre.match(places, self.kind[today], self.difficulty[today],
                                        self.model.base_logit, self.model.skill_weight)
        for i, m, c in zip(today, who, chance):
            settled, end = self.model.outcome(self.seed, i, self.skill[m, self.kind[i]], self.difficulty[i], c,
                                              morning)
            self.centre.book(m, end)
            self.close(i, c, settled, end, morning)

    def hand_over(self, dispute: int, chance: float, settled: bool, end: float, morning: float) -> None:
        """Dispute ``dispute`` leaves the queue: mediators from outside matched it (their outcome)."""
        self.waiting.remove(int(dispute))
        self.close(dispute, chance, settled, end, morning)
        self.outside[dispute] = True

    def close(self, dispute: int, chance: float, settled: bool, end: float, morning: float) -> None:
        """Record a match: its chance, whether it settles, and its end when that falls within the run."""
        self.chance[dispute], self.settled[dispute], self.matched[dispute] = chance, settled, morning
        if end <= self.model.days:
            self.resolved[dispute] = end

    def result(self) -> MediationResult:
        return MediationResult(self.model.method, self.kind, self.filed, self.resolved, self.settled, self.chance,
                               int(self.model.days))


def case_arm(scenario: str, overrides, seed: int) -> dict:
    """One replication of one arm of a mediation case (``twin.cases`` calls it for ``model:`` cases).

    Overrides named ``mediation.<param>`` set :class:`Mediation` parameters; the scenario's
    give the households (``community.households``) and the days (``sim.days``).
    """
    cfg, model = split_arm(Mediation(), overrides, scenario, seed)
    model.set_params(households=cfg.community.households, days=cfg.sim.days)
    return {k: v for k, v in model.run(seed).summary().items() if k != "method"}  # a case's KPIs are numbers
