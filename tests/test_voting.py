"""Voting: every rule and refusal, tallies against published worked examples and
naive twins, and the batch properties (one counted ballot per voter, batch of N
== N batches of one, replay == live)."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.services import events as ev
from twin.services.events import EventKind, EventLog
from twin.services.reasons import (EXCEPTIONS, DuplicateBallot, InvalidBallot, InvalidTransition, NotEligible,
                                   UnknownKind,
                                   NoticePeriodNotOver, Reason, TopicNotOpen, UnknownTopic)
from twin.services.voting import (KINDS, MAX_OPTIONS, MAX_RANKS, METHODS, TallyResult, VotingDesk,
                                  VotingPolicy, pack_prefs, tally, unpack_prefs)

R = Reason
NOTICE = 10  # minutes of notice in the desks below, so a test can step past it

# Residents 0..5 are adults in households 0,0,1,1,2,2; 6 is a child and 7 an adult of household 3.
VOTERS = np.arange(8)
HOUSEHOLDS = np.array([0, 0, 1, 1, 2, 2, 3, 3])
ADULTS = np.array([1, 1, 1, 1, 1, 1, 0, 1], bool)


def make_desk(log=None, **policy) -> VotingDesk:
    desk = VotingDesk(log, VotingPolicy(notice_minutes=NOTICE, **policy))
    desk.register_voters(VOTERS, HOUSEHOLDS, ADULTS)
    return desk


def open_topic(desk, method="plurality", n_options=3, budget=0, costs=()) -> int:
    """A topic taken through proposal, screening and notice to open, at t = 0 .. NOTICE."""
    topic = desk.propose(0, method, n_options, 0.0, budget)
    for cost in costs:
        desk.add_project(topic, cost)
    desk.screen(topic, True, 0.0)
    desk.notice(topic, 0.0)
    desk.open(topic, float(NOTICE))
    return topic


def resolve(desk, topic) -> TallyResult:
    desk.close(topic, 100.0)
    return desk.resolve(topic, 101.0)


def padded(ballots, width=None) -> np.ndarray:
    width = max([len(b) for b in ballots] + [1]) if width is None else width
    out = np.full((len(ballots), width), -1, np.int64)
    for i, b in enumerate(ballots):
        out[i, :len(b)] = b
    return out


def repeat(*groups):
    """Ballots from a preference schedule: (count, ranking) pairs."""
    return [list(ranking) for count, ranking in groups for _ in range(count)]


# ---------------------------------------------------------------- naive twins
def naive_counts(method, ballots, n_options):
    counts = [0] * n_options
    for b in ballots:
        if method == "plurality":
            counts[b[0]] += 1
        elif method == "borda":
            for rank, o in enumerate(b):
                counts[o] += n_options - 1 - rank
        else:
            for o in b:
                counts[o] += 1
    return counts


def naive_irv(ballots, n_options, priority):
    """Instant runoff eliminating one option a round; ties go against the later option in ``priority``."""
    active = set(range(n_options))
    while len(active) > 1:
        counts = {o: 0 for o in active}
        for b in ballots:
            first = [o for o in b if o in active]
            if first:
                counts[first[0]] += 1
        top = max(counts, key=lambda o: (counts[o], -priority.index(o)))
        if 2 * counts[top] > sum(counts.values()):
            return top
        lowest = min(counts.values())
        active.remove(max((o for o in active if counts[o] == lowest), key=priority.index))
    return active.pop()


def naive_budget(ballots, n_options, costs, budget, priority, threshold="none"):
    """Down the projects by approvals (ties in ``priority`` order), funding each one that still fits."""
    votes = naive_counts("approval", ballots, n_options)
    need = {"none": lambda v: v > 0, "simple": lambda v: 2 * v > len(ballots),
            "two_thirds": lambda v: 3 * v >= 2 * len(ballots)}[threshold]
    left, funded = budget, []
    for p in sorted(range(n_options), key=lambda p: (-votes[p], priority.index(p))):
        if votes[p] > 0 and need(votes[p]) and costs[p] <= left:
            funded.append(p)
            left -= costs[p]
    return funded


ranked_ballots = st.integers(2, 4).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.permutations(range(n)).flatmap(
        lambda p: st.integers(1, n).map(lambda k: list(p[:k]))), min_size=1, max_size=9)))


# ---------------------------------------------------------------- ballots
@settings(max_examples=60, deadline=None)
@given(st.permutations(range(MAX_OPTIONS)), st.integers(1, MAX_RANKS), st.integers(0, 4))
def test_pack_then_unpack_gives_the_ballot_back(options, k, extra_padding):
    ballot = list(options[:k])
    code = pack_prefs(ballot + [-1] * extra_padding)
    assert 0 <= code < 2**60
    assert unpack_prefs(code).tolist() == ballot + [-1] * (MAX_RANKS - k)
    assert pack_prefs(padded([ballot, ballot[:1]])).tolist() == [code, pack_prefs(ballot[:1])]


@pytest.mark.parametrize("ballot, n_options", [
    ([], 3), ([-1, -1], 3),             # empty
    ([1, 1], 3),                        # an option twice
    ([3], 3), ([-2], 3), ([31], 31),    # options out of range
    ([0, -1, 1], 3),                    # an option after the padding
    (list(range(13)), 31),              # more ranks than a code holds
])
def test_pack_refuses_ballots_that_are_not_valid(ballot, n_options):
    with pytest.raises(InvalidBallot):
        pack_prefs(ballot, n_options)


def test_the_packed_ballot_is_published_at_close_without_its_voter():
    log = EventLog()
    desk = make_desk(log)
    topic = open_topic(desk, "borda", 31)
    ballot = [30, 0, 12, 7, 1, 2, 3, 4, 5, 6, 8, 9]
    desk.cast(topic, 0, ballot)
    cast = log.events[log.events["kind"] == EventKind.BallotCast][0]
    assert (cast["actor"], cast["subject"], cast["code"]) == (0, topic, 0)  # that 0 voted, not what
    assert pack_prefs([ballot], 31)[0] not in cast.tolist()
    desk.close(topic, 100.0)
    counted = log.events[log.events["kind"] == EventKind.BallotCounted]
    assert len(counted) == 1 and (counted[0]["subject"], counted[0]["actor"]) == (topic, 0)
    assert unpack_prefs(counted["code"])[0].tolist() == ballot


def _election(assignment):
    """Voters 0-3 cast the ballots of ``assignment`` (voter -> ballot) in voter order; the log."""
    log = EventLog()
    desk = make_desk(log)
    topic = open_topic(desk, "irv", 3)
    for i, voter in enumerate((0, 2, 3, 4)):
        desk.cast(topic, voter, assignment[voter], t=float(NOTICE + i))
    desk.close(topic, 100.0)
    desk.resolve(topic, 101.0)
    return log, desk


def test_voters_who_swap_their_ballots_leave_the_same_log():
    """The log depends on who voted and on the ballots, never on who cast which one."""
    ballots = [[2, 1, 0], [0], [1, 2], [0, 2, 1]]
    first, desk = _election(dict(zip((0, 2, 3, 4), ballots)))
    second, _ = _election(dict(zip((0, 2, 3, 4), ballots[::-1])))
    assert np.array_equal(first.events, second.events)
    assert (desk.snapshot()["ballot_voter"] == -1).all()  # the desk forgot too
    assert not any(f.startswith("ballot/") and texts for f, texts in first.details.items())  # seals erased
    # while a swap of WHO voted does show (the check can fail)
    third, _ = _election(dict(zip((0, 2, 3, 4), ballots)) | {4: [1]})
    assert not np.array_equal(first.events, third.events)


def test_the_last_ballot_counts_through_the_seal_and_a_replay(same_state):
    log = EventLog()
    desk = make_desk(log, second_ballot="last_counts")
    topic = open_topic(desk, "plurality", 3)
    desk.cast(topic, 0, [1])
    desk.cast(topic, 0, [2])  # changed their mind
    desk.cast(topic, 2, [2])
    relog = EventLog()
    relog.restore(ev.empty(), log.detail_rows())  # open: the sealed ballots come with the log
    open_again = VotingDesk(relog, desk.policy)
    open_again.replay(log.events)
    same_state(open_again.snapshot(), desk.snapshot())
    desk.close(topic, 100.0)
    result = desk.resolve(topic, 101.0)
    assert (result.winner, result.counts.tolist()) == (2, [0, 0, 2])
    closed_again = VotingDesk(EventLog(), desk.policy)  # closed: the log alone rebuilds the count
    closed_again.replay(log.events)
    same_state(closed_again.snapshot(), desk.snapshot())
    assert closed_again.result(topic).counts.tolist() == [0, 0, 2]


# ---------------------------------------------------------------- policy
@pytest.mark.parametrize("field, value", [
    ("eligibility", "everyone"), ("second_ballot", "first_counts"), ("threshold", "three_quarters"),
    ("tie_break", "coin"), ("notice_minutes", -1), ("notice_minutes", 1.5), ("quorum", 1.5),
    ("quorum", -0.1), ("seed", -1),
])
def test_policy_names_the_field_it_refuses(field, value):
    with pytest.raises(ValueError, match=field):
        VotingPolicy(**{field: value})


def test_policy_defaults_and_whole_float_minutes():
    p = VotingPolicy()
    assert (p.eligibility, p.second_ballot, p.notice_minutes, p.quorum, p.threshold, p.tie_break) == \
        ("adult", "refuse", 7 * 1440, 0.0, "none", None)
    assert VotingPolicy(notice_minutes=3 * 1440.0).notice_minutes == 4320


# ---------------------------------------------------------------- lifecycle
def test_a_topic_goes_from_proposed_to_resolved_with_one_event_a_step():
    log = EventLog()
    desk = make_desk(log)
    topic = desk.propose(7, "plurality", 3, t=1.0)
    assert desk.state(topic) == "proposed"
    desk.screen(topic, True, 2.0, screener=5)
    assert desk.state(topic) == "screened"
    desk.notice(topic, 3.0)
    assert desk.state(topic) == "noticed"
    desk.open(topic, 3.0 + NOTICE)
    assert desk.state(topic) == "open"
    desk.cast(topic, 0, [2, 1], 20.0, channel=1)
    desk.close(topic, 30.0)
    assert desk.state(topic) == "closed"
    result = desk.resolve(topic, 31.0)
    assert desk.state(topic) == "resolved" and desk.result(topic) is result
    K = EventKind
    registered = log.events["kind"] == K.VoterRegistered
    assert registered.sum() == len(desk._household) and registered[: registered.sum()].all()  # electorate first
    e = log.events[~registered]
    assert e["kind"].tolist() == [K.TopicProposed, K.TopicScreened, K.TopicNoticed, K.TopicOpened,
                                  K.BallotCast, K.TopicClosed, K.BallotCounted, K.TopicResolved]
    assert set(e["kind"].tolist()) <= KINDS
    assert e["t"].tolist() == [1.0, 2.0, 3.0, 3.0 + NOTICE, 20.0, 30.0, 30.0, 31.0]
    assert (e[0]["actor"], e[0]["code"], e[0]["amount"]) == (7, METHODS.index("plurality"), 3)
    assert (e[1]["actor"], e[1]["extra"]) == (5, 1)
    assert e[2]["amount"] == NOTICE
    assert (e[4]["channel"], e[4]["actor"]) == (1, 0)
    assert (e[5]["amount"], e[5]["extra"]) == (7, 1)  # eligible adults, ballots counted
    assert unpack_prefs(e[6:7]["code"])[0, :2].tolist() == [2, 1] and e[6]["actor"] == 0  # the ballot, no voter
    assert (e[7]["code"], e[7]["extra"]) == (2, 1)    # winner, carried
    assert (e["subject"] == topic).all()


def test_screening_can_reject_and_a_rejected_topic_goes_no_further():
    desk = make_desk()
    topic = desk.propose(0, "approval", 3)
    desk.screen(topic, passed=False)
    assert desk.state(topic) == "rejected"
    assert desk.notice_batch([topic], [1.0]).reasons.tolist() == [R.InvalidTransition]


@pytest.mark.parametrize("state, step", [
    ("proposed", "notice"), ("proposed", "open"), ("proposed", "close"), ("proposed", "resolve"),
    ("screened", "screen"), ("screened", "open"), ("noticed", "notice"), ("noticed", "close"),
    ("open", "open"), ("open", "resolve"), ("closed", "close"), ("closed", "open"),
    ("resolved", "resolve"), ("resolved", "screen"),
])
def test_steps_out_of_order_are_invalid_transitions(state, step):
    desk = make_desk()
    topic = desk.propose(0, "plurality", 3)
    path = ["proposed", "screened", "noticed", "open", "closed", "resolved"]
    moves = {"screened": lambda: desk.screen(topic, True, 0.0), "noticed": lambda: desk.notice(topic, 0.0),
             "open": lambda: desk.open(topic, NOTICE), "closed": lambda: desk.close(topic, 50.0),
             "resolved": lambda: desk.resolve(topic, 60.0)}
    for s in path[1:path.index(state) + 1]:
        moves[s]()
    calls = {"screen": desk.screen_batch, "notice": desk.notice_batch, "open": desk.open_batch,
             "close": desk.close_batch, "resolve": desk.resolve_batch}
    args = ([topic], [True], [70.0]) if step == "screen" else ([topic], [70.0])
    assert calls[step](*args).reasons.tolist() == [R.InvalidTransition]
    assert desk.state(topic) == state


def test_every_step_refuses_an_unknown_topic():
    desk = make_desk()
    desk.propose(0, "plurality", 3)
    for bad in (-1, 1, 99):
        outcomes = [desk.add_projects([bad], [10]), desk.screen_batch([bad], [True], [0.0]),
                    desk.notice_batch([bad], [0.0]), desk.open_batch([bad], [0.0]),
                    desk.cast_batch([bad], [0], [[0]], [0.0]), desk.close_batch([bad], [0.0]),
                    desk.resolve_batch([bad], [0.0])]
        assert [o.reasons.tolist() for o in outcomes] == [[R.UnknownTopic]] * 7
        assert all(len(o.events) == 0 for o in outcomes)
    with pytest.raises(UnknownTopic):
        desk.result(1)


def test_voting_opens_only_when_the_notice_period_is_over():
    desk = make_desk()
    topic = desk.propose(0, "plurality", 2)
    desk.screen(topic)
    desk.notice(topic, 100.0, minutes=NOTICE + 5)
    with pytest.raises(NoticePeriodNotOver):
        desk.open(topic, 100.0 + NOTICE + 4.5)
    desk.open(topic, 100.0 + NOTICE + 5)
    assert desk.state(topic) == "open"


def test_notice_shorter_than_the_policy_is_refused():
    desk = make_desk()
    topic = desk.propose(0, "plurality", 2)
    desk.screen(topic)
    assert desk.notice_batch([topic], [0.0], [NOTICE - 1]).reasons.tolist() == [R.InvalidAmount]
    assert desk.notice_batch([topic], [0.0]).events["amount"].tolist() == [NOTICE]


@pytest.mark.parametrize("method, n_options, budget", [
    (5, 3, 0), (-1, 3, 0),                       # no such method
    (METHODS.index("plurality"), 1, 0),          # a choice needs two options
    (METHODS.index("borda"), MAX_OPTIONS + 1, 0),
    (METHODS.index("approval"), 3, 100),         # a budget on a choice
    (METHODS.index("budget"), 3, 0),             # a budget vote without money
    (METHODS.index("budget"), 0, 100),
])
def test_proposals_out_of_range_are_invalid_amounts(method, n_options, budget):
    desk = make_desk()
    out = desk.propose_batch([0, 0], [METHODS.index("irv"), method], [4, n_options], [0.0, 1.0], [0, budget])
    assert out.reasons.tolist() == [0, R.InvalidAmount]
    assert out.ids.tolist() == [0, -1]
    assert desk.n_topics == 1 and len(out.events) == 1


def test_proposals_get_consecutive_ids_and_the_object_layer_names_methods():
    desk = make_desk()
    assert [desk.propose(0, m, 2 if m != "budget" else 1, budget=5 if m == "budget" else 0)
            for m in METHODS] == [0, 1, 2, 3, 4]
    with pytest.raises(UnknownKind, match="plurality, approval, borda, irv, budget"):
        desk.propose(0, "condorcet", 3)


def test_budget_projects_are_costed_while_proposed_and_all_before_screening():
    desk = make_desk()
    topic = desk.propose(0, "budget", 3, budget=100)
    out = desk.add_projects(topic, [40, 0, 30])
    assert out.reasons.tolist() == [0, R.InvalidAmount, 0]
    assert out.ids.tolist() == [0, -1, 1]
    assert out.events["code"].tolist() == [0, 1] and out.events["amount"].tolist() == [40, 30]
    with pytest.raises(InvalidTransition):
        desk.screen(topic)  # the third project has no cost yet
    assert desk.add_projects([topic, topic], [20, 10]).reasons.tolist() == [0, R.InvalidAmount]
    desk.screen(topic)
    assert desk.add_projects([topic], [5]).reasons.tolist() == [R.InvalidTransition]
    choice = desk.propose(0, "approval", 3)
    assert desk.add_projects([choice], [5]).reasons.tolist() == [R.InvalidTransition]


# ---------------------------------------------------------------- ballots on the desk
def test_ballots_need_an_open_topic():
    desk = make_desk()
    topic = desk.propose(0, "plurality", 3)
    with pytest.raises(TopicNotOpen):
        desk.cast(topic, 0, [1])
    desk.screen(topic)
    desk.notice(topic, 0.0)
    desk.open(topic, NOTICE)
    desk.close(topic, 50.0)
    with pytest.raises(TopicNotOpen):
        desk.cast(topic, 1, [1])


@pytest.mark.parametrize("voter", [6, 8, 1000, -1])
def test_children_and_unregistered_residents_are_not_eligible(voter):
    desk = make_desk()
    topic = open_topic(desk)
    with pytest.raises(NotEligible):
        desk.cast(topic, voter, [0])


def test_registering_again_updates_the_electorate():
    desk = make_desk()
    topic = open_topic(desk)
    desk.register_voters([6], [3], [True])  # the child came of age
    desk.cast(topic, 6, [0])
    with pytest.raises(ValueError, match="repeat"):
        desk.register_voters([1, 1], [0, 0], [True, True])


@pytest.mark.parametrize("ballot", [[3], [0, 0], [], [-1, 1], [0, -5]])
def test_malformed_ballots_are_invalid(ballot):
    desk = make_desk()
    topic = open_topic(desk, "borda", 3)
    with pytest.raises(InvalidBallot):
        desk.cast(topic, 0, ballot)
    desk.cast(topic, 0, [2, 0])  # the refusal left the voter free to vote


def test_a_budget_ballot_must_fit_the_budget():
    desk = make_desk()
    topic = open_topic(desk, "budget", 3, budget=100, costs=[60, 50, 40])
    assert desk.cast_batch(topic, [0, 1, 2], padded([[0, 1], [0, 2], [1, 2]]), 20.0).reasons.tolist() == \
        [R.InvalidBallot, 0, 0]


def test_second_ballot_refused_under_refuse():
    desk = make_desk(second_ballot="refuse")
    topic = open_topic(desk)
    out = desk.cast_batch(topic, [0, 1, 0], padded([[0], [1], [2]]), 20.0)
    assert out.reasons.tolist() == [0, 0, R.DuplicateBallot]
    with pytest.raises(DuplicateBallot):
        desk.cast(topic, 1, [2])
    assert resolve(desk, topic).counts.tolist() == [1, 1, 0]


def test_last_ballot_counts_under_last_counts():
    desk = make_desk(second_ballot="last_counts")
    topic = open_topic(desk)
    out = desk.cast_batch(topic, [0, 1, 0, 0], padded([[0], [1], [2], [1]]), 20.0)
    assert out.accepted.all() and len(out.events) == 4
    result = resolve(desk, topic)
    assert result.counts.tolist() == [0, 2, 0] and result.ballots == 2


def test_one_ballot_per_household_under_household_eligibility():
    desk = make_desk(eligibility="household")
    topic = open_topic(desk)
    # 0 and 1 share household 0; 7's household 3 also holds the child 6.
    out = desk.cast_batch(topic, [0, 1, 2, 7], padded([[0], [1], [2], [2]]), 20.0)
    assert out.reasons.tolist() == [0, R.DuplicateBallot, 0, 0]
    result = resolve(desk, topic)
    assert result.eligible == 4 and result.ballots == 3 and result.turnout == pytest.approx(3 / 4)

    desk = make_desk(eligibility="household", second_ballot="last_counts")
    topic = open_topic(desk)
    assert desk.cast_batch(topic, [0, 1], padded([[0], [1]]), 20.0).accepted.all()
    assert resolve(desk, topic).counts.tolist() == [0, 1, 0]  # household 0's ballot is 1's


def test_desk_ballots_are_the_counted_ones():
    desk = make_desk(second_ballot="last_counts")
    topic = open_topic(desk, "irv", 4)
    desk.cast_batch(topic, [0, 1, 0], [[3, 1], [2], [0, 1, 2]], 20.0)
    assert desk.ballots(topic)[:, :3].tolist() == [[2, -1, -1], [0, 1, 2]]


def test_thousands_of_ballots_keep_the_last_one_per_household():
    """Enough ballots to regrow the ballot index several times, checked against a dict."""
    n = 600
    desk = VotingDesk(policy=VotingPolicy(notice_minutes=NOTICE, eligibility="household",
                                          second_ballot="last_counts"))
    desk.register_voters(np.arange(n), np.arange(n) // 3, np.ones(n, bool))
    topics = [open_topic(desk, "plurality", 5) for _ in range(3)]
    draw = np.random.default_rng(1)
    topic, voter, choice = draw.integers(0, 3, 4000), draw.integers(0, n, 4000), draw.integers(0, 5, 4000)
    for part in np.array_split(np.arange(4000), 7):
        assert desk.cast_batch(topic[part], voter[part], choice[part, None], 20.0).accepted.all()
    last = {}
    for tp, v, o in zip(topic.tolist(), voter.tolist(), choice.tolist()):
        last[tp, v // 3] = o
    for tp in topics:
        expected = np.bincount([o for (t, _), o in last.items() if t == tp], minlength=5)
        assert resolve(desk, tp).counts.tolist() == expected.tolist()


# ---------------------------------------------------------------- decision
def decided(method, ballots, n_options=3, **policy):
    desk = make_desk(**policy)
    topic = open_topic(desk, method, n_options)
    voters = np.arange(len(ballots))
    voters[voters >= 6] += 1  # skip the child
    desk.cast_batch(topic, voters, padded(ballots), 20.0)
    return resolve(desk, topic)


def test_turnout_and_quorum():
    result = decided("plurality", [[0], [0], [1]], quorum=0.5)
    assert result.eligible == 7 and result.turnout == pytest.approx(3 / 7)
    assert not result.quorum_met and not result.carried and result.winner == 0
    result = decided("plurality", [[0], [0], [1]], quorum=3 / 7)
    assert result.quorum_met and result.carried


@pytest.mark.parametrize("ballots, threshold, carried", [
    ([[0], [0], [1], [2]], "simple", False),             # half is not more than half
    ([[0], [0], [0], [1]], "simple", True),
    ([[0], [0], [1]], "two_thirds", True),               # exactly two thirds
    ([[0], [0], [0], [1], [2]], "two_thirds", False),
    ([[0], [1], [2], [2]], "none", True),
])
def test_threshold(ballots, threshold, carried):
    assert decided("plurality", ballots, threshold=threshold).carried is carried


def test_borda_threshold_uses_the_share_of_the_most_points():
    # 3 options, 3 ballots: the most points are 3 × 2 = 6; option 0 has 2 + 2 + 1 = 5 ≥ 2/3 of 6.
    result = decided("borda", [[0, 1, 2], [0, 2, 1], [1, 0, 2]], threshold="two_thirds")
    assert result.counts.tolist() == [5, 3, 1] and result.support == pytest.approx(5 / 6) and result.carried


def test_an_unbroken_tie_is_not_carried_and_the_event_says_no_winner():
    log = EventLog()
    desk = make_desk(log)
    topic = open_topic(desk)
    desk.cast_batch(topic, [0, 1], padded([[0], [1]]), 20.0)
    result = resolve(desk, topic)
    assert result.tie and result.winners == [0, 1] and result.winner == -1 and not result.carried
    resolved = log.events[log.events["kind"] == EventKind.TopicResolved][0]
    assert (resolved["code"], resolved["extra"]) == (-1, 0)


def test_no_ballots_no_winner():
    result = decided("irv", [], 3)
    assert (result.winners, result.winner, result.tie, result.carried, result.turnout) == ([], -1, False, False, 0)


def test_result_before_resolution_is_refused():
    desk = make_desk()
    topic = open_topic(desk)
    with pytest.raises(InvalidTransition, match="not resolved"):
        desk.result(topic)


# ---------------------------------------------------------------- worked examples
TENNESSEE = repeat((42, [0, 1, 2, 3]), (26, [1, 2, 3, 0]), (15, [2, 3, 1, 0]), (17, [3, 2, 1, 0]))


def test_tennessee_capital_plurality_borda_and_instant_runoff():
    """Wikipedia's Tennessee capital election ("Instant-runoff voting", "Borda count",
    "Condorcet method"): 100 voters choose among Memphis (0), Nashville (1),
    Chattanooga (2) and Knoxville (3); 42% rank M > N > C > K, 26% N > C > K > M,
    15% C > K > N > M, 17% K > C > N > M.

    Plurality elects Memphis (42).  Borda with 3/2/1/0 points gives Memphis 126,
    Nashville 194, Chattanooga 173, Knoxville 107: Nashville (also the Condorcet
    winner).  Instant runoff eliminates Chattanooga (15 → Knoxville 32), then
    Nashville (26 → Knoxville 58): Knoxville.
    """
    plurality = tally("plurality", TENNESSEE, 4)
    assert plurality.counts.tolist() == [42, 26, 15, 17] and plurality.winners == [0] and not plurality.tie
    borda = tally("borda", TENNESSEE, 4)
    assert borda.counts.tolist() == [126, 194, 173, 107] and borda.winner == 1
    irv = tally("irv", TENNESSEE, 4)
    assert [r.tolist() for r in irv.rounds] == [[42, 26, 15, 17], [42, 26, 0, 32], [42, 0, 0, 58]]
    assert irv.eliminated == [[2], [1]] and irv.winner == 3 and irv.counts.tolist() == [42, 0, 0, 58]
    # Condorcet: Nashville beats every other city head to head (the naive pairwise count).
    beats = [sum(b.index(1) < b.index(o) for b in TENNESSEE) > 50 for o in (0, 2, 3)]
    assert all(beats)


def test_math_appreciation_society_three_methods_three_winners():
    """Tannenbaum, *Excursions in Modern Mathematics*, ch. 1 (the Math Appreciation
    Society election): 37 voters rank Alisha (0), Boris (1), Carmen (2), Dave (3):
    14 A > B > C > D, 10 C > B > D > A, 8 D > C > B > A, 4 B > D > C > A,
    1 C > D > B > A.

    Plurality elects Alisha (14 first places).  The book's Borda count (4/3/2/1
    points) gives A 79, B 106, C 104, D 81, so Boris; our 3/2/1/0 points are each
    37 lower.  Plurality with elimination drops Boris (4 → Dave), then Carmen
    (11 → Dave): Dave wins 23 to 14.
    """
    mas = repeat((14, [0, 1, 2, 3]), (10, [2, 1, 3, 0]), (8, [3, 2, 1, 0]), (4, [1, 3, 2, 0]), (1, [2, 3, 1, 0]))
    plurality, borda, irv = (tally(m, mas, 4) for m in ("plurality", "borda", "irv"))
    assert plurality.counts.tolist() == [14, 4, 11, 8] and plurality.winner == 0
    assert (borda.counts + 37).tolist() == [79, 106, 104, 81] and borda.winner == 1
    assert [r.tolist() for r in irv.rounds] == [[14, 4, 11, 8], [14, 0, 11, 12], [14, 0, 0, 23]]
    assert irv.winner == 3
    assert len({plurality.winner, borda.winner, irv.winner}) == 3


def test_approval_worked_example():
    """Seven voters, three options.  Ballots {0} ×3, {1, 2} ×2, {2, 1}, {2}.
    First choices: 0 has 3, 1 has 2, 2 has 2, so plurality elects 0.
    Approvals: 0 has 3, 1 has 3 (the two {1, 2} and the {2, 1}), 2 has 4: approval elects 2,
    backed by 4 of 7 ballots: more than half, less than two thirds.
    """
    ballots = repeat((3, [0]), (2, [1, 2]), (1, [2, 1]), (1, [2]))
    assert tally("plurality", ballots, 3).winner == 0
    approval = tally("approval", ballots, 3, threshold="simple")
    assert approval.counts.tolist() == [3, 3, 4] and approval.winner == 2 and approval.carried
    assert approval.support == pytest.approx(4 / 7)
    assert not tally("approval", ballots, 3, threshold="two_thirds").carried


BUDGET_COSTS = [60, 50, 30, 20, 40]
BUDGET_BALLOTS = [[0, 2], [0, 2], [0, 3], [0], [1], [1, 4], [1]]


def test_participatory_budget_worked_example():
    """Budget 100 for five projects costing 60, 50, 30, 20, 40.  Seven ballots
    {0, 2}, {0, 2}, {0, 3}, {0}, {1}, {1, 4}, {1} give approvals 4, 3, 2, 1, 1.
    Down the list: project 0 (60) fits, 40 left; project 1 (50) does not fit,
    skipped; project 2 (30) fits, 10 left; projects 3 (20) and 4 (40) do not fit.
    Funded: 0 and 2, spending 90.  With a simple-majority threshold only project
    0 (4 of 7 approvals) may be funded.
    """
    result = tally("budget", BUDGET_BALLOTS, 5, BUDGET_COSTS, 100)
    assert result.counts.tolist() == [4, 3, 2, 1, 1]
    assert result.funded == [0, 2] and result.winners == [0, 2] and result.spent == 90
    assert not result.tie and result.carried and result.winner == -1
    assert tally("budget", BUDGET_BALLOTS, 5, BUDGET_COSTS, 100, threshold="simple").funded == [0]


def test_participatory_budget_on_the_desk():
    desk = make_desk()
    topic = open_topic(desk, "budget", 5, budget=100, costs=BUDGET_COSTS)
    out = desk.cast_batch(topic, [0, 1, 2, 3, 4, 5, 7], padded(BUDGET_BALLOTS), 20.0)
    assert out.accepted.all()
    result = resolve(desk, topic)
    assert result.funded == [0, 2] and result.spent == 90 and result.carried


# ---------------------------------------------------------------- ties
def test_plurality_tie_lists_every_tied_option():
    result = tally("plurality", [[0], [2], [1], [2], [0]], 3)
    assert result.tie and result.winners == [0, 2] and result.tied == [0, 2] and result.winner == -1


def test_lexical_tie_break_prefers_the_lower_option_and_still_reports_the_tie():
    result = tally("approval", [[2, 1], [1, 2]], 3, tie_break="lexical")
    assert result.tie and result.winners == [1, 2] and result.winner == 1 and result.tie_break == "lexical"
    assert result.carried


def test_seeded_tie_break_is_a_reproducible_draw():
    ballots = [[0], [1]]
    picks = [tally("plurality", ballots, 2, tie_break="seeded", seed=s).winner for s in range(20)]
    assert set(picks) == {0, 1}  # not a hidden lexical order
    assert picks == [tally("plurality", ballots, 2, tie_break="seeded", seed=s).winner for s in range(20)]
    desk = make_desk(tie_break="seeded", seed=3)
    topic = open_topic(desk)
    desk.cast_batch(topic, [0, 1], padded(ballots), 20.0)
    assert resolve(desk, topic).winner == tally("plurality", ballots, 3, tie_break="seeded", seed=3,
                                                lot=topic).winner


def test_instant_runoff_tie_for_last_place_that_decides_is_a_tie():
    """A Condorcet cycle, one ballot each: 0 > 1, 1 > 2, 2 > 0.  Whichever is
    eliminated first, its ballot elects the option it ranks second, so each option
    wins under some elimination order."""
    cycle = [[0, 1], [1, 2], [2, 0]]
    result = tally("irv", cycle, 3)
    assert result.tie and result.winners == [0, 1, 2] and result.winner == -1
    assert len(result.rounds) == 1  # the count stops where the tie splits it
    lexical = tally("irv", cycle, 3, tie_break="lexical")
    # Lexical order eliminates 2 first; its ballot goes to 0, which then has 2 of 3.
    assert lexical.winner == 0 and lexical.eliminated == [[2]] and lexical.tie


def test_instant_runoff_tie_for_last_place_that_cannot_decide_is_no_tie():
    """A 4, B 2 (B > C), C 2 (C > B), D 3 (D > A): B and C tie last with 4 votes
    between them, more than D's 3, so their order might matter; but eliminating
    either gives the other 4, D goes next and A wins 7 of 11 both ways."""
    ballots = repeat((4, [0]), (2, [1, 2]), (2, [2, 1]), (3, [3, 0]))
    result = tally("irv", ballots, 4)
    assert not result.tie and result.winners == [0] and result.winner == 0
    assert result.support == pytest.approx(7 / 11)


def test_instant_runoff_tie_search_is_bounded_and_says_when_it_stopped(monkeypatch):
    """16 options with one first choice each: every elimination order is a branch (2**16 sets).
    The search stops at ``IRV_MAX_TIE_STATES`` and reports every option still in as tied."""
    from twin.services import voting

    everyone = [[o] for o in range(16)]
    result = tally("irv", everyone, 16)
    assert result.tie and result.winners == list(range(16)) and not result.ties_exact
    assert result.winner == -1 and not result.carried
    assert tally("irv", everyone, 16, tie_break="lexical").winner == 0  # a policy's tie-break still decides
    # below the bound the search is exact (the cycle needs 4 sets), and a smaller bound cuts it short
    assert tally("irv", [[0, 1], [1, 2], [2, 0]], 3).ties_exact
    monkeypatch.setattr(voting, "IRV_MAX_TIE_STATES", 2)
    cut = tally("irv", [[0, 1], [1, 2], [2, 0], [3]], 4)
    assert not cut.ties_exact and cut.winners == [0, 1, 2, 3]


def test_instant_runoff_drops_options_that_cannot_matter_together():
    """Ballots {0}, {0}, {1}, {1}, {2 > 0} over five options: 3 and 4 have no votes
    and go together; then 2 (1 vote) goes and its ballot makes 0 the winner, 3 to 2."""
    result = tally("irv", [[0], [0], [1], [1], [2, 0]], 5)
    assert result.eliminated == [[3, 4], [2]] and result.winner == 0 and not result.tie
    assert result.rounds[-1].tolist() == [3, 2, 0, 0, 0]


def test_participatory_budget_tie_when_equal_votes_do_not_all_fit():
    """Budget 8; projects cost 5, 4, 3, 2; ballots {0, 2}, {0}, {1, 2}, {1, 3} give
    approvals 2, 2, 2, 1.  The three projects
    with 2 approvals each fit alone but not together (12 > 8), so which are funded
    depends on their order: a tie.  Lexically: 0 (5) then 1 (4, no longer fits)
    then 2 (3): funded 0 and 2, 8 spent, and project 3 no longer fits."""
    ballots, costs = [[0, 2], [0], [1, 2], [1, 3]], [5, 4, 3, 2]
    result = tally("budget", ballots, 4, costs, 8)
    assert result.tie and result.tied == [0, 1, 2] and result.funded == [] and not result.carried
    lexical = tally("budget", ballots, 4, costs, 8, tie_break="lexical")
    assert lexical.tie and lexical.funded == [0, 2] and lexical.spent == 8 and lexical.carried


# ---------------------------------------------------------------- the naive twins
@settings(max_examples=80, deadline=None)
@given(ranked_ballots, st.sampled_from(["plurality", "approval", "borda"]))
def test_counting_methods_match_the_naive_count(case, method):
    n, ballots = case
    result = tally(method, ballots, n, tie_break="lexical")
    counts = naive_counts(method, ballots, n)
    best = max(counts)
    assert result.counts.tolist() == counts
    assert result.winners == [o for o in range(n) if counts[o] == best]
    assert result.winner == counts.index(best)


@settings(max_examples=80, deadline=None)
@given(ranked_ballots)
def test_instant_runoff_matches_the_naive_count_under_every_tie_order(case):
    n, ballots = case
    possible = {naive_irv(ballots, n, list(order)) for order in itertools.permutations(range(n))}
    result = tally("irv", ballots, n)
    assert result.winners == sorted(possible) and result.tie == (len(possible) > 1)
    assert tally("irv", ballots, n, tie_break="lexical").winner == naive_irv(ballots, n, list(range(n)))
    assert tally("irv", ballots, n, tie_break="seeded", seed=7).winner in possible


@settings(max_examples=80, deadline=None)
@given(ranked_ballots, st.data())
def test_budget_matches_the_naive_greedy_under_every_tie_order(case, data):
    n, ballots = case
    costs = data.draw(st.lists(st.integers(1, 6), min_size=n, max_size=n))
    budget = data.draw(st.integers(1, 12))
    threshold = data.draw(st.sampled_from(["none", "simple", "two_thirds"]))
    outcomes = {tuple(sorted(naive_budget(ballots, n, costs, budget, list(order), threshold)))
                for order in itertools.permutations(range(n))}
    result = tally("budget", ballots, n, costs, budget, threshold=threshold)
    assert result.tie == (len(outcomes) > 1)
    if not result.tie:
        assert (tuple(sorted(result.funded)),) == tuple(outcomes)
    lexical = tally("budget", ballots, n, costs, budget, threshold=threshold, tie_break="lexical")
    assert lexical.funded == naive_budget(ballots, n, costs, budget, list(range(n)), threshold)


# ---------------------------------------------------------------- batch properties
topics = st.integers(-1, 4)
ballots = st.one_of(st.lists(st.integers(0, 3), min_size=1, max_size=4, unique=True),
                    st.lists(st.integers(-2, 4), max_size=4))
commands = st.one_of(
    st.tuples(st.just("propose"), st.integers(0, 7), st.integers(-1, 5), st.integers(1, 4),
              st.sampled_from([0, 100])),
    st.tuples(st.just("project"), topics, st.integers(0, 60)),
    st.tuples(st.just("screen"), topics, st.booleans()),
    st.tuples(st.just("notice"), topics),
    st.tuples(st.just("open"), topics),
    st.tuples(st.just("close"), topics),
    st.tuples(st.just("resolve"), topics),
    *[st.tuples(st.just("cast"), topics, st.integers(-1, 9), ballots)] * 4,
)
# Three topics open at the start (plurality, instant runoff, budget) so that ballots land.
PREAMBLE = [(0.0, c) for c in [
    ("propose", 0, METHODS.index("plurality"), 3, 0), ("propose", 1, METHODS.index("irv"), 4, 0),
    ("propose", 2, METHODS.index("budget"), 3, 100),
    ("project", 2, 40), ("project", 2, 50), ("project", 2, 60),
    ("screen", 0, True), ("screen", 1, True), ("screen", 2, True),
    ("notice", 0), ("notice", 1), ("notice", 2),
]] + [(float(NOTICE), ("open", tp)) for tp in range(3)]
scripts = st.lists(st.tuples(st.sampled_from([0.0, 0.0, 6.0]), commands), max_size=40).map(
    lambda steps: PREAMBLE + [(NOTICE + t, c) for t, (_, c) in
                              zip(itertools.accumulate(d for d, _ in steps), steps)])
policies = st.builds(VotingPolicy, eligibility=st.sampled_from(["adult", "household"]),
                     second_ballot=st.sampled_from(["refuse", "last_counts"]), notice_minutes=st.just(NOTICE),
                     quorum=st.sampled_from([0.0, 0.3]), threshold=st.sampled_from(["none", "simple"]),
                     tie_break=st.sampled_from([None, "lexical", "seeded"]), seed=st.integers(0, 3))


def run_batch(desk, group):
    """One batch call for consecutive commands of one kind; returns the Outcome."""
    op = group[0][1][0]
    t = np.array([time for time, _ in group])
    cols = list(zip(*[c[1:] for _, c in group]))
    if op == "propose":
        return desk.propose_batch(cols[0], cols[1], cols[2], t, cols[3])
    if op == "project":
        return desk.add_projects(cols[0], cols[1], t)
    if op == "screen":
        return desk.screen_batch(cols[0], cols[1], t)
    if op == "cast":
        return desk.cast_batch(cols[0], cols[1], padded(cols[2]), t, channel=np.array(cols[1]) % 3)
    step = {"notice": desk.notice_batch, "open": desk.open_batch, "close": desk.close_batch,
            "resolve": desk.resolve_batch}[op]
    return step(cols[0], t)


def run_script(desk, script, batched=True):
    """Run commands grouped into batches of one kind (or one by one); the reasons in command order."""
    groups = [list(g) for _, g in itertools.groupby(script, key=lambda s: s[1][0])] if batched \
        else [[s] for s in script]
    return np.concatenate([run_batch(desk, g).reasons for g in groups])


def desk_with(policy, log=None, register=True):
    desk = VotingDesk(log, policy)
    if register:
        desk.register_voters(VOTERS, HOUSEHOLDS, ADULTS)
    return desk


def assert_same_snapshot(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@settings(max_examples=60, deadline=None)
@given(policies, scripts)
def test_one_counted_ballot_per_voter_or_household_per_topic(policy, script):
    desk = desk_with(policy)
    reasons = run_script(desk, script)
    snap = desk.snapshot()
    counted = snap["ballot_counted"]
    topic, key = snap["ballot_topic"], snap["ballot_key"]
    pairs = list(zip(topic.tolist(), key.tolist()))
    counted_pairs = [p for p, c in zip(pairs, counted) if c]
    assert len(counted_pairs) == len(set(counted_pairs)) == len(set(pairs))
    voter = snap["ballot_voter"]
    known = voter >= 0  # from its close on, a topic's ballots are tied to no voter
    expected_key = np.where(policy.eligibility == "household", HOUSEHOLDS[voter[known]], voter[known])
    assert np.array_equal(key[known], expected_key)
    closed = np.isin(topic, np.flatnonzero(np.isin(snap["topic_state"], [4, 5])))
    assert (known == ~closed).all()
    if policy.second_ballot == "refuse":
        assert counted.all()
    else:
        assert R.DuplicateBallot not in reasons.tolist()
        last = {p: i for i, p in enumerate(pairs)}  # the last accepted ballot of each pair counts
        assert np.flatnonzero(counted).tolist() == sorted(last.values())
    assert np.bincount(topic[counted], minlength=snap["n_topics"]).tolist() == snap["topic_n_ballots"].tolist()


@settings(max_examples=60, deadline=None)
@given(policies, scripts)
def test_a_batch_of_n_equals_n_batches_of_one(policy, script):
    batched, single = desk_with(policy), desk_with(policy)
    assert np.array_equal(run_script(batched, script), run_script(single, script, batched=False))
    assert_same_snapshot(batched.snapshot(), single.snapshot())


@settings(max_examples=60, deadline=None)
@given(policies, scripts)
def test_replaying_the_log_rebuilds_the_live_desk(policy, script):
    log, relog = EventLog(), EventLog()
    live = desk_with(policy, log)
    run_script(live, script)
    noise = ev.make(EventKind.Transferred, 0.0, actor=1, target=2, amount=3)  # another service's event
    events = np.concatenate([noise, log.events, noise])
    relog.restore(ev.empty(), log.detail_rows())  # the ballots of topics still open, kept sealed beside the log
    replayed = desk_with(policy, relog, register=False)  # the electorate comes from the log
    replayed.replay(events)
    assert_same_snapshot(live.snapshot(), replayed.snapshot())
    assert np.array_equal(relog.events, log.events)
    for topic in np.flatnonzero(live.snapshot()["topic_state"] == 5):
        a, b = live.result(int(topic)), replayed.result(int(topic))
        assert (a.winners, a.winner, a.tie, a.funded, a.carried) == (b.winners, b.winner, b.tie, b.funded, b.carried)


def test_replay_refuses_a_log_that_does_not_fit_the_desk():
    log = EventLog()
    desk = make_desk(log)
    topic = open_topic(desk)
    desk.cast(topic, 0, [1])
    stranger = VotingDesk(policy=VotingPolicy(notice_minutes=2 * NOTICE))  # a longer notice period
    with pytest.raises(ValueError, match="TopicNoticed"):  # its notice is shorter than this policy allows
        stranger.replay(log.events)


# ---------------------------------------------------------------- inputs at the edge
@pytest.mark.parametrize("call, reason", [
    (lambda d, tp: d.cast(tp, 0, [0], t=float("nan")), "InvalidTime"),
    (lambda d, tp: d.cast(tp, 0.5, [0]), "NotAnInteger"),
    (lambda d, tp: d.cast(tp, 0, ["1"]), "InvalidBallot"),
    (lambda d, tp: d.cast(tp, 0, [[0, 1], [1]]), "InvalidBallot"),
    (lambda d, tp: d.close(tp, t=float("inf")), "InvalidTime"),
    (lambda d, tp: d.close("0", t=1e6), "NotAnInteger"),
    (lambda d, tp: d.propose(10**9, "plurality", 3), "InvalidId"),
    (lambda d, tp: d.propose(0, 99, 3), "UnknownKind"),
    (lambda d, tp: d.propose(0, "plurality", 2.5), "NotAnInteger"),
    (lambda d, tp: d.screen(tp, True, screener=1.5), "NotAnInteger"),
    (lambda d, tp: d.register_voters([10**9], [0], [True]), "InvalidId"),
    (lambda d, tp: d.cast(tp, 0, [0], channel=2**31), "UnknownKind"),
    (lambda d, tp: d.cast(tp, 0, [0], channel=99), "UnknownKind"),
    (lambda d, tp: d.cast(tp, 0, [0], channel=-1), "UnknownKind"),
])
def test_malformed_inputs_are_refused_by_reason_and_change_nothing(call, reason, same_state):
    log = EventLog()
    desk = make_desk(log)
    topic = open_topic(desk)
    before, logged = desk.snapshot(), len(log)
    with pytest.raises(EXCEPTIONS[Reason[reason]]):
        call(desk, topic)
    same_state(desk.snapshot(), before)
    assert len(log) == logged


def test_a_batch_refuses_only_its_malformed_commands():
    desk = make_desk()
    topic = open_topic(desk)
    out = desk.cast_batch([topic, topic, topic], [0, 2, 3], [[0], [1], [2]], [1.0, float("nan"), 2.0])
    assert [Reason(r).name for r in out.reasons] == ["Accepted", "InvalidTime", "Accepted"]
    assert out.events["actor"].tolist() == [0, 3]
