"""What planners change: dispatch rules, points rule tables, alert thresholds,
pipe-burst handling, voting methods and time-bank overdraft.

``PolicySet.from_config`` turns the ``policies`` section of a scenario into
policy objects; each kind lives in one module (``dispatch``, ``rules``).
"""
from dataclasses import dataclass

from policies.base import Policy
from policies.dispatch import DISPATCH_POLICIES, dispatch_policy


@dataclass
class PolicySet:
    dispatch: Policy
    points: Policy
    alert: Policy
    pipe_burst: Policy
    voting: Policy
    timebank: Policy

    @classmethod
    def from_config(cls, p) -> "PolicySet":
        from policies.rules import InactivityAlert, PipeBurstAutoTicket, PointsRuleTable, TimeBankOverdraft, VotingRule

        return cls(
            dispatch=DISPATCH_POLICIES[p.dispatch](),
            points=PointsRuleTable([dict(a) for a in p.points.activities], [dict(i) for i in p.points.catalog]),
            alert=InactivityAlert(p.alert_hours_without_water, p.alert_day_start_hour, p.alert_day_end_hour),
            pipe_burst=PipeBurstAutoTicket(p.pipe_burst_auto_ticket, p.burst_threshold_litres_per_hour),
            voting=VotingRule(p.voting_method, p.voting_quorum, p.voting_threshold, p.voting_eligibility,
                              p.notice_days, p.vote_days),
            timebank=TimeBankOverdraft(p.timebank_elder_floor_minutes, p.timebank_endowment_minutes,
                                       endowment_budget_minutes=p.timebank_endowment_budget_minutes),
        )


__all__ = ["Policy", "PolicySet", "DISPATCH_POLICIES", "dispatch_policy"]
