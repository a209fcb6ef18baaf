"""Mediation across communities: each community's own desk, and a district pool taking its overflow.

A city config may declare ``mediation:`` (a :class:`MediationRule`).  Then every
community runs its own mediation desk, the Shenzhen model of
:mod:`policies.mediation` (:class:`~policies.mediation.Desk`): its disputes drawn from the
community's seed and its households, its mediators and their matching from the
template's ``mediation.<param>`` overrides.  The district's mediators are one more
:class:`~policies.mediation.Centre`, shared by all communities.  Whether a match settles and
how long it takes is :meth:`Mediation.outcome <policies.mediation.Mediation.outcome>` of the
dispute's own community, drawn on the dispute alone: a district match changes who
mediates and when, never the dispute's luck.

The exchange, one step per morning beside the repair exchange of :mod:`twin.city`:

* On morning ``d`` each desk files the disputes since yesterday and matches the oldest
  waiting ones to its free places (as :meth:`Mediation.run <policies.mediation.Mediation.run>`
  does); then it offers the district every dispute still waiting that has waited more than
  ``refer_after_days``, or whose kind no local mediator has a skill of ``min_local_skill``
  for (:func:`referrals_of`).  An offer stays in its community's queue.
* On morning ``d + 1`` the district pool takes, from all the communities' offers of
  morning ``d``, as many as it has free places, in an order fixed by the disputes
  themselves — filing time, community index, dispute id (:func:`referral_order`) — never
  by which shard answered first, and matches them to its mediators by ``method``.
* Each desk hands the taken disputes over before its own matching that morning; the rest
  stay in its queue, to be matched at home or offered again.

So a district pool of zero mediators changes nothing: every desk runs exactly as the
standalone model does.  Offers on the run's last morning are not taken (the district
would match them after the run's end).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from policies.mediation import KINDS, METHODS, Centre, Desk, skill_table
from twin.config import ConfigError

#: A dispute a community offers the district (kind: index into ``KINDS``; filed: fractional day).
REFERRAL = np.dtype([("community", "i8"), ("dispute", "i8"), ("filed", "f8"), ("kind", "i8"),
                     ("difficulty", "f8")])
#: A dispute the district takes: its mediator, the morning, the chance of the match, and its outcome.
TAKE = np.dtype([("community", "i8"), ("dispute", "i8"), ("mediator", "i8"), ("morning", "f8"), ("chance", "f8"),
                 ("settled", "?"), ("end", "f8")])
#: Every dispute of a community at the end of the run (NaN: did not happen within the run).
DISPUTE = np.dtype([("kind", "i8"), ("filed", "f8"), ("difficulty", "f8"), ("matched", "f8"), ("resolved", "f8"),
                    ("settled", "?"), ("chance", "f8"), ("referred", "?")])

#: How the city's mediation KPIs come from each community's: totals, and means pooled over a count.
MEDIATION_SUMMED = ("disputes_filed", "disputes_matched", "disputes_referred", "disputes_ended", "disputes_settled")
MEDIATION_POOLED = {"dispute_settlement_rate": "disputes_ended", "dispute_days_to_settle_mean": "disputes_settled",
                    "dispute_days_waiting_mean": "disputes_filed"}


def _whole(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and float(v).is_integer()


def _real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclasses.dataclass(frozen=True)
class MediationRule:
    """The district's mediators and when a community offers it a dispute (see the module docstring)."""

    mediators: int = 2
    max_cases: int = 3
    method: str = "optimal"
    specialties: tuple = KINDS   # mediator i specialises in specialties[i mod len]
    specialty_skill: float = 0.9
    other_skill: float = 0.4
    skill_spread: float = 0.1
    refer_after_days: float = 3.0
    min_local_skill: float = 0.0  # 0: never offered for want of a skilled local mediator

    def __post_init__(self):
        unit = "a number in [0, 1]"
        checks = (("mediators", _whole(self.mediators) and self.mediators >= 0,
                   "a whole number >= 0 (0: no district mediators)"),
                  ("max_cases", _whole(self.max_cases) and self.max_cases >= 1, "a whole number >= 1"),
                  ("method", self.method in METHODS, f"one of {', '.join(METHODS)}"),
                  ("specialties", isinstance(self.specialties, (list, tuple)) and len(self.specialties) > 0
                   and all(k in KINDS for k in self.specialties), f"a list of kinds from {', '.join(KINDS)}"),
                  ("specialty_skill", _real(self.specialty_skill) and 0 <= self.specialty_skill <= 1, unit),
                  ("other_skill", _real(self.other_skill) and 0 <= self.other_skill <= 1, unit),
                  ("skill_spread", _real(self.skill_spread) and 0 <= self.skill_spread <= 1, unit),
                  ("refer_after_days", _real(self.refer_after_days) and self.refer_after_days >= 0, "days >= 0"),
                  ("min_local_skill", _real(self.min_local_skill) and 0 <= self.min_local_skill <= 1, unit))
        for key, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"mediation.{key}: {getattr(self, key)!r} is not allowed; allowed: {allowed}")
        for key in ("mediators", "max_cases"):
            object.__setattr__(self, key, int(getattr(self, key)))  # 2.0 in a YAML file is 2
        object.__setattr__(self, "specialties", tuple(self.specialties))

    def skills(self, seed: int) -> np.ndarray:
        """The district mediators' skills (mediators x kinds), drawn as a community desk's are."""
        specialty = [KINDS.index(self.specialties[i % len(self.specialties)]) for i in range(self.mediators)]
        return skill_table(specialty, self.specialty_skill, self.other_skill, self.skill_spread, seed)


def referrals_of(index: int, desk: Desk, rule: MediationRule, day: int) -> np.ndarray:
    """The disputes community ``index`` offers the district after its matching on morning ``day``."""
    waiting = np.array(desk.waiting, np.int64)
    if len(waiting) == 0:
        return np.zeros(0, REFERRAL)
    unskilled = desk.skill.max(axis=0, initial=0.0) < rule.min_local_skill  # per kind
    late = day - desk.filed[waiting] > rule.refer_after_days
    chosen = waiting[late | unskilled[desk.kind[waiting]]]
    out = np.zeros(len(chosen), REFERRAL)
    out["community"], out["dispute"] = index, chosen
    out["filed"], out["kind"], out["difficulty"] = desk.filed[chosen], desk.kind[chosen], desk.difficulty[chosen]
    return out


def referral_order(offers: np.ndarray) -> np.ndarray:
    """The order the district takes offers in: filing time, then community index, then dispute id."""
    return np.lexsort((offers["dispute"], offers["community"], offers["filed"]))


class DistrictPool:
    """The district's mediators between mornings, and its rule for taking offered disputes.

    ``communities`` maps a community's index to its seed and its :class:`~policies.mediation.Mediation`
    model, whose chance and duration rules a taken dispute keeps.
    """

    def __init__(self, rule: MediationRule, communities: dict, seed: int):
        self.rule = rule
        self.communities = communities
        self.skill = rule.skills(seed)
        self.centre = Centre(self.skill, rule.max_cases, rule.method)
        self.offers = 0   # dispute-mornings offered
        self.taken = 0
        self.settled = 0

    def take(self, offers: np.ndarray, morning: int) -> np.ndarray:
        """The disputes taken on ``morning`` from the offers of the morning before (see the module docstring)."""
        self.offers += len(offers)
        if len(offers) == 0 or self.rule.mediators == 0:
            return np.zeros(0, TAKE)
        places = self.centre.free_places(float(morning))
        chosen = offers[referral_order(offers)][:len(places)]
        if len(chosen) == 0:
            return np.zeros(0, TAKE)
        models = [self.communities[int(c)][1] for c in chosen["community"]]
        who, chance = self.centre.match(places, chosen["kind"], chosen["difficulty"],
                                        [m.base_logit for m in models], [m.skill_weight for m in models])
        out = np.zeros(len(chosen), TAKE)
        for row, (o, m, c, model) in enumerate(zip(chosen, who, chance, models)):
            seed = self.communities[int(o["community"])][0]
            settled, end = model.outcome(seed, int(o["dispute"]), self.skill[m, o["kind"]], o["difficulty"], c,
                                         float(morning))
            self.centre.book(int(m), end)
            out[row] = (o["community"], o["dispute"], m, morning, c, settled, end)
        self.taken += len(out)
        self.settled += int(out["settled"].sum())
        return out

    def figures(self) -> dict:
        return {"mediators": self.rule.mediators, "offers": self.offers, "taken": self.taken,
                "settled": self.settled}


def hand_over(desk: Desk, takes: np.ndarray) -> None:
    """The disputes the district took leave the desk's queue with the district's outcome."""
    for t in takes:
        desk.hand_over(int(t["dispute"]), float(t["chance"]), bool(t["settled"]), float(t["end"]),
                       float(t["morning"]))


def disputes_of(desk: Desk) -> np.ndarray:
    """Every dispute of the desk's run, one row each (:data:`DISPUTE`)."""
    out = np.zeros(len(desk.kind), DISPUTE)
    out["kind"], out["filed"], out["difficulty"] = desk.kind, desk.filed, desk.difficulty
    out["matched"], out["resolved"], out["settled"] = desk.matched, desk.resolved, desk.settled
    out["chance"], out["referred"] = desk.chance, desk.outside
    return out


def desk_kpis(disputes: np.ndarray, days: int) -> dict:
    """A community's mediation KPIs from its disputes (:func:`disputes_of`) over a run of ``days``.

    Settled means settled by the run's end; the settlement rate is over the disputes whose
    mediation ended (as the Shenzhen model's ``success_rate``); days to settle run from filing
    to the agreement.  Days waiting run from filing to the match, or to the run's end for a
    dispute never matched, so that a desk that leaves disputes waiting does not look quick.
    """
    matched, ended = ~np.isnan(disputes["matched"]), ~np.isnan(disputes["resolved"])
    settled = ended & disputes["settled"]
    return {"disputes_filed": len(disputes), "disputes_matched": int(matched.sum()),
            "disputes_referred": int(disputes["referred"].sum()), "disputes_ended": int(ended.sum()),
            "disputes_settled": int(settled.sum()),
            "dispute_settlement_rate": float(settled.sum() / ended.sum()) if ended.any() else math.nan,
            "dispute_days_to_settle_mean": float((disputes["resolved"] - disputes["filed"])[settled].mean())
            if settled.any() else math.nan,
            "dispute_days_waiting_mean": float((np.where(matched, disputes["matched"], days)
                                                - disputes["filed"]).mean()) if len(disputes) else math.nan}
