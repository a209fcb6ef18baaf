"""Hangzhou pet "three-colour code" (宠物管理“三色码”): a reported violation lands on its owner.

The source text (001_02aa65d09fa5ec2e.txt:45): each pet gets an electronic record and a QR
collar; when an owner walking a dog leaves its mess, residents scan the collar and report
it, the system deducts points and pushes a reminder; over 2,000 violations were handled and
complaints fell 70%.

Dog-owning households walk their dog ``walks_per_day`` times a day.  On each walk the owner
leaves the mess with probability ``logistic(violation_base + propensity - deterrence)``: a
propensity drawn per owner (normal, ``propensity_spread``) and, once the code runs, the
deterrence of what happened to them — ``deduction_effect`` times the reports against them,
each remembered with ``memory_decay`` a day (a deduction comes with its reminder), plus
``colour_effect`` per step of their colour (green 0, yellow 1, red 2: their reports in the
last ``record_days``; red from ``red_at``).  A violation is witnessed with
``witness_prob`` and a witness complains (before) or scans and reports (after) with
``report_prob``: the code changes what a complaint does, not who complains, so complaints
are reports in both arms.  Before the code a complaint cannot name the owner and nothing
follows; with it, each report deducts ``points_per_violation`` through the points service's
penalise (owners start with ``starting_points``, credited through earn) and pushes a reminder.

The run reports violations and complaints per 1,000 pets per month, before (the days before
``start_day``) and over the last ``window_days``, the change in complaints, the colour
distribution at the end, reminders sent and points deducted.
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

S_PET, S_PROPENSITY, S_VIOLATE, S_WITNESS, S_REPORT = range(940, 945)
DAYS_PER_MONTH = 30.0
GREEN, YELLOW, RED = 0, 1, 2
COLOURS = ("green", "yellow", "red")
CAUSE_PET_VIOLATION = 1  # the penalise cause code of a reported violation


@parallel_kernel
def walks_day(seed, day, walks, base_logit, propensity, deterrence, witness_prob, report_prob,
              out_violations, out_reports):
    """One day of every owner's walks: violations (hidden truth) and the reports they draw."""
    for i in prange(propensity.shape[0]):
        p = logistic(base_logit + propensity[i] - deterrence[i])
        v = 0
        k = 0
        for w in range(walks):
            tick = day * walks + w
            if rng.uniform(seed, S_VIOLATE, tick, i) < p:
                v += 1
                if rng.uniform(seed, S_WITNESS, tick, i) < witness_prob \
                        and rng.uniform(seed, S_REPORT, tick, i) < report_prob:
                    k += 1
        out_violations[i] = v
        out_reports[i] = k


def colours(record: np.ndarray, red_at: int) -> np.ndarray:
    """Each owner's colour from their reports in the record window: none green, ``red_at``+ red."""
    return np.where(record == 0, GREEN, np.where(record >= red_at, RED, YELLOW)).astype(np.int8)


@dataclass
class PetCodeRun:
    days: int
    start_day: int
    window_days: int
    pets: int
    violations: np.ndarray   # per day, all owners (the hidden truth)
    complaints: np.ndarray   # per day: complaints (before) or scan reports (after)
    colour_share: dict       # at the end: share of pets green / yellow / red
    reminders: int
    points_deducted: int     # points actually taken (a balance stops at zero)
    points_short: int        # deductions an empty balance could not take
    ledger_total: int
    points: object = None

    def _per_1000_month(self, series, after: bool) -> float:
        part = series[self.days - self.window_days:] if after else series[:self.start_day]
        return float(part.mean()) * DAYS_PER_MONTH * 1000.0 / max(self.pets, 1)

    def kpis(self) -> dict:
        before, after = self._per_1000_month(self.complaints, False), self._per_1000_month(self.complaints, True)
        return {
            "violations_per_1000_pets_month": self._per_1000_month(self.violations, True),
            "violations_per_1000_pets_month_before": self._per_1000_month(self.violations, False),
            "complaints_per_1000_pets_month": after,
            "complaints_per_1000_pets_month_before": before,
            "complaints_reduction": 1.0 - after / before if before > 0 else float("nan"),
            "violations_handled": float(self.reminders),  # each report handled pushes one reminder
            "reminders": float(self.reminders),
            "points_deducted": float(self.points_deducted),
            **{f"share_{c}": float(self.colour_share[c]) for c in COLOURS},
        }


class PetCode(Policy):
    """The three-colour code from ``start_day`` (``enabled``), and the owners' and witnesses' rule."""

    name = "pet_code"

    def __init__(self, enabled=True, start_day=30, window_days=30, pet_share=0.15, walks_per_day=2,
                 violation_base=-1.5, propensity_spread=1.0, witness_prob=0.4, report_prob=0.3,
                 starting_points=12, points_per_violation=3, deduction_effect=1.25, memory_decay=0.98,
                 colour_effect=0.5, record_days=90, red_at=3):
        self.enabled = enabled
        self.start_day = start_day
        self.window_days = window_days
        self.pet_share = pet_share
        self.walks_per_day = walks_per_day
        self.violation_base = violation_base
        self.propensity_spread = propensity_spread
        self.witness_prob = witness_prob
        self.report_prob = report_prob
        self.starting_points = starting_points
        self.points_per_violation = points_per_violation
        self.deduction_effect = deduction_effect
        self.memory_decay = memory_decay
        self.colour_effect = colour_effect
        self.record_days = record_days
        self.red_at = red_at

    def check(self) -> "PetCode":
        """Refuse values the rule cannot run with, naming the key and what is allowed."""
        k = self.name + "."
        require(isinstance(self.enabled, bool), k + "enabled", "true or false", self.enabled)
        for key, low in (("start_day", 1), ("window_days", 1), ("walks_per_day", 1), ("starting_points", 1),
                         ("points_per_violation", 1), ("record_days", 1), ("red_at", 2)):
            v = getattr(self, key)
            require(isinstance(v, int) and not isinstance(v, bool) and v >= low, k + key,
                    f"a whole number >= {low}", v)
        for key in ("pet_share", "witness_prob", "report_prob", "memory_decay"):
            require(0.0 <= getattr(self, key) <= 1.0, k + key, "a share in 0..1", getattr(self, key))
        for key in ("propensity_spread", "deduction_effect", "colour_effect"):
            require(getattr(self, key) >= 0.0, k + key, "a non-negative number", getattr(self, key))
        return self

    def run(self, cfg, community) -> PetCodeRun:
        """Run ``cfg.sim.days`` days on the households of ``community`` (the one ``cfg`` describes)."""
        from twin.services.points import Activity, Item, Points, PointsRules

        self.check()
        days, seed = int(cfg.sim.days), int(cfg.seed)
        require(days >= self.start_day + 1 and days >= self.window_days, "sim.days",
                f"more than {self.name}.start_day ({self.start_day}) and at least window_days "
                f"({self.window_days})", days)
        H = community.n_households
        owners = np.flatnonzero(rng.uniforms(seed, S_PET, 0, H) < self.pet_share)  # a household's id is its account
        n = len(owners)
        propensity = self.propensity_spread * np.array([rng.normal(seed, S_PROPENSITY, 0, int(h)) for h in owners])
        points = Points(rules=PointsRules((Activity("dog_licence_points", self.starting_points),),
                                          (Item("pet_supplies", 100),)))
        points.enroll_batch(owners)
        points.earn_batch(owners, 0, 0, 1, 0.0)
        memory, record = np.zeros(n), np.zeros(n, np.int64)
        ring = np.zeros((self.record_days, n), np.int64)  # reports per owner on each day of the record window
        viol, rep = np.zeros(n, np.int64), np.zeros(n, np.int64)
        violations, complaints = np.zeros(days), np.zeros(days)
        reminders, short = 0, 0
        for day in range(days):
            on = self.enabled and day >= self.start_day
            memory *= self.memory_decay
            deterrence = (self.deduction_effect * memory + self.colour_effect * colours(record, self.red_at)) if on \
                else np.zeros(n)
            walks_day(seed, day, self.walks_per_day, self.violation_base, propensity, deterrence,
                      self.witness_prob, self.report_prob, viol, rep)
            violations[day], complaints[day] = viol.sum(), rep.sum()
            if not on:
                continue
            hit = np.flatnonzero(rep)
            if len(hit):
                who = np.repeat(owners[hit], rep[hit])
                out = points.penalise_batch(who, self.points_per_violation, CAUSE_PET_VIOLATION,
                                            day * 1440.0 + 1200.0)
                short += int(out.events["extra"].sum())
                reminders += len(who)  # each deduction pushes its reminder
                memory[hit] += rep[hit]
            slot = day % self.record_days
            record += rep - ring[slot]
            ring[slot] = rep
        final = colours(record, self.red_at) if self.enabled else np.zeros(n, np.int8)
        share = {c: float((final == k).mean()) if n else float("nan") for k, c in enumerate(COLOURS)}
        return PetCodeRun(days, self.start_day, self.window_days, n, violations, complaints, share, reminders,
                          points.penalised, short, points.ledger.total(), points)

