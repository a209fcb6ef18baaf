"""Shanghai "green account" (绿色账户): smart bins verify each household's drop, correct drops earn points.

The source text (001_02aa65d09fa5ec2e.txt:44): residents who put their waste out correctly
earn points to exchange for daily goods; smart bins recognise the drops and upload them; in
the pilot communities residual waste fell 35% and participation rose from 60% to 95%.

Each household puts out one drop a day.  Whether it sorts is the Chengdu resident rule at
household level — a logit of a base, the reward it expects (``residents.reward_effect`` per 10
points, times the share of its drops that come out correct: points are credited for correct
drops only), the share of its neighbours (the community's social network between
households) who sorted the day before (``residents.peer_effect``) and its engagement
(``residents.engagement_effect``) — so the behaviour parameters calibrated on the Chengdu
case carry over with only the policy changed.  A sorted drop is correct with the household's
skill; with smart bins each verified drop tells the household how it did, and its skill
moves ``learn_rate`` of the way to perfect.  A correct drop leaves only the non-sortable
share of its waste as residual; any other drop is residual whole.

Points go through the real points service (:class:`twin.services.points.Points`): one
account per household (the green account is a household's card), one ``correct_drop`` claim
per household per day, so the ledger — not this module — decides what is credited.

The policy starts on ``start_day``; the run reports the baseline (the days before it) against
the last ``window_days``: participation, sorting accuracy and residual waste, per household
and in all.  With ``points_per_drop=0`` and ``smart_bins=false`` nothing of the policy acts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange

from policies._arms import require
from policies._logit import logistic
from policies.base import Policy
from twin import rng
from twin._jit import parallel_kernel

S_SORT, S_CORRECT, S_WASTE, S_SKILL = range(930, 934)
BURN_IN_DAYS = 30  # days run before day 0 without the policy, so the peers' sorting starts at its own level
ACTIVITY = "correct_drop"


def household_network(community):
    """The social network between households (CSR ``indptr, indices``): two households are
    neighbours when any of their people are friends."""
    H = community.n_households
    src = np.repeat(np.arange(community.n_residents), np.diff(community.indptr))
    a, b = community.household[src].astype(np.int64), community.household[community.indices].astype(np.int64)
    pairs = np.unique(a[a != b] * H + b[a != b])
    return np.searchsorted(pairs // H, np.arange(H + 1)).astype(np.int64), (pairs % H).astype(np.int64)


def household_engagement(community) -> np.ndarray:
    """Each household's mean engagement (0..1) over its people."""
    total = np.bincount(community.household, weights=community.engagement, minlength=community.n_households)
    return (total / np.maximum(community.hh_size, 1)).astype(np.float64)


@parallel_kernel
def green_day(seed, day, base_logit, reward_logit, peer_effect, engagement_effect, feedback, learn_rate,
              sortable_share, hh_indptr, hh_indices, engagement, waste_mean_kg, skill, sorted_prev,
              out_sorted, out_correct, out_residual_kg):
    """One day of every household's drop (see the module docstring).

    ``reward_logit``: logit per correct drop's points (0 without points); ``feedback``: the
    smart bins tell each sorting household how its drop went, and its ``skill`` learns.
    """
    for h in prange(skill.shape[0]):
        deg = hh_indptr[h + 1] - hh_indptr[h]
        c = 0
        for e in range(hh_indptr[h], hh_indptr[h + 1]):
            if sorted_prev[hh_indices[e]]:
                c += 1
        peer = c / deg if deg > 0 else 0.0
        x = base_logit + reward_logit * skill[h] + peer_effect * peer + engagement_effect * engagement[h]
        sorts = rng.uniform(seed, S_SORT, day, h) < logistic(x)
        correct = sorts and rng.uniform(seed, S_CORRECT, day, h) < skill[h]
        waste = waste_mean_kg[h] * (0.5 + rng.uniform(seed, S_WASTE, day, h))
        out_sorted[h] = sorts
        out_correct[h] = correct
        out_residual_kg[h] = waste * (1.0 - sortable_share) if correct else waste
        if feedback and sorts:
            skill[h] += learn_rate * (1.0 - skill[h])


@dataclass
class GreenAccountRun:
    """What a run gives: per household, baseline (before ``start_day``) against the last window."""

    days: int
    start_day: int
    window_days: int
    participation: np.ndarray        # per day: share of households that sorted
    accuracy: np.ndarray             # per day: share of households whose drop was correct
    residual_kg: np.ndarray          # per day: residual waste per household (kg)
    household_before: dict           # per household: accuracy, residual kg per day (baseline)
    household_after: dict            # per household: the same over the last window
    points_issued: int
    ledger_total: int                # sum over every account of the ledger: zero when nothing leaks
    points: object = None            # the points service (None when no points were offered)

    def _mean(self, series, after: bool) -> float:
        part = series[self.days - self.window_days:] if after else series[:self.start_day]
        return float(part.mean()) if len(part) else float("nan")

    def kpis(self) -> dict:
        """Participation, sorting accuracy and residual waste, before and after, and the change."""
        before, after = self._mean(self.residual_kg, False), self._mean(self.residual_kg, True)
        return {
            "participation_rate": self._mean(self.participation, True),
            "participation_rate_before": self._mean(self.participation, False),
            "sorting_accuracy": self._mean(self.accuracy, True),
            "sorting_accuracy_before": self._mean(self.accuracy, False),
            "residual_kg_per_household_day": after,
            "residual_kg_per_household_day_before": before,
            "residual_waste_reduction": 1.0 - after / before,
            "points_issued": float(self.points_issued),
        }


class GreenAccount(Policy):
    """Smart bins that verify drops (feedback) and points per correct drop, from ``start_day``.

    ``sorting_base`` is the logit of sorting before any effect; ``skill_mean`` and
    ``skill_spread`` the households' starting accuracy when they sort (uniform around the
    mean); ``waste_kg_per_person`` a day's waste, ``sortable_share`` the part of it a correct
    drop keeps out of the residual bin.
    """

    name = "green_account"

    def __init__(self, points_per_drop=10, smart_bins=True, start_day=30, window_days=30, sorting_base=-0.77,
                 learn_rate=0.05, skill_mean=0.6, skill_spread=0.2, waste_kg_per_person=0.8, sortable_share=0.6):
        self.points_per_drop = points_per_drop
        self.smart_bins = smart_bins
        self.start_day = start_day
        self.window_days = window_days
        self.sorting_base = sorting_base
        self.learn_rate = learn_rate
        self.skill_mean = skill_mean
        self.skill_spread = skill_spread
        self.waste_kg_per_person = waste_kg_per_person
        self.sortable_share = sortable_share

    def check(self) -> "GreenAccount":
        """Refuse values the rule cannot run with, naming the key and what is allowed."""
        k = self.name + "."
        pts = self.points_per_drop
        require(isinstance(pts, int) and not isinstance(pts, bool) and pts >= 0, k + "points_per_drop",
                "a whole number of points >= 0", pts)
        require(isinstance(self.smart_bins, bool), k + "smart_bins", "true or false", self.smart_bins)
        for key in ("start_day", "window_days"):
            v = getattr(self, key)
            require(isinstance(v, int) and not isinstance(v, bool) and v >= 1, k + key, "a whole number of days >= 1", v)
        for key in ("learn_rate", "sortable_share"):
            require(0.0 <= getattr(self, key) <= 1.0, k + key, "a share in 0..1", getattr(self, key))
        require(0.0 <= self.skill_mean - self.skill_spread and self.skill_mean + self.skill_spread <= 1.0,
                k + "skill_mean", "skill_mean ± skill_spread inside 0..1", (self.skill_mean, self.skill_spread))
        require(self.waste_kg_per_person >= 0, k + "waste_kg_per_person", "a non-negative number of kg",
                self.waste_kg_per_person)
        return self

    def run(self, cfg, c) -> GreenAccountRun:
        """Run ``cfg.sim.days`` days on community ``c`` (the one ``cfg`` describes), with ``cfg.residents``' behaviour."""
        from twin.services.points import Activity, Item, Points, PointsRules

        self.check()
        days, seed, r = int(cfg.sim.days), int(cfg.seed), cfg.residents
        require(days >= self.start_day + 1 and days >= self.window_days, "sim.days",
                f"more than {self.name}.start_day ({self.start_day}) and at least window_days "
                f"({self.window_days})", days)
        H = c.n_households
        indptr, indices = household_network(c)
        engagement = household_engagement(c)
        waste_mean = self.waste_kg_per_person * c.hh_size.astype(np.float64)
        skill = self.skill_mean + self.skill_spread * (2.0 * rng.uniforms(seed, S_SKILL, 0, H) - 1.0)
        points = None
        if self.points_per_drop > 0:
            rules = PointsRules((Activity(ACTIVITY, self.points_per_drop, "time", self.points_per_drop),),
                                (Item("daily_goods", 100),))
            points = Points(rules=rules)
            points.enroll_batch(np.arange(H))
        sorted_today, sorted_prev = np.zeros(H, np.bool_), np.zeros(H, np.bool_)
        correct, residual = np.zeros(H, np.bool_), np.zeros(H)
        part, acc, res = np.zeros(days), np.zeros(days), np.zeros(days)
        sums = {w: {"correct": np.zeros(H), "residual_kg": np.zeros(H), "days": 0} for w in ("before", "after")}
        for d in range(BURN_IN_DAYS + days):
            day = d - BURN_IN_DAYS
            on = day >= self.start_day
            reward = r.reward_effect * self.points_per_drop / 10.0 if on else 0.0
            green_day(seed, d, self.sorting_base, reward, r.peer_effect, r.engagement_effect,
                      on and self.smart_bins, self.learn_rate, self.sortable_share, indptr, indices, engagement,
                      waste_mean, skill, sorted_prev, sorted_today, correct, residual)
            sorted_prev, sorted_today = sorted_today, sorted_prev
            if day < 0:
                continue
            if on and points is not None and correct.any():
                who = np.flatnonzero(correct)
                points.earn_batch(who, 0, day, 1, day * 1440.0 + 480.0)
            part[day], acc[day], res[day] = sorted_prev.mean(), correct.mean(), residual.mean()
            for w, inside in (("before", day < self.start_day), ("after", day >= days - self.window_days)):
                if inside:
                    sums[w]["correct"] += correct
                    sums[w]["residual_kg"] += residual
                    sums[w]["days"] += 1
        per = {w: {"accuracy": s["correct"] / max(s["days"], 1), "residual_kg": s["residual_kg"] / max(s["days"], 1)}
               for w, s in sums.items()}
        issued = points.issued if points is not None else 0
        total = points.ledger.total() if points is not None else 0
        return GreenAccountRun(days, self.start_day, self.window_days, part, acc, res, per["before"], per["after"],
                               issued, total, points)

