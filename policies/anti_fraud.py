"""Anti-fraud: spot checks of claimed activities, and residents who claim what they did not do.

The source text asks for an anti-cheating mechanism (000_e9194ff7d1f6969a.txt:292,
防作弊机制: face recognition and GPS to verify that a participation was real) but reports no
figure, so this is a planner's model with no case: what a verification rate buys.

Each day every adult may take part in the day's activity for real — the Chengdu resident
rule (``residents.activity_base``, ``reward_effect`` per 10 points, ``engagement_effect``) —
and claim it.  A share ``dishonest_share`` of adults may instead claim it without taking
part; such a resident does so with probability
``logistic(fraud_base + reward_effect * expected / 10 - caught_effect * caught)``, where
``expected = points * (1 - check_rate) - penalty * check_rate`` is what a false claim is worth
at the announced check rate, valued with the same ``reward_effect`` as a real one, and
``caught`` remembers the times they were caught (``caught_memory`` a day): so false claims
grow as checks get rarer.  Every claim, real or not, is checked with ``check_rate``; a
checked real claim passes, a checked false one is refused and penalised
``penalty_points`` through the points service; an unchecked claim is credited through the
service's earn, which cannot tell.  Each check costs ``check_minutes`` of staff time.

:meth:`AntiFraud.run` gives the fraud share of the points awarded, the attempts, the checks
and their cost; :func:`sweep_check_rates` the same over a list of check rates.
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

S_DISHONEST, S_REAL, S_FAKE, S_CHECK = range(950, 954)
NONE, REAL, FAKE = 0, 1, 2
ACTIVITY = "verified_activity"
CAUSE_FALSE_CLAIM = 2  # the penalise cause code of a refused false claim


@parallel_kernel
def claims_day(seed, day, adult, dishonest, real_logit, engagement_effect, engagement, fake_logit,
               caught_effect, caught, check_rate, out_claim, out_checked):
    """One day of every resident's claim (``NONE``, ``REAL`` or ``FAKE``) and whether it is checked."""
    for i in prange(adult.shape[0]):
        claim = NONE
        if adult[i]:
            if rng.uniform(seed, S_REAL, day, i) < logistic(real_logit + engagement_effect * engagement[i]):
                claim = REAL
            elif dishonest[i] and rng.uniform(seed, S_FAKE, day, i) < logistic(fake_logit - caught_effect * caught[i]):
                claim = FAKE
        out_claim[i] = claim
        out_checked[i] = claim != NONE and rng.uniform(seed, S_CHECK, day, i) < check_rate


@dataclass
class AntiFraudRun:
    days: int
    check_rate: float
    claims: int
    false_claims: int          # attempts
    checks: int
    caught: int                # false claims checked: refused and penalised
    points_awarded: int        # everything credited
    points_awarded_false: int  # credited for claims nobody made good
    points_penalised: int
    check_hours: float
    check_cost: float
    ledger_total: int
    points: object = None

    def kpis(self) -> dict:
        return {
            "check_rate": self.check_rate,
            "fraud_share_of_points": self.points_awarded_false / self.points_awarded if self.points_awarded else 0.0,
            "false_claims_per_day": self.false_claims / self.days,
            "false_claim_share": self.false_claims / self.claims if self.claims else 0.0,
            "checks_per_day": self.checks / self.days,
            "check_hours_per_day": self.check_hours / self.days,
            "check_cost_per_day": self.check_cost / self.days,
            "caught": float(self.caught),
            "points_awarded": float(self.points_awarded),
            "points_awarded_false": float(self.points_awarded_false),
        }


class AntiFraud(Policy):
    """A spot-check rate of claimed activities, and what a check and a caught claim cost."""

    name = "anti_fraud"

    def __init__(self, check_rate=0.1, points_per_claim=10, penalty_points=50, dishonest_share=0.2,
                 fraud_base=-4.0, caught_effect=1.0, caught_memory=0.99, check_minutes=10.0,
                 staff_cost_per_hour=40.0):
        self.check_rate = check_rate
        self.points_per_claim = points_per_claim
        self.penalty_points = penalty_points
        self.dishonest_share = dishonest_share
        self.fraud_base = fraud_base
        self.caught_effect = caught_effect
        self.caught_memory = caught_memory
        self.check_minutes = check_minutes
        self.staff_cost_per_hour = staff_cost_per_hour

    def check(self) -> "AntiFraud":
        """Refuse values the rule cannot run with, naming the key and what is allowed."""
        k = self.name + "."
        for key in ("check_rate", "dishonest_share", "caught_memory"):
            require(0.0 <= getattr(self, key) <= 1.0, k + key, "a share in 0..1", getattr(self, key))
        for key, low in (("points_per_claim", 1), ("penalty_points", 0)):
            v = getattr(self, key)
            require(isinstance(v, int) and not isinstance(v, bool) and v >= low, k + key,
                    f"a whole number of points >= {low}", v)
        for key in ("caught_effect", "check_minutes", "staff_cost_per_hour"):
            require(getattr(self, key) >= 0.0, k + key, "a non-negative number", getattr(self, key))
        return self

    def fake_logit(self, reward_effect: float) -> float:
        """The logit of a false claim before being caught: what it is worth at the check rate."""
        c = self.check_rate
        expected = self.points_per_claim * (1.0 - c) - self.penalty_points * c
        return self.fraud_base + reward_effect * expected / 10.0

    def run(self, cfg, c) -> AntiFraudRun:
        """Run ``cfg.sim.days`` days on the residents of community ``c`` (the one ``cfg`` describes)."""
        from twin.services.points import Activity, Item, Points, PointsRules

        self.check()
        days, seed, r = int(cfg.sim.days), int(cfg.seed), cfg.residents
        n = c.n_residents
        adult = c.adults()
        dishonest = adult & (rng.uniforms(seed, S_DISHONEST, 0, n) < self.dishonest_share)
        real_logit = r.activity_base + r.reward_effect * self.points_per_claim / 10.0
        fake_logit = self.fake_logit(r.reward_effect)
        engagement = c.engagement.astype(np.float64)
        points = Points(rules=PointsRules((Activity(ACTIVITY, self.points_per_claim),), (Item("voucher", 100),)))
        residents = np.flatnonzero(adult)
        points.enroll_batch(residents)
        caught_mem = np.zeros(n)
        claim, checked = np.zeros(n, np.int8), np.zeros(n, np.bool_)
        totals = dict(claims=0, false_claims=0, checks=0, caught=0, awarded=0, awarded_false=0)
        for day in range(days):
            caught_mem *= self.caught_memory
            claims_day(seed, day, adult, dishonest, real_logit, r.engagement_effect, engagement, fake_logit,
                       self.caught_effect, caught_mem, self.check_rate, claim, checked)
            t = day * 1440.0 + 1080.0
            fake = claim == FAKE
            caught = fake & checked
            credit = np.flatnonzero((claim == REAL) | (fake & ~checked))
            if len(credit):
                out = points.earn_batch(credit, 0, day, 1, t)
                amount = out.events["amount"]
                totals["awarded"] += int(amount.sum())
                totals["awarded_false"] += int(amount[fake[out.events["actor"]]].sum())
            if caught.any() and self.penalty_points > 0:
                points.penalise_batch(np.flatnonzero(caught), self.penalty_points, CAUSE_FALSE_CLAIM, t)
            caught_mem[caught] += 1.0
            totals["claims"] += int((claim != NONE).sum())
            totals["false_claims"] += int(fake.sum())
            totals["checks"] += int(checked.sum())
            totals["caught"] += int(caught.sum())
        hours = totals["checks"] * self.check_minutes / 60.0
        return AntiFraudRun(days, float(self.check_rate), totals["claims"], totals["false_claims"], totals["checks"],
                            totals["caught"], totals["awarded"], totals["awarded_false"], points.penalised, hours,
                            hours * self.staff_cost_per_hour, points.ledger.total(), points)


def sweep_check_rates(cfg, community, rates, policy: AntiFraud | None = None) -> list[dict]:
    """The policy's KPIs at each check rate (same seed and community: the rates' draws are common)."""
    base = policy or AntiFraud()
    return [AntiFraud(**{**base.get_params(), "check_rate": float(c)}).run(cfg, community).kpis() for c in rates]

