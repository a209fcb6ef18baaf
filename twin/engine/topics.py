"""Topics from proposal to resolution, and residents' ballots on the open ones (议事会).

Each day the community proposes topics at the scenario's rate; a topic is
screened (most pass), noticed for the policy's notice period, open for the
voting window, then closed and resolved by the voting desk.  Up to
``MAX_OPEN`` topics are open at once; residents see them as slots, and a bit
per slot remembers who already voted.

Outcomes move satisfaction: when a topic is carried, each voter whose first
choice won feels ``FEEL_WON`` and each whose first choice lost ``FEEL_LOST``;
a tie or a topic not carried moves nobody.
"""
import numpy as np

from agents.community import FLAG_ADULT, FLAG_APP
from twin import rng
from twin.services.events import Channel
from twin.services.voting import METHODS

MAX_OPEN = 8
N_OPTIONS = 3
SCREEN_PASS = 0.85
FEEL_WON, FEEL_LOST = 1.0, -0.5
S_PROPOSE_N, S_PROPOSER, S_SCREEN, S_COMMON, S_PROPOSE_T = range(600, 605)
S_TASTE = 650  # + option: one stream per option (options < 50)


class TopicCycle:
    def __init__(self, desk, community, rule, seed: int, proposals_per_month: float = 1.5, experience=None):
        self.desk, self.c, self.rule, self.seed = desk, community, rule, seed
        self.experience = experience if experience is not None else np.zeros(community.n_residents, np.float32)
        self._first_choices = {}  # topic -> [(voters, their first choices)] of the counted ballots
        self.rate = proposals_per_month / 30.0
        n = community.n_residents
        desk.register_voters(np.arange(n), community.household, (community.flags & FLAG_ADULT) != 0)
        self.voted = np.zeros(n, np.uint8)
        self.slot_topic = np.full(MAX_OPEN, -1, np.int64)
        self.slot_close_day = np.full(MAX_OPEN, -1, np.int64)
        self.waiting = []          # (open time, topic)
        self.method = METHODS.index(rule.method)
        self._adults = np.flatnonzero((community.flags & FLAG_ADULT) != 0)
        self.turnouts = []
        self.resolved_today = []  # topics resolved in the last step (for anchoring)

    def open_slots(self) -> np.ndarray:
        return self.slot_topic.copy()

    def cast(self, d: int, out_vote: np.ndarray, out_vote_t: np.ndarray) -> None:
        """Turn the residents' decisions to vote into ballots on each open topic."""
        for j in np.flatnonzero(self.slot_topic >= 0):
            voters = np.flatnonzero(out_vote[:, j])
            if len(voters) == 0:
                continue
            topic = int(self.slot_topic[j])
            t = out_vote_t[voters, j]
            order = np.argsort(t, kind="stable")
            voters, t = voters[order], t[order]
            prefs = self._preferences(topic, voters)
            channel = np.where((self.c.flags[voters] & FLAG_APP) != 0, int(Channel.app), int(Channel.offline))
            ok = self.desk.cast_batch(topic, voters, prefs, t, channel).accepted
            self._first_choices.setdefault(topic, []).append((voters[ok], prefs[ok, 0]))

    def _preferences(self, topic: int, voters: np.ndarray) -> np.ndarray:
        """Each voter ranks the options by a shared appeal plus a personal taste."""
        common = rng.uniforms(self.seed, S_COMMON, topic, N_OPTIONS)
        utility = np.stack([common[o] + rng.uniforms_at(self.seed, S_TASTE + o, topic, voters)
                            for o in range(N_OPTIONS)], axis=1)
        ranking = np.argsort(-utility, axis=1, kind="stable")
        if METHODS[self.method] == "approval":  # approve the options one likes more than average
            liked = np.take_along_axis(utility, ranking, axis=1) >= utility.mean(axis=1, keepdims=True)
            ranking = np.where(liked, ranking, -1)
        elif METHODS[self.method] == "plurality":
            ranking = ranking[:, :1]
        return ranking.astype(np.int64)

    def _feel_outcome(self, topic: int, result) -> None:
        ballots = self._first_choices.pop(topic, [])
        if not (result.carried and result.winner >= 0) or not ballots:
            return
        voters = np.concatenate([v for v, _ in ballots])
        first = np.concatenate([f for _, f in ballots])
        np.add.at(self.experience, voters, np.where(first == result.winner, FEEL_WON, FEEL_LOST))

    def step(self, d: int) -> None:
        """Propose, screen, notice, open, close and resolve the topics whose time has come today."""
        desk, base = self.desk, d * 1440.0
        end = base + 1440.0
        self.resolved_today = []
        k = rng.poisson(self.rate, self.seed, S_PROPOSE_N, d, 0)
        if k:
            t = np.sort(base + 540.0 + rng.uniforms(self.seed, S_PROPOSE_T, d, k) * 480.0)
            who = self._adults[(rng.uniforms(self.seed, S_PROPOSER, d, k) * len(self._adults)).astype(np.int64)]
            topics = desk.propose_batch(who, self.method, N_OPTIONS, t).ids
            passed = rng.uniforms(self.seed, S_SCREEN, d, k) < SCREEN_PASS
            desk.screen_batch(topics, passed, t + 60.0)
            kept = topics[passed]
            notice = self.rule.notice_days * 1440.0
            desk.notice_batch(kept, t[passed] + 120.0)
            self.waiting += [(float(tt) + 120.0 + notice, int(tp)) for tt, tp in zip(t[passed], kept)]
        for j in np.flatnonzero(self.slot_close_day == d):
            topic = int(self.slot_topic[j])
            desk.close_batch([topic], [end - 1.0])
            desk.resolve_batch([topic], [end - 0.5])
            result = desk.result(topic)
            self.turnouts.append(result.turnout)
            self.resolved_today.append(topic)
            self._feel_outcome(topic, result)
            self.slot_topic[j], self.slot_close_day[j] = -1, -1
            self.voted &= np.uint8(~(1 << j) & 0xFF)
        due = sorted(w for w in self.waiting if w[0] < end)
        for t_open, topic in due:
            free = np.flatnonzero(self.slot_topic < 0)
            if len(free) == 0:
                break  # all slots busy: the topic waits for tomorrow
            self.waiting.remove((t_open, topic))
            desk.open_batch([topic], [max(t_open, base)])
            j = free[0]
            self.slot_topic[j] = topic
            self.slot_close_day[j] = d + max(1, int(round(self.rule.vote_days)))
