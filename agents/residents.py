"""Residents: the per-agent rules, compiled, one day of ticks per call.

Each day a resident may take part in the points activities offered that day
(probability rising with the reward, with the share of their network active in
the last 30 days and with their engagement, falling with fatigue), redeem
points, give time-bank service to an older neighbour, and vote on open
topics.  Satisfaction moves with what happened to them.  Decisions are written
into fixed per-resident slots; the engine turns them into service commands.

Awareness (opt-in, ``residents.awareness_initial`` below 1): only a resident
who knows of the points programme feels its reward (``reward_effect``); the
others see an activity's plain appeal.  Each day an unaware adult learns of it
with probability ``1 - (1 - base) * (1 - spread) ** k``, ``k`` the ties aware
the day before: an independent chance of noticing it alone and of being told
by each aware tie (a simple contagion through the social network).  With
everyone aware from day 0 no awareness draw is made, so runs without it are
unchanged.

All rules are plain functions of arrays and scalars with counter-based draws,
so they can also be compiled with ``numba.cuda.jit(device=True)``.
"""
import math

import numpy as np
from numba import prange

from twin import rng
from twin._jit import inline, kernel, parallel_kernel
from agents.community import FLAG_ADULT, FLAG_APP, FLAG_ELDER, FLAG_OLD_ELDER

(S_ACT, S_ACT_T, S_REDEEM, S_HELP, S_HELP_PICK, S_HELP_MIN, S_HELP_T, S_VOTE, S_VOTE_T,
 S_RATING) = range(200, 210)
S_AWARE_SEED, S_AWARE = 210, 211  # who knows of the points programme on day 0; who learns of it each day

PEER_WINDOW_DAYS = 30
NEVER = -32768


@inline
def logistic(x):
    return 1.0 / (1.0 + math.exp(-x))


@inline
def peer_share_of(i, indptr, indices, last_active, day):
    """Share of resident ``i``'s network active in the last ``PEER_WINDOW_DAYS`` days (the per-agent rule)."""
    deg = indptr[i + 1] - indptr[i]
    c = 0
    for e in range(indptr[i], indptr[i + 1]):
        # (compared this way round, an int16 "never" cannot overflow without the JIT either)
        if last_active[indices[e]] > day - PEER_WINDOW_DAYS:
            c += 1
    return c / deg if deg > 0 else 0.0


@parallel_kernel
def peer_share(indptr, indices, last_active, day, out):
    """Share of each resident's network active in the last ``PEER_WINDOW_DAYS`` days."""
    for i in prange(indptr.shape[0] - 1):
        out[i] = peer_share_of(i, indptr, indices, last_active, day)


@inline
def awareness_of(i, seed, day, flags, aware, indptr, indices, base, spread, out):
    """Whether resident ``i`` knows of the points programme after ``day`` (the per-agent rule, into ``out[i]``).

    Reads yesterday's ``aware`` only, so the order residents are visited in
    does not matter.  Children neither learn of it nor tell (they take no part).
    """
    if aware[i] or not (flags[i] & FLAG_ADULT):
        out[i] = aware[i]
        return
    k = 0
    for e in range(indptr[i], indptr[i + 1]):
        if aware[indices[e]]:
            k += 1
    stays_unaware = (1.0 - base) * math.pow(1.0 - spread, k)
    out[i] = 1 if rng.uniform(seed, S_AWARE, day, i) >= stays_unaware else 0


@parallel_kernel
def awareness_day(seed, day, flags, aware, indptr, indices, base, spread, out):
    """One day of awareness spreading: :func:`awareness_of` for every resident."""
    for i in prange(flags.shape[0]):
        awareness_of(i, seed, day, flags, aware, indptr, indices, base, spread, out)


def initial_awareness(seed, flags, share) -> np.ndarray:
    """Who knows of the points programme on day 0 (1) — everyone when ``share`` is 1, with no draw made."""
    if share >= 1.0:
        return np.ones(flags.shape[0], np.uint8)
    adult = (flags & FLAG_ADULT) != 0
    return (adult & (rng.uniforms(seed, S_AWARE_SEED, 0, flags.shape[0]) < share)).astype(np.uint8)


@inline
def effects_of(peer_effect, engagement_effect, fatigue_effect, fatigue_gain, fatigue_decay, redeem_prob,
               help_prob, help_minutes_mean, vote_logit, vote_app_effect, vote_engagement_effect):
    """The resident rule's scalar knobs as the one tuple :func:`resident_day` takes (all floats)."""
    return (float(peer_effect), float(engagement_effect), float(fatigue_effect), float(fatigue_gain),
            float(fatigue_decay), float(redeem_prob), float(help_prob), float(help_minutes_mean), float(vote_logit),
            float(vote_app_effect), float(vote_engagement_effect))


@inline
def resident_day(i, seed, day, keys, flags, engagement, fatigue, peer, last_active, act_order, act_logit,
                 act_logit_unaware, aware, effects, balances, costs, indptr, indices, open_topics, voted,
                 out_act, out_redeem, out_help, out_help_minutes, out_help_t, out_vote, out_vote_t):
    """One day of resident ``i``'s decisions (see the module docstring): the per-agent rule.

    The day's ticks are walked event by event: ``act_order`` lists the
    activities offered today in the order of their ticks (then by index);
    ``act_logit`` is an activity's logit for one aware of the programme,
    ``act_logit_unaware`` for one who is not (without ``reward_effect``);
    time-bank help is decided in the 14:00 tick and redeeming in the 19:00 one.
    Nothing else happens in the other ticks, so they cost nothing.  ``keys``
    holds the day's draw keys (:func:`day_keys`), which every resident's draws
    share.  One plain
    function for both targets: :func:`residents_day` runs it for every resident
    on the CPU, ``twin.engine.cuda`` in one GPU thread per resident.  The
    scalar knobs come as one tuple, :func:`effects_of`'s: with 30 or more
    arguments Python passes a call's arguments as ``*args``, which numba
    cannot inline.  No two-argument ``min``/``max`` here: numba's CUDA target
    fails to type them in device code.
    """
    (peer_effect, engagement_effect, fatigue_effect, fatigue_gain, fatigue_decay, redeem_prob, help_prob,
     help_minutes_mean, vote_logit, vote_app_effect, vote_engagement_effect) = effects
    n_act = out_act.shape[1]
    n_topics = open_topics.shape[0]
    base = day * 1440.0
    f = flags[i]
    # float32 state is widened before arithmetic, as compiled code does (numpy would round in float32)
    fatigue[i] = float(fatigue[i]) * fatigue_decay
    for a in range(n_act):
        out_act[i, a] = False
    out_redeem[i] = -1
    out_help[i] = -1
    for j in range(n_topics):
        out_vote[i, j] = False
    if not (f & FLAG_ADULT):
        return
    # points activities, in the order they are offered through the day
    for q in range(act_order.shape[0]):
        a = act_order[q]
        logit = act_logit[a] if aware[i] else act_logit_unaware[a]
        x = logit + peer_effect * float(peer[i]) + engagement_effect * float(engagement[i]) \
            - fatigue_effect * float(fatigue[i])
        if rng.uniform_keyed(keys[a], i) < logistic(x):  # S_ACT + 1000 * a
            out_act[i, a] = True
            fatigue[i] = float(fatigue[i]) + fatigue_gain
            last_active[i] = day
    # time-bank help from a younger elder (the 14:00 tick)
    if (f & FLAG_ELDER) and not (f & FLAG_OLD_ELDER) and rng.uniform_keyed(keys[n_act + _HELP], i) < help_prob:
        # reservoir-pick an older elder among network neighbours
        pick = -1
        seen = 0
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            if flags[j] & FLAG_OLD_ELDER:
                seen += 1
                if rng.uniform(seed, S_HELP_PICK, day * 64 + seen, i) * seen < 1.0:
                    pick = j
        if pick >= 0:
            out_help[i] = pick
            m = rng.exponential_keyed(help_minutes_mean, keys[n_act + _HELP_MIN], i)
            q = int(m / 15.0 + 0.5) * 15  # to the quarter hour, between 15 and 240
            out_help_minutes[i] = 15 if q < 15 else (240 if q > 240 else q)
            out_help_t[i] = base + 9 * 60.0 + rng.uniform_keyed(keys[n_act + _HELP_T], i) * 480.0
    # redeem in the evening (the 19:00 tick), the dearest item one can afford
    if rng.uniform_keyed(keys[n_act + _REDEEM], i) < redeem_prob:
        best = -1
        for c in range(costs.shape[0]):
            if costs[c] <= balances[i] and (best < 0 or costs[c] > costs[best]):
                best = c
        out_redeem[i] = best
    # votes: at most one per open topic per day, at a drawn minute between 08:00 and 22:00
    for j in range(n_topics):
        if open_topics[j] >= 0 and not (voted[i] >> j) & 1:
            x = vote_logit + vote_engagement_effect * float(engagement[i])
            if f & FLAG_APP:
                x += vote_app_effect
            if rng.uniform_keyed(keys[n_act + _VOTES + j], i) < logistic(x):  # S_VOTE + 1000 * j
                out_vote[i, j] = True
                out_vote_t[i, j] = base + 480.0 + rng.uniform_keyed(keys[n_act + _VOTES + n_topics + j], i) * 840.0
                voted[i] |= np.uint8(1 << j)


_HELP, _HELP_MIN, _HELP_T, _REDEEM, _VOTES = range(5)  # where the keys lie after the activities' (see day_keys)


@kernel
def day_keys(seed, day, n_act, n_topics):
    """The day's draw keys of the resident rule (:func:`twin.rng.tick_key` of each stream at ``day``).

    Every resident's draw of a stream on a day shares its key, so it is worked
    out once a day instead of in each draw: the activities' first, then help,
    its minutes, its time and redeeming, then each topic slot's vote and vote
    time.  (Picking whom to help draws at several ticks a day, so it keeps
    whole draws.)
    """
    keys = np.empty(n_act + _VOTES + 2 * n_topics, np.uint64)
    for a in range(n_act):
        keys[a] = rng.tick_key(seed, S_ACT + 1000 * a, day)
    keys[n_act + _HELP] = rng.tick_key(seed, S_HELP, day)
    keys[n_act + _HELP_MIN] = rng.tick_key(seed, S_HELP_MIN, day)
    keys[n_act + _HELP_T] = rng.tick_key(seed, S_HELP_T, day)
    keys[n_act + _REDEEM] = rng.tick_key(seed, S_REDEEM, day)
    for j in range(n_topics):
        keys[n_act + _VOTES + j] = rng.tick_key(seed, S_VOTE + 1000 * j, day)
        keys[n_act + _VOTES + n_topics + j] = rng.tick_key(seed, S_VOTE_T + 1000 * j, day)
    return keys


@parallel_kernel
def residents_day(seed, day, flags, engagement, fatigue, peer, last_active,
                  act_order, act_logit, act_logit_unaware, aware, peer_effect, engagement_effect, fatigue_effect,
                  fatigue_gain, fatigue_decay,
                  balances, costs, redeem_prob,
                  help_prob, help_minutes_mean, indptr, indices,
                  open_topics, vote_logit, vote_app_effect, vote_engagement_effect, voted,
                  out_act, out_redeem, out_help, out_help_minutes, out_help_t, out_vote, out_vote_t):
    """One day of every resident's decisions: :func:`resident_day` for each."""
    effects = effects_of(peer_effect, engagement_effect, fatigue_effect, fatigue_gain, fatigue_decay, redeem_prob,
                         help_prob, help_minutes_mean, vote_logit, vote_app_effect, vote_engagement_effect)
    keys = day_keys(seed, day, out_act.shape[1], open_topics.shape[0])
    for i in prange(flags.shape[0]):
        resident_day(i, seed, day, keys, flags, engagement, fatigue, peer, last_active, act_order, act_logit,
                     act_logit_unaware, aware, effects, balances, costs, indptr, indices, open_topics, voted,
                     out_act, out_redeem, out_help, out_help_minutes, out_help_t, out_vote, out_vote_t)


class ResidentRule:
    """The resident rule of one community: its per-activity constants, state and output slots.

    The engine calls :meth:`decide` once a day; so does the benchmark, so both
    measure and run the very same call.
    """

    def __init__(self, community, residents_cfg, points_policy, tick_minutes: int, seed: int, max_topics: int):
        self.c, self.r, self.seed = community, residents_cfg, int(seed)
        self.tick_minutes = tick_minutes
        rules = points_policy.rules()
        sched = np.array(points_policy.schedule(), np.float64).reshape(-1, 4)
        self.per_week, self.hour, self.minutes, appeal = sched.T
        self.per_hour_unit = np.array([a.unit == "hour" for a in rules.activities])
        points = np.array([a.points for a in rules.activities], np.float64)
        self.logit = residents_cfg.activity_base + residents_cfg.reward_effect * points / 10.0 + appeal
        self.logit_unaware = residents_cfg.activity_base + appeal  # the reward not known
        self.aware = initial_awareness(self.seed, community.flags, residents_cfg.awareness_initial)
        self.spreads = residents_cfg.awareness_initial < 1.0 and (
            residents_cfg.awareness_base_per_day > 0.0 or residents_cfg.awareness_spread > 0.0)
        self.costs = np.array([i.cost for i in rules.catalog], np.int64)
        n, n_act = community.n_residents, len(points)
        self.fatigue = np.zeros(n, np.float32)
        self.peer = np.zeros(n, np.float32)
        self.last_active = np.full(n, NEVER, np.int16)
        self.act = np.empty((n, n_act), np.bool_)
        self.redeem = np.empty(n, np.int8)
        self.help, self.help_minutes, self.help_t = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n)
        self.vote = np.empty((n, max_topics), np.bool_)
        self.vote_t = np.empty((n, max_topics))
        self._orders = None  # order_of_day by weekday

    def offered(self, day: int) -> np.ndarray:
        """Activities offered today: one offered k times a week runs on the first k days of each week."""
        return (day % 7 < np.round(self.per_week)) | (self.per_week >= 7)

    def order_of_day(self, day: int) -> np.ndarray:
        """Today's offered activities in the order of their ticks (then by index).

        The offer repeats weekly, so the seven orders are worked out once, on first use.
        """
        if self._orders is None:
            self._orders = tuple(self._order_on(weekday) for weekday in range(7))
        return self._orders[day % 7]

    def _order_on(self, day: int) -> np.ndarray:
        offered = np.flatnonzero(self.offered(day))
        tick = np.floor(self.hour[offered] * 60.0 / self.tick_minutes)
        return offered[np.lexsort((offered, tick))].astype(np.int64)

    def decide(self, day: int, balances: np.ndarray, open_topics: np.ndarray, voted: np.ndarray) -> None:
        """One day of decisions into ``act``, ``redeem``, ``help*`` and ``vote*``."""
        c, r = self.c, self.r
        if self.spreads and day > 0:
            learnt = np.empty_like(self.aware)
            awareness_day(self.seed, day, c.flags, self.aware, c.indptr, c.indices, r.awareness_base_per_day,
                          r.awareness_spread, learnt)
            self.aware = learnt
        peer_share(c.indptr, c.indices, self.last_active, day, self.peer)
        residents_day(
            self.seed, day, c.flags, c.engagement, self.fatigue, self.peer, self.last_active,
            self.order_of_day(day), self.logit, self.logit_unaware, self.aware, r.peer_effect, r.engagement_effect,
            r.fatigue_effect, r.fatigue_gain, r.fatigue_decay, balances, self.costs, r.redeem_prob,
            r.timebank_help_prob, r.timebank_minutes_mean, c.indptr, c.indices, open_topics, r.vote_base,
            r.vote_app_effect, r.vote_engagement_effect, voted, self.act, self.redeem, self.help, self.help_minutes,
            self.help_t, self.vote[:, : len(open_topics)], self.vote_t[:, : len(open_topics)])


# the two below are sequential: their work per day is smaller than a parallel launch
@kernel
def ratings(seed, key, wait_min, resolution_min, out):
    """A resident's 1-5 rating of a completed repair: five stars, less for waiting and for slow fixes."""
    for k in range(wait_min.shape[0]):
        r = 5.0 - wait_min[k] / 480.0 - resolution_min[k] / 2880.0 + 0.8 * (rng.uniform(seed, S_RATING, key, k) - 0.5)
        out[k] = max(1, min(5, int(round(r))))


@kernel
def update_satisfaction(satisfaction, baseline, memory, experience):
    """Satisfaction decays toward the baseline and moves with the day's experiences (0..100)."""
    for i in range(satisfaction.shape[0]):
        s = memory * satisfaction[i] + (1.0 - memory) * baseline + experience[i]
        satisfaction[i] = min(100.0, max(0.0, s))
        experience[i] = 0.0
