"""The non-dispatch policies: points rule table, alerts, pipe bursts, voting, time-bank overdraft.

Each is a :class:`~policies.base.Policy`: parameters only.  The engine asks it
for what it needs (``rules()`` → the services' rules table, ``services_policy()``
→ a services policy object, plain thresholds for the compiled kernels).
"""
from policies.base import Policy
from twin.services.points import Activity, Item, PointsRules
from twin.services.timebank import DEFAULT_ENDOWMENT_BUDGET, TimeBankPolicy
from twin.services.voting import VotingPolicy

#: When the default activities are offered (per week, start hour, minutes) and how
#: appealing they are beyond their reward (logit offset): an adopted suggestion is rare.
DEFAULT_SCHEDULE = {
    "waste_sorting_supervision": dict(per_week=7.0, hour=7.0, minutes=60.0, appeal=0.0),
    "deliberation_meeting": dict(per_week=1.0, hour=10.0, minutes=120.0, appeal=0.0),
    "volunteer_service": dict(per_week=2.0, hour=9.0, minutes=120.0, appeal=-1.5),
    "adopted_suggestion": dict(per_week=1.0, hour=15.0, minutes=0.0, appeal=-4.5),
}


class PointsRuleTable(Policy):
    """Activities (points, unit, daily cap, schedule) and the redemption catalog.

    ``activities``: list of dicts with name, points, unit, daily_cap and
    optionally per_week, hour, minutes, appeal; ``catalog``: list of dicts with
    name, cost, stock.  Empty lists mean the default table from the source texts.
    """

    name = "points"

    def __init__(self, activities=(), catalog=()):
        self.activities = list(activities)
        self.catalog = list(catalog)

    def rules(self) -> PointsRules:
        default = PointsRules()
        acts = tuple(Activity(**{k: a[k] for k in ("name", "points", "unit", "daily_cap") if k in a})
                     for a in self.activities) or default.activities
        items = tuple(Item(**{k: i[k] for k in ("name", "cost", "stock") if k in i})
                      for i in self.catalog) or default.catalog
        return PointsRules(acts, items)

    def schedule(self):
        """Per activity: (per_week, hour, minutes, appeal), in rule-table order."""
        rows = []
        for a in self.rules().activities:
            given = next((x for x in self.activities if x["name"] == a.name), {})
            base = DEFAULT_SCHEDULE.get(a.name, dict(per_week=1.0, hour=10.0, minutes=60.0, appeal=0.0))
            rows.append(tuple(float(given.get(k, base[k])) for k in ("per_week", "hour", "minutes", "appeal")))
        return rows


class InactivityAlert(Policy):
    """Elders living alone: no water for ``hours`` daytime hours in a row → alert → a social worker."""

    name = "inactivity_alert"

    def __init__(self, hours=4.0, day_start_hour=6.0, day_end_hour=22.0):
        self.hours = hours
        self.day_start_hour = day_start_hour
        self.day_end_hour = day_end_hour


class PipeBurstAutoTicket(Policy):
    """A building's water flow above ``threshold_litres_per_hour`` opens a plumbing ticket by itself."""

    name = "pipe_burst_auto_ticket"

    def __init__(self, enabled=True, threshold_litres_per_hour=600.0):
        self.enabled = enabled
        self.threshold_litres_per_hour = threshold_litres_per_hour


class VotingRule(Policy):
    """How topics are decided: method, quorum, threshold, eligibility, notice and voting windows."""

    name = "voting"

    def __init__(self, method="plurality", quorum=0.0, threshold="simple", eligibility="adult",
                 notice_days=7.0, vote_days=7.0):
        self.method = method
        self.quorum = quorum
        self.threshold = threshold
        self.eligibility = eligibility
        self.notice_days = notice_days
        self.vote_days = vote_days

    def services_policy(self) -> VotingPolicy:
        return VotingPolicy(eligibility=self.eligibility, notice_minutes=self.notice_days * 1440.0,
                            quorum=self.quorum, threshold=self.threshold)


class TimeBankOverdraft(Policy):
    """Elders aged ``elder_age``+ may overdraw to ``elder_floor_minutes`` and get a monthly endowment.

    The endowment issues at most ``endowment_budget_minutes`` in all, as a programme's grant
    would; once spent, endowments are refused (``EndowmentExhausted``) and elders live on what
    they hold and their floor.
    """

    name = "timebank_overdraft"

    def __init__(self, elder_floor_minutes=0, endowment_minutes_per_month=0, elder_age=75,
                 endowment_budget_minutes=DEFAULT_ENDOWMENT_BUDGET):
        self.elder_floor_minutes = elder_floor_minutes
        self.endowment_minutes_per_month = endowment_minutes_per_month
        self.elder_age = elder_age
        self.endowment_budget_minutes = endowment_budget_minutes

    def services_policy(self) -> TimeBankPolicy:
        """The time-bank service's policy under this overdraft policy."""
        return TimeBankPolicy(endowment_budget=self.endowment_budget_minutes)
