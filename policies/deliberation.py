"""Deliberation and the participatory budget of a micro-renewal fund (微改造基金), through the voting desk.

Residents propose micro-renewal projects, the committee screens them, the vote is noticed,
held and counted — every step by :class:`twin.services.voting.VotingDesk`, so the quorum,
the threshold, the ballots' rules and the budget's funding rule are the voting service's own
(funded greedily by approvals within the budget), never a copy.

The residents (a rule of this module):

* each resident values each project kind by its appeal to their group (elders: ramps, a
  canteen, benches; younger adults: a children's room, a bike shed, a fitness corner) plus a
  personal taste (normal noise); a project is worth a vote when its value is positive;
* ``propose_share`` of them propose the kind they value most; a kind proposed by at least
  ``min_proposers`` residents goes on the ballot (screening: its cost fits the fund);
* a resident hears of the vote during the notice with chance ``1 - exp(-notice_days /
  awareness_days)``; one who heard votes online (when the ``channels`` offer it) with their
  group's ``online_vote`` chance, else at the meeting (when offered) with ``offline_vote``.
  Elders vote online less and at the meeting more: an online-only vote loses them;
* a ballot lists the kinds worth a vote, most valued first: ``budget`` ballots keep them
  while their cost fits the fund (the desk refuses a ballot over budget), ``approval`` all
  of them (up to the desk's 12 ranks), ``plurality`` the first, ``borda`` / ``irv`` the
  ranking.  With ``budget`` the desk funds the projects; with a single-winner method the
  winner is funded when the vote carries.

Every draw is a hash of (seed, stream, 0, resident) (``twin.rng``), so two policies see the
same residents and tastes.  Reported (:class:`DeliberationResult`): turnout, quorum met,
carried, projects funded and spent, and the share of residents whose top choice is funded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from policies._arms import split_arm
from policies.base import Policy

#: project kinds: (name, cost in thousand yuan, appeal to younger adults, appeal to elders)
PROJECTS = (
    ("children's room", 120, 0.6, -0.1),
    ("barrier-free ramps", 60, -0.1, 0.8),
    ("elder canteen", 150, -0.2, 0.9),
    ("benches and shade", 30, 0.1, 0.5),
    ("bike shed", 50, 0.5, -0.3),
    ("fitness corner", 40, 0.4, 0.1),
    ("path lighting", 45, 0.3, 0.4),
    ("greenery", 35, 0.2, 0.3),
    ("parking lines", 25, 0.4, -0.2),
    ("courtyard mural", 20, 0.0, -0.1),
)
CHANNELS = ("online", "offline", "both")
METHODS = ("budget", "approval", "plurality", "borda", "irv")

# Our streams in twin.rng.
_ELDER, _TASTE, _PROPOSE, _AWARE, _ONLINE, _OFFLINE = (0x4445_0000 + k for k in range(6))
_TASTES = 0x4445_1000  # + project kind


@dataclass
class DeliberationResult:
    """One vote: its tally and what the residents got."""

    method: str
    residents: int
    eligible: int
    ballots: int
    online_ballots: int
    turnout: float
    quorum_met: bool
    carried: bool
    on_ballot: list          # project kinds on the ballot, option order
    funded: list             # project kinds funded
    spent: int
    top_funded_share: float  # residents whose most valued project is funded, over all residents
    elder_turnout: float
    tally: object            # the desk's TallyResult

    def summary(self) -> dict:
        return {"method": self.method, "turnout": self.turnout, "quorum_met": float(self.quorum_met),
                "carried": float(self.carried), "projects_on_ballot": len(self.on_ballot),
                "projects_funded": len(self.funded), "spent": self.spent,
                "top_funded_share": self.top_funded_share, "elder_turnout": self.elder_turnout,
                "online_share": self.online_ballots / self.ballots if self.ballots else math.nan}

    def to_frame(self):
        """One row per project on the ballot: its votes (the desk's counts) and whether it was funded."""
        import pandas as pd

        counts = np.asarray(self.tally.counts)
        return pd.DataFrame({"project": [PROJECTS[k][0] for k in self.on_ballot],
                             "cost": [PROJECTS[k][1] for k in self.on_ballot],
                             "votes": counts[:len(self.on_ballot)],
                             "funded": [k in self.funded for k in self.on_ballot]})


class Deliberation(Policy):
    """How a community decides on its micro-renewal fund (see the module docstring)."""

    name = "deliberation"

    def __init__(self, method: str = "budget", budget: int = 200, quorum: float = 0.0, threshold: str = "none",
                 eligibility: str = "adult", notice_days: float = 7.0, channels: str = "both",
                 households: int = 1000, adults_per_household: int = 2, elder_share: float = 0.3,
                 propose_share: float = 0.05, min_proposers: int = 2, taste_spread: float = 0.5,
                 awareness_days: float = 4.0, online_vote=(0.5, 0.15), offline_vote=(0.1, 0.35)):
        self.method = method
        self.budget = budget
        self.quorum = quorum
        self.threshold = threshold
        self.eligibility = eligibility
        self.notice_days = notice_days
        self.channels = channels
        self.households = households
        self.adults_per_household = adults_per_household
        self.elder_share = elder_share
        self.propose_share = propose_share
        self.min_proposers = min_proposers
        self.taste_spread = taste_spread
        self.awareness_days = awareness_days
        self.online_vote = online_vote
        self.offline_vote = offline_vote

    def check(self) -> "Deliberation":
        """Refuse values the vote cannot run with, naming the key and what is allowed."""
        need = self.need

        need(self.method in METHODS, "method", f"one of {', '.join(METHODS)}")
        need(self.channels in CHANNELS, "channels", f"one of {', '.join(CHANNELS)}")
        need(isinstance(self.budget, int) and self.budget >= 1, "budget", "a whole number of thousand yuan >= 1")
        need(0 <= self.quorum <= 1, "quorum", "a share in [0, 1]")
        for key in ("households", "adults_per_household", "min_proposers"):
            need(isinstance(getattr(self, key), int) and getattr(self, key) >= 1, key, "a whole number >= 1")
        for key in ("elder_share", "propose_share"):
            need(0 <= getattr(self, key) <= 1, key, "a share in [0, 1]")
        need(self.notice_days >= 0 and float(self.notice_days * 1440).is_integer(), "notice_days",
             "days >= 0, a whole number of minutes")
        need(self.awareness_days > 0, "awareness_days", "a positive number of days")
        need(self.taste_spread >= 0, "taste_spread", "a number >= 0")
        for key in ("online_vote", "offline_vote"):
            v = getattr(self, key)
            need(len(v) == 2 and all(0 <= x <= 1 for x in v), key, "two chances in [0, 1]: younger adults, elders")
        return self

    # ------------------------------------------------------------- the residents
    def residents(self, seed: int) -> dict:
        """Each resident's household, group and value of every project kind (drawn from ``seed``)."""
        from twin import rng

        n = self.households * self.adults_per_household
        household = np.arange(n) // self.adults_per_household
        # a household is elder or not as a whole
        elder = rng.uniforms(seed, _ELDER, 0, self.households)[household] < self.elder_share
        appeal = np.array([[p[3] if e else p[2] for p in PROJECTS] for e in (False, True)])
        taste = np.column_stack([_normal(seed, _TASTES + k, n) for k in range(len(PROJECTS))])
        return {"household": household, "elder": elder,
                "value": appeal[elder.astype(int)] + self.taste_spread * taste}

    def run(self, seed: int = 0, desk=None) -> DeliberationResult:
        """Propose, screen, notice, vote, count and fund, on ``desk`` (default a new one with this policy)."""
        from twin import rng
        from twin.services.events import Channel
        from twin.services.voting import MAX_RANKS, VotingDesk, VotingPolicy

        self.check()
        r = self.residents(seed)
        value, elder = r["value"], r["elder"]
        n = len(value)
        if desk is None:
            desk = VotingDesk(policy=VotingPolicy(eligibility=self.eligibility, quorum=self.quorum,
                                                  threshold=self.threshold, tie_break="seeded", seed=seed,
                                                  notice_minutes=int(self.notice_days * 1440)))
        voters = np.arange(n)
        desk.register_voters(voters, r["household"], np.ones(n, bool))
        # proposals: each proposer's most valued kind; kinds proposed often enough that fit the fund
        proposer = rng.uniforms(seed, _PROPOSE, 0, n) < self.propose_share
        proposed = np.bincount(value[proposer].argmax(axis=1), minlength=len(PROJECTS)) if proposer.any() \
            else np.zeros(len(PROJECTS), np.int64)
        on_ballot = [k for k in range(len(PROJECTS))
                     if proposed[k] >= self.min_proposers and PROJECTS[k][1] <= self.budget]
        least = 1 if self.method == "budget" else 2
        if len(on_ballot) < least:
            return self._no_vote(n, desk.eligible_count(), on_ballot, value)
        t0 = 0.0
        budget = self.budget if self.method == "budget" else 0
        topic = desk.propose(int(np.flatnonzero(proposer)[0]), self.method, len(on_ballot), t0, budget=budget)
        if self.method == "budget":
            desk.add_projects([topic] * len(on_ballot), [PROJECTS[k][1] for k in on_ballot], t0)
        desk.screen(topic, True, t0)
        desk.notice(topic, t0)
        opens = t0 + self.notice_days * 1440.0
        desk.open(topic, opens)
        # who votes, and where
        aware = rng.uniforms(seed, _AWARE, 0, n) < 1.0 - math.exp(-self.notice_days / self.awareness_days)
        on_p = np.where(elder, self.online_vote[1], self.online_vote[0])
        off_p = np.where(elder, self.offline_vote[1], self.offline_vote[0])
        online = aware & (self.channels != "offline") & (rng.uniforms(seed, _ONLINE, 0, n) < on_p)
        offline = aware & ~online & (self.channels != "online") & (rng.uniforms(seed, _OFFLINE, 0, n) < off_p)
        voting = online | offline
        if self.eligibility == "household":  # one ballot a household: its first adult who would vote
            first = np.zeros(n, bool)
            seen = set()
            for i in np.flatnonzero(voting):
                if r["household"][i] not in seen:
                    seen.add(r["household"][i])
                    first[i] = True
            voting = first
        ids = np.flatnonzero(voting)
        prefs = np.full((len(ids), MAX_RANKS), -1, np.int64)
        sub = value[:, on_ballot]
        for row, i in enumerate(ids):
            ranked = [o for o in np.argsort(-sub[i], kind="stable") if sub[i, o] > 0]
            if self.method == "budget":
                ranked, left = [o for o in ranked if PROJECTS[on_ballot[o]][1] <= self.budget], self.budget
                kept = []
                for o in ranked:
                    if PROJECTS[on_ballot[o]][1] <= left:
                        kept.append(o)
                        left -= PROJECTS[on_ballot[o]][1]
                ranked = kept
            elif self.method == "plurality":
                ranked = ranked[:1]
            prefs[row, :min(len(ranked), MAX_RANKS)] = ranked[:MAX_RANKS]
        cast = (prefs[:, 0] >= 0)  # a resident who values nothing on the ballot abstains
        ids, prefs = ids[cast], prefs[cast]
        channel = np.where(online[ids], int(Channel.app), int(Channel.offline))
        if len(ids):
            outcome = desk.cast_batch(np.full(len(ids), topic), ids, prefs, np.full(len(ids), opens + 60.0),
                                      channel)
            if not outcome.accepted.all():
                raise RuntimeError(f"the voting desk refused ballots: {outcome.counts()}")
        closes = opens + 7 * 1440.0
        desk.close(topic, closes)
        tally = desk.resolve(topic, closes)
        if self.method == "budget":
            funded = [on_ballot[o] for o in tally.funded] if tally.carried else []
        else:
            funded = [on_ballot[tally.winner]] if tally.carried else []
        top = value.argmax(axis=1)
        voted = np.zeros(n, bool)
        voted[ids] = True
        return DeliberationResult(
            method=self.method, residents=n, eligible=tally.eligible, ballots=tally.ballots,
            online_ballots=int((channel == int(Channel.app)).sum()), turnout=tally.turnout,
            quorum_met=tally.quorum_met, carried=tally.carried, on_ballot=on_ballot, funded=funded,
            spent=sum(PROJECTS[k][1] for k in funded), top_funded_share=float(np.isin(top, funded).mean()),
            elder_turnout=float(voted[elder].mean()) if elder.any() else math.nan,
            tally=tally)

    def _no_vote(self, n, eligible, on_ballot, value) -> DeliberationResult:
        """Too few proposals for a vote: nothing is decided or funded."""
        return DeliberationResult(self.method, n, eligible, 0, 0, 0.0, False, False, on_ballot, [], 0, 0.0, 0.0,
                                  None)


def _normal(seed, stream, n) -> np.ndarray:
    from twin import rng

    return np.array([rng.normal(seed, stream, 0, i) for i in range(n)])


def case_arm(scenario: str, overrides, seed: int) -> dict:
    """One replication of one arm of a deliberation case (``twin.cases`` calls it for ``model:`` cases).

    Overrides named ``deliberation.<param>`` set :class:`Deliberation` parameters; the
    scenario's give the households (``community.households``).
    """
    cfg, model = split_arm(Deliberation(), overrides, scenario, seed)
    model.set_params(households=int(cfg.community.households))
    return {k: v for k, v in model.run(seed).summary().items() if k != "method"}  # a case's KPIs are numbers
