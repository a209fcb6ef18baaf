"""Resident voting: topics, ballots and tallies, batch-first.

A topic's life is proposed → screened → noticed → open → closed → resolved;
screening may reject it instead (a dead end).  A topic is opened only once its
notice period (at least the policy's ``notice_minutes``) is over.  Any other
step out of order is refused as ``InvalidTransition``.

The rules, each stated once:

* **Electorate.**  ``register_voters`` gives each resident a household and an
  adult flag.  Only registered adults vote.  Under ``eligibility='household'``
  a ballot counts as its household's, and the electorate is the number of
  households with a registered adult.
* **One ballot per voter (or household) per topic.**  A second one is refused
  (``DuplicateBallot``) under ``second_ballot='refuse'``; under
  ``'last_counts'`` it replaces the first while the topic is open.
* **Ballots** list option ids in preference order, padded with -1: plurality
  counts the first entry, approval and budget the set listed, Borda and
  instant runoff the ranking (a partial ranking is allowed).  A ballot must be
  replayable from one event row, so it is packed into the ``code`` column,
  5 bits a rank with 31 as the end mark: at most ``MAX_RANKS`` ranks of option
  ids below ``MAX_OPTIONS``.  Empty ballots, repeated or unknown options and
  options after the padding are refused as ``InvalidBallot``, and so is a
  budget ballot whose projects cost more than the budget (each voter's
  selection must fit the budget, as in CONSUL and Decidim).
* **Methods.**  Plurality and approval count votes, Borda gives ``n - 1 - r``
  points to the option at rank ``r`` (unranked options get none), instant
  runoff eliminates the last-placed option until one holds a majority of the
  ballots still in the count, and the participatory budget goes down the
  projects by approvals, funding each one that still fits and skipping those
  that do not (a project needs at least one approval).
* **Ties** are reported, never hidden: ``winners`` lists every option that
  wins under some way of breaking the ties (for instant runoff this includes
  ties for last place that change who wins), and ``tie`` says there is more
  than one.  Only a policy's ``tie_break`` picks a single ``winner``:
  ``'lexical'`` prefers the lower option id, ``'seeded'`` draws one order of
  the options per topic from the policy's seed.  The same order eliminates
  (least preferred first) in instant runoff and orders equal-vote projects in
  the budget.  Several options tied for last place are eliminated together
  only when that cannot matter (together they hold fewer votes than any
  other option).
* **Decision.**  ``turnout = ballots / eligible`` and the quorum is met when
  ``turnout >= quorum``.  The threshold asks the winner's backing, as a share
  of the ballots, to be more than half (``'simple'``) or at least two thirds
  (``'two_thirds'``): votes (plurality), approvals (approval), points out of
  the most possible (Borda), final-round votes (instant runoff).  In a budget
  vote the threshold applies to each project instead: a project below it is
  not funded.  A topic is ``carried`` when the quorum is met, the result is
  not an unbroken tie and, for single-winner methods, the winner clears the
  threshold (for the budget: at least one project is funded).

* **Secret ballot.**  The log records THAT a voter voted (``BallotCast``:
  voter and topic, no ballot) and, apart from it, WHAT was voted: at close the
  counted ballots are published as ``BallotCounted`` events (topic and packed
  ballot, no voter) in code order, so nobody holding the log can link a ballot
  to its voter.  While the topic is open each ballot waits sealed in the
  log's details (``ballot/<voter or household>`` of the topic, in the live
  store's own table, not in events), which is what lets a later ballot
  replace an earlier one; closing erases them, and the desk forgets which
  voter's row held which ballot.

Each accepted command emits one event (see ``events.EventKind``); a topic's
close event also records ``amount`` = eligible voters and ``extra`` = ballots
counted, so turnout is one row away, and is followed by its ``BallotCounted``
events.  ``VotingDesk.replay`` re-executes a log.
"""
import contextlib
from dataclasses import asdict, dataclass, field

import numpy as np

from twin import rng
from twin._jit import kernel
from twin.services import events as ev
from twin.services._batch import Outcome, batch_length, column, grow
from twin.services._inputs import MAX_ID, as_integer, integers, person_ids, raise_first, times
from twin.services.reasons import InvalidBallot, InvalidId, InvalidTransition, Reason, UnknownKind, UnknownTopic

METHODS = ("plurality", "approval", "borda", "irv", "budget")
PLURALITY, APPROVAL, BORDA, IRV, BUDGET = range(len(METHODS))

STATES = ("proposed", "screened", "noticed", "open", "closed", "resolved", "rejected")
PROPOSED, SCREENED, NOTICED, OPEN, CLOSED, RESOLVED, REJECTED = range(len(STATES))

#: A packed ballot holds 12 ranks of 5 bits; the value 31 marks the end.
MAX_RANKS = 12
MAX_OPTIONS = 31
_BITS = 5
_END = 31

KINDS = frozenset({
    ev.EventKind.VoterRegistered, ev.EventKind.TopicProposed, ev.EventKind.ProjectAdded, ev.EventKind.TopicScreened,
    ev.EventKind.TopicNoticed, ev.EventKind.TopicOpened, ev.EventKind.BallotCast,
    ev.EventKind.TopicClosed, ev.EventKind.TopicResolved, ev.EventKind.BallotCounted,
})

_N_CHANNELS = len(ev.Channel)  # channel codes run 0 .. len(Channel) - 1
_UNKNOWN_TOPIC = int(Reason.UnknownTopic)
_TOPIC_NOT_OPEN = int(Reason.TopicNotOpen)
_NOT_ELIGIBLE = int(Reason.NotEligible)
_DUPLICATE_BALLOT = int(Reason.DuplicateBallot)
_INVALID_BALLOT = int(Reason.InvalidBallot)
_NOTICE_NOT_OVER = int(Reason.NoticePeriodNotOver)
_INVALID_TRANSITION = int(Reason.InvalidTransition)
_INVALID_AMOUNT = int(Reason.InvalidAmount)

# Lifecycle steps handled by ``_step``.
_SCREEN, _NOTICE, _OPEN, _CLOSE, _RESOLVE = range(5)

# Our stream in twin.rng, so the seeded tie-break never shares draws with other decisions.
_TIE_STREAM = 0x766F7465

# Ids are packed two to a hash key; MAX_ID (below 2**31) keeps the hash in int64.

# The details field of a sealed ballot, followed by the voter's (or household's) id.
_SEALED = "ballot/"


# ------------------------------------------------------------------ ballots
@kernel
def _pack_ballot(prefs, n_options):
    """The packed code of one ballot row, or -1 when it is no valid ballot for ``n_options``."""
    code = 0
    seen = 0
    n = 0
    padded = False
    for r in range(prefs.shape[0]):
        o = prefs[r]
        if o == -1:
            padded = True
            continue
        if padded or o < 0 or o >= n_options or n == MAX_RANKS:
            return -1
        if seen & (1 << o):
            return -1
        seen |= 1 << o
        code |= o << (_BITS * n)
        n += 1
    if n == 0:
        return -1
    for r in range(n, MAX_RANKS):
        code |= _END << (_BITS * r)
    return code


@kernel
def _pack_rows(prefs, n_options, codes):
    for i in range(prefs.shape[0]):
        codes[i] = _pack_ballot(prefs[i], n_options)


@kernel
def _unpack_rows(codes, out):
    for i in range(codes.shape[0]):
        ended = False
        for r in range(MAX_RANKS):
            o = (codes[i] >> (_BITS * r)) & _END
            ended = ended or o == _END
            out[i, r] = -1 if ended else o


@kernel
def _ballot_cost(prefs, costs):
    """What the projects listed on a (valid) budget ballot cost together."""
    total = 0
    for r in range(prefs.shape[0]):
        if prefs[r] < 0:
            break
        total += costs[prefs[r]]
    return total


def pack_prefs(prefs, n_options: int = MAX_OPTIONS):
    """Pack ballots (rows of option ids in preference order, padded with -1) into int64 codes.

    A 1-D ``prefs`` is one ballot and gives an ``int``; a 2-D one gives an
    array.  Raises ``InvalidBallot`` naming the first ballot that is empty,
    repeats an option, names one outside ``0..n_options-1``, lists an option
    after the padding or ranks more than ``MAX_RANKS``.
    """
    if not 1 <= n_options <= MAX_OPTIONS:
        raise ValueError(f"n_options must be in 1..{MAX_OPTIONS}, got {n_options}")
    a = np.asarray(prefs, dtype=np.int64)
    rows = np.ascontiguousarray(a.reshape(1, -1) if a.ndim == 1 else a)
    if rows.ndim != 2:
        raise InvalidBallot(f"prefs must be one ballot (1-D) or ballots × ranks (2-D), got shape {a.shape}")
    codes = np.empty(len(rows), np.int64)
    _pack_rows(rows, n_options, codes)
    bad = np.flatnonzero(codes < 0)
    if len(bad):
        raise InvalidBallot(f"ballot {int(bad[0])} {rows[bad[0]].tolist()} is not a valid ballot "
                            f"for {n_options} options")
    return int(codes[0]) if a.ndim == 1 else codes


def _ballot_rows(prefs) -> np.ndarray:
    """Ballots as a C-contiguous ballots × ranks int64 array; ragged rows are padded with -1."""
    if not isinstance(prefs, np.ndarray) and len(prefs) and len({np.size(p) for p in prefs}) > 1:
        rows = [np.ravel(p) for p in prefs]
        padded = np.full((len(rows), max(len(r) for r in rows)), -1, np.int64)
        for i, r in enumerate(rows):
            padded[i, :len(r)] = r
        return padded
    try:
        a = np.ascontiguousarray(prefs, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise InvalidBallot(f"a ballot lists option ids (integers), got {prefs!r}"[:300]) from None
    if a.ndim != 2:
        raise InvalidBallot(f"prefs must be ballots × ranks (2-D), got shape {a.shape}")
    if isinstance(prefs, np.ndarray) and prefs.dtype.kind not in "iu" or \
            not isinstance(prefs, np.ndarray) and not all(as_integer(x) is not None for x in np.ravel(
                np.asarray(prefs, dtype=object))):
        raise InvalidBallot(f"a ballot lists option ids (integers), got {np.asarray(prefs).tolist()!r}"[:300])
    return a


def unpack_prefs(codes):
    """The ballots packed in ``codes``: ``MAX_RANKS`` option ids each, padded with -1.

    An integer gives one 1-D ballot; an array gives a 2-D array.
    """
    a = np.asarray(codes, dtype=np.int64)
    out = np.empty((a.size, MAX_RANKS), np.int64)
    _unpack_rows(a.reshape(-1), out)
    return out[0] if a.ndim == 0 else out


# ------------------------------------------------------------------ counting
@kernel
def _score(prefs, method, n_options, counts):
    """Add each ballot's votes (plurality, approval, budget) or Borda points to ``counts``."""
    for i in range(prefs.shape[0]):
        for r in range(prefs.shape[1]):
            o = prefs[i, r]
            if o < 0:
                break
            counts[o] += n_options - 1 - r if method == BORDA else 1
            if method == PLURALITY:
                break


@kernel
def _first_choices(prefs, active, counts):
    """Add each ballot to its highest-ranked option still ``active`` (exhausted ballots add nothing)."""
    for i in range(prefs.shape[0]):
        for r in range(prefs.shape[1]):
            o = prefs[i, r]
            if o < 0:
                break
            if active[o]:
                counts[o] += 1
                break


@kernel
def _options_allowed(method, n_options):
    """Whether a topic of ``method`` may have ``n_options`` (a choice needs two; a budget one project)."""
    fewest = 1 if method == BUDGET else 2
    return fewest <= n_options <= MAX_OPTIONS


# ------------------------------------------------------------------ tallies
@dataclass(frozen=True, eq=False)
class TallyResult:
    """The count of one topic's ballots and, with it, the decision.

    ``counts``: votes per option (plurality), approvals (approval, budget),
    points (Borda) or the final round's votes (instant runoff).
    ``winners``: every option that wins under some way of breaking the ties,
    lowest id first (more than one means a tie); for the budget, the funded
    projects in funding order.  ``tie``: the result depends on how ties are
    broken; ``tied`` lists the options concerned.  ``winner``: the single
    winner, after the policy's ``tie_break`` if one was needed; -1 for a tie
    left unbroken, for no ballots, and for the budget (which funds projects).
    ``rounds``/``eliminated``: instant runoff's counts and eliminations per
    round; they stop at a tie for last place that is left unbroken.
    ``funded``/``spent``: the budget's funded projects and their cost.
    ``support``: the winner's backing as a share of the ballots (see the
    module docstring).  ``ties_exact``: False when instant runoff's search
    for every possible winner hit ``IRV_MAX_TIE_STATES`` and ``winners``
    lists every option still in at the first tie that mattered instead.  ``eligible``, ``turnout``, ``quorum_met``, ``carried``:
    the decision.
    """

    method: str
    counts: np.ndarray
    winners: list
    tie: bool
    winner: int
    ballots: int
    tied: list = field(default_factory=list)
    tie_break: str | None = None
    rounds: list = field(default_factory=list)
    eliminated: list = field(default_factory=list)
    funded: list = field(default_factory=list)
    spent: int = 0
    support: float = float("nan")
    eligible: int | None = None
    turnout: float = float("nan")
    quorum_met: bool = True
    carried: bool = False
    ties_exact: bool = True


def _one_of(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _method_code(method) -> int:
    """A method by name or code; ``UnknownKind`` naming the methods otherwise."""
    code = METHODS.index(method) if isinstance(method, str) and method in METHODS else as_integer(method)
    if code is None or not 0 <= code < len(METHODS):
        raise UnknownKind(f"method {method!r}: one of {', '.join(METHODS)} (or its code 0..{len(METHODS) - 1})")
    return code


def _meets(threshold, backing, ballots) -> bool:
    """Whether ``backing`` out of ``ballots`` clears the threshold (integers, so 2/3 is exact)."""
    if threshold == "simple":
        return 2 * backing > ballots
    if threshold == "two_thirds":
        return 3 * backing >= 2 * ballots
    return True


def _tie_ranks(n_options, tie_break, seed, lot):
    """Each option's place in the tie-break order (0 = preferred), or None without a tie-break."""
    if tie_break is None:
        return None
    if tie_break == "lexical":
        return np.arange(n_options)
    with np.errstate(over="ignore"):  # the pure-Python path of twin.rng wraps on purpose
        draws = np.array([rng.draw(seed, _TIE_STREAM, lot, o) for o in range(n_options)], np.uint64)
    ranks = np.empty(n_options, np.int64)
    ranks[np.argsort(draws, kind="stable")] = np.arange(n_options)
    return ranks


def _most_preferred(options, ranks) -> int:
    options = np.asarray(options)
    return int(options[np.argmin(ranks[options])])


def _least_preferred(options, ranks) -> int:
    options = np.asarray(options)
    return int(options[np.argmax(ranks[options])])


def _count_top(method, prefs, n_options, ranks):
    """Plurality, approval and Borda: the options with the most votes or points win."""
    counts = np.zeros(n_options, np.int64)
    _score(prefs, method, n_options, counts)
    winners = np.flatnonzero(counts == counts.max()).tolist()
    tie = len(winners) > 1
    winner = winners[0] if not tie else (-1 if ranks is None else _most_preferred(winners, ranks))
    most_points = len(prefs) * (n_options - 1) if method == BORDA else len(prefs)
    return dict(counts=counts, winners=winners, tie=tie, tied=winners if tie else [], winner=winner,
                backing=int(counts.max()), out_of=most_points)


def _irv_round(prefs, active):
    counts = np.zeros(len(active), np.int64)
    _first_choices(prefs, active, counts)
    return counts


def _irv_verdict(counts, active):
    """What one instant-runoff round decides, as ``(verdict, options)``.

    ``'won'``: a majority of the ballots still in the count (or the last
    option standing); ``'out'``: the last-placed option(s), safe to eliminate
    together; ``'tie'``: options tied for last place whose order of
    elimination may matter; ``'stuck'``: no ballot is left to move, so every
    option still in is tied.
    """
    ids = np.flatnonzero(active)
    c = counts[ids]
    continuing = int(c.sum())
    if continuing == 0:
        # The last option standing wins even when no ballot ranks it.
        return ("won" if len(ids) == 1 else "stuck"), ids.tolist()
    if 2 * int(c.max()) > continuing:
        return "won", [int(ids[np.argmax(c)])]
    last = ids[c == c.min()]
    above = c[c > c.min()]
    # Options holding fewer votes together than anyone else are eliminated in turn in any order.
    if len(above) and int(counts[last].sum()) < int(above.min()):
        return "out", last.tolist()
    return "tie", last.tolist()


#: Every instant-runoff winner over all ways of breaking ties for last place is NP-hard to
#: find in general (each tie that may matter branches the count).  The search visits at most
#: this many distinct sets of options still in; past it, the tally lists every option still in
#: at the first tie that may matter as tied (a superset of the possible winners) and says so
#: (``TallyResult.ties_exact`` is False).  1,024 sets take about 0.7 s here.
IRV_MAX_TIE_STATES = 1024


class _TieSearchTooLarge(Exception):
    pass


def _irv_possible_winners(prefs, active, memo):
    """Every option that wins under some order of breaking ties, with its smallest final count.

    Only ties that may matter branch, and ``memo`` (keyed by the options
    still in) shares the branches that meet again; more than
    ``IRV_MAX_TIE_STATES`` of them is ``_TieSearchTooLarge``.
    """
    key = active.tobytes()
    if key not in memo:
        if len(memo) >= IRV_MAX_TIE_STATES:
            raise _TieSearchTooLarge
        counts = _irv_round(prefs, active)
        verdict, ids = _irv_verdict(counts, active)
        if verdict == "won":
            memo[key] = {ids[0]: int(counts[ids[0]])}
        elif verdict == "stuck":
            memo[key] = {o: 0 for o in ids}
        else:
            found = {}
            for out in ([ids] if verdict == "out" else [[o] for o in ids]):
                rest = active.copy()
                rest[out] = False
                for w, c in _irv_possible_winners(prefs, rest, memo).items():
                    found[w] = min(c, found.get(w, c))
            memo[key] = found
    return memo[key]


def _count_irv(prefs, n_options, ranks):
    """Instant runoff, round by round; ties for last place broken only by ``ranks``."""
    active = np.ones(n_options, bool)
    rounds, eliminated = [], []
    winner, backing, in_at_first_tie = -1, 0, None
    while True:
        counts = _irv_round(prefs, active)
        rounds.append(counts)
        verdict, ids = _irv_verdict(counts, active)
        if verdict == "won":
            winner, backing = ids[0], int(counts[ids[0]])
            break
        if verdict == "out":
            eliminated.append(ids)
            active[ids] = False
            continue
        if in_at_first_tie is None:
            in_at_first_tie = np.flatnonzero(active).tolist()
        if ranks is None or verdict == "stuck":
            winner = -1 if ranks is None else _most_preferred(ids, ranks)
            break
        loser = _least_preferred(ids, ranks)
        eliminated.append([loser])
        active[loser] = False
    possible, exact = {winner: backing}, True
    if in_at_first_tie is not None:
        try:
            possible = _irv_possible_winners(prefs, np.ones(n_options, bool), {})
        except _TieSearchTooLarge:
            possible, exact = {o: 0 for o in in_at_first_tie}, False
    winners = sorted(possible)
    tie = len(winners) > 1
    if ranks is None and not tie:
        winner = winners[0]
        backing = possible[winner]
    elif ranks is None:
        backing = max(possible.values())
    return dict(counts=rounds[-1], winners=winners, tie=tie, tied=winners if tie else [],
                winner=winner, rounds=rounds, eliminated=eliminated, backing=backing,
                out_of=len(prefs), ties_exact=exact)


def _count_budget(prefs, n_options, costs, budget, threshold, ranks):
    """Participatory budget: fund projects by approvals while they fit.

    Among projects with equal approvals the order matters only when the ones
    that still fit do not all fit together; that is a tie, broken by
    ``ranks`` or else left open (funding stops there).
    """
    votes = np.zeros(n_options, np.int64)
    _score(prefs, APPROVAL, n_options, votes)
    fundable = [p for p in range(n_options) if votes[p] > 0 and _meets(threshold, votes[p], len(prefs))]
    left, funded, tied, open_tie = int(budget), [], [], False
    for v in sorted({int(votes[p]) for p in fundable}, reverse=True):
        fits = [p for p in fundable if votes[p] == v and costs[p] <= left]
        if sum(int(costs[p]) for p in fits) > left:
            tied += fits
            if ranks is None:
                open_tie = True
                break
            fits.sort(key=lambda p: ranks[p])
        for p in fits:
            if costs[p] <= left:
                funded.append(p)
                left -= int(costs[p])
    return dict(counts=votes, winners=funded, tie=bool(tied), tied=tied, winner=-1, funded=funded,
                spent=int(budget) - left, open_tie=open_tie)


def _tally_prefs(method, prefs, n_options, costs, budget, threshold, quorum, eligible,
                 tie_break, seed, lot) -> TallyResult:
    """The one tally behind ``tally`` and ``VotingDesk.resolve_batch``; ballots already valid."""
    ballots = len(prefs)
    ranks = _tie_ranks(n_options, tie_break, seed, lot)
    if ballots == 0:
        part = dict(counts=np.zeros(n_options, np.int64), winners=[], tie=False, winner=-1)
    elif method == IRV:
        part = _count_irv(prefs, n_options, ranks)
    elif method == BUDGET:
        part = _count_budget(prefs, n_options, costs, budget, threshold, ranks)
    else:
        part = _count_top(method, prefs, n_options, ranks)
    backing, out_of = part.pop("backing", 0), part.pop("out_of", 0)
    open_tie = part.pop("open_tie", False)
    turnout = ballots / eligible if eligible else float("nan")
    quorum_met = quorum == 0 or turnout >= quorum
    if method == BUDGET:
        carried = quorum_met and not open_tie and bool(part["winners"])
    else:
        carried = quorum_met and part["winner"] >= 0 and _meets(threshold, backing, out_of)
    return TallyResult(
        method=METHODS[method], ballots=ballots, eligible=eligible, turnout=turnout,
        quorum_met=bool(quorum_met), carried=bool(carried),
        support=backing / out_of if out_of else float("nan"),
        tie_break=tie_break if part["tie"] else None, **part)


def tally(method, prefs, n_options: int, costs=None, budget: int = 0, *, threshold: str = "none",
          quorum: float = 0.0, eligible: int | None = None, tie_break: str | None = None,
          seed: int = 0, lot: int = 0) -> TallyResult:
    """Count ballots by ``method`` (a name from ``METHODS`` or its code).

    ``prefs``: ballots × ranks of option ids, padded with -1, or ragged rows
    (see the module docstring for what each method reads).
    ``costs``/``budget``: the budget method's project costs (one per option)
    and the money to spend.
    ``threshold``/``quorum``/``eligible``: the decision (the quorum needs
    ``eligible``).  ``tie_break``: None, ``'lexical'`` or ``'seeded'`` (with
    ``seed``; ``lot`` picks which order is drawn, the desk uses the topic id).
    """
    code = _method_code(method)
    if not _options_allowed(code, n_options):
        raise ValueError(f"a {METHODS[code]} topic has {'1' if code == BUDGET else '2'}.."
                         f"{MAX_OPTIONS} options, got {n_options}")
    _one_of("threshold", threshold, ("none", "simple", "two_thirds"))
    _one_of("tie_break", tie_break, (None, "lexical", "seeded"))
    if quorum and eligible is None:
        raise ValueError("a quorum needs the number of eligible voters (eligible=...)")
    a = _ballot_rows(prefs)
    if code == BUDGET:
        costs = np.asarray(costs, dtype=np.int64)
        if costs.shape != (n_options,) or (costs <= 0).any() or budget <= 0:
            raise ValueError("a budget tally needs one positive cost per option and a positive budget")
    codes = pack_prefs(a, n_options) if len(a) else np.zeros(0, np.int64)
    return _tally_prefs(code, unpack_prefs(codes), n_options, costs, budget, threshold, quorum,
                        eligible, tie_break, seed, lot)


# ------------------------------------------------------------------ the desk's kernels
@kernel
def _topic_reason(state, n_topics, topic, expected):
    """Why ``topic`` cannot take a step that needs it in state ``expected``, or 0."""
    if topic < 0 or topic >= n_topics:
        return _UNKNOWN_TOPIC
    if state[topic] != expected:
        return _INVALID_TRANSITION
    return 0


@kernel
def _propose(state, method, n_options, budget, proposer, n_topics,
             proposer_i, method_i, n_options_i, budget_i):
    """Create topic ``n_topics``; the reason it is refused, or 0."""
    if method_i < 0 or method_i >= len(METHODS) or not _options_allowed(method_i, n_options_i):
        return _INVALID_AMOUNT
    if budget_i <= 0 if method_i == BUDGET else budget_i != 0:
        return _INVALID_AMOUNT
    state[n_topics] = PROPOSED
    method[n_topics] = method_i
    n_options[n_topics] = n_options_i
    budget[n_topics] = budget_i
    proposer[n_topics] = proposer_i
    return 0


@kernel
def _propose_batch(state, method, n_options, budget, proposer, n_topics,
                   proposer_col, method_col, n_options_col, budget_col, out, ids):
    for i in range(method_col.shape[0]):
        out[i] = _propose(state, method, n_options, budget, proposer, n_topics,
                          proposer_col[i], method_col[i], n_options_col[i], budget_col[i])
        ids[i] = n_topics if out[i] == 0 else -1
        if out[i] == 0:
            n_topics += 1
    return n_topics


@kernel
def _add_project(state, method, n_options, n_projects, costs, n_topics, topic, cost):
    """Cost the topic's next project (a budget topic still in proposal); the reason it is refused, or 0."""
    r = _topic_reason(state, n_topics, topic, PROPOSED)
    if r != 0:
        return r
    if method[topic] != BUDGET:
        return _INVALID_TRANSITION
    if n_projects[topic] >= n_options[topic] or cost <= 0:
        return _INVALID_AMOUNT
    costs[topic, n_projects[topic]] = cost
    n_projects[topic] += 1
    return 0


@kernel
def _add_project_batch(state, method, n_options, n_projects, costs, n_topics, topic, cost, out, ids):
    for i in range(topic.shape[0]):
        out[i] = _add_project(state, method, n_options, n_projects, costs, n_topics, topic[i], cost[i])
        ids[i] = n_projects[topic[i]] - 1 if out[i] == 0 else -1


@kernel
def _step(op, state, method, n_options, n_projects, noticed_at, notice_minutes, eligible,
          n_topics, topic, arg, t, min_notice, eligible_now):
    """Move a topic one step along its life; the reason it is refused, or 0.

    ``arg`` is the screening verdict (nonzero = passed) or the notice minutes.
    """
    if op == _SCREEN:
        expected = PROPOSED
    elif op == _NOTICE:
        expected = SCREENED
    elif op == _OPEN:
        expected = NOTICED
    elif op == _CLOSE:
        expected = OPEN
    else:
        expected = CLOSED
    r = _topic_reason(state, n_topics, topic, expected)
    if r != 0:
        return r
    if op == _SCREEN:
        # Screening passes a budget topic only once every project has its cost.
        if arg != 0 and method[topic] == BUDGET and n_projects[topic] < n_options[topic]:
            return _INVALID_TRANSITION
        state[topic] = SCREENED if arg != 0 else REJECTED
    elif op == _NOTICE:
        if arg < min_notice:
            return _INVALID_AMOUNT
        noticed_at[topic] = t
        notice_minutes[topic] = arg
        state[topic] = NOTICED
    elif op == _OPEN:
        if t < noticed_at[topic] + notice_minutes[topic]:
            return _NOTICE_NOT_OVER
        state[topic] = OPEN
    elif op == _CLOSE:
        eligible[topic] = eligible_now
        state[topic] = CLOSED
    else:
        state[topic] = RESOLVED
    return 0


@kernel
def _step_batch(op, state, method, n_options, n_projects, noticed_at, notice_minutes, eligible,
                n_topics, topic, arg, t, min_notice, eligible_now, out):
    for i in range(topic.shape[0]):
        out[i] = _step(op, state, method, n_options, n_projects, noticed_at, notice_minutes, eligible,
                       n_topics, topic[i], arg[i], t[i], min_notice, eligible_now)


@kernel
def _find_slot(slot_topic, slot_key, topic, key):
    """The index slot holding (topic, key), or the empty slot where it belongs (linear probing)."""
    mask = slot_topic.shape[0] - 1
    s = (topic * 0x7FEB352D + key * 0x68E31DA5) & mask
    while slot_topic[s] >= 0 and (slot_topic[s] != topic or slot_key[s] != key):
        s = (s + 1) & mask
    return s


@kernel
def _index_ballots(b_topic, b_key, b_counted, n_rows, slot_topic, slot_key, slot_row):
    """Rebuild the (topic, voter or household) → counted ballot index into empty slots."""
    for row in range(n_rows):
        if b_counted[row]:
            s = _find_slot(slot_topic, slot_key, b_topic[row], b_key[row])
            slot_topic[s] = b_topic[row]
            slot_key[s] = b_key[row]
            slot_row[s] = row


@kernel
def _cast(state, method, n_options, budget, costs, n_ballots, n_topics,
          household, adult, by_household, last_counts, slot_topic, slot_key, slot_row,
          b_topic, b_voter, b_key, b_code, b_t, b_channel, b_counted, n_rows,
          topic, voter, prefs, t, channel):
    """Record one ballot as row ``n_rows``; the reason it is refused, or 0."""
    if topic < 0 or topic >= n_topics:
        return _UNKNOWN_TOPIC
    if state[topic] != OPEN:
        return _TOPIC_NOT_OPEN
    if voter < 0 or voter >= household.shape[0] or household[voter] < 0 or not adult[voter]:
        return _NOT_ELIGIBLE
    code = _pack_ballot(prefs, n_options[topic])
    if code < 0:
        return _INVALID_BALLOT
    if method[topic] == BUDGET and _ballot_cost(prefs, costs[topic]) > budget[topic]:
        return _INVALID_BALLOT
    key = household[voter] if by_household else voter
    s = _find_slot(slot_topic, slot_key, topic, key)
    if slot_topic[s] >= 0:
        if not last_counts:
            return _DUPLICATE_BALLOT
        b_counted[slot_row[s]] = False
        b_code[slot_row[s]] = 0  # a replaced ballot is forgotten, not kept beside its voter
    else:
        slot_topic[s] = topic
        slot_key[s] = key
        n_ballots[topic] += 1
    slot_row[s] = n_rows
    b_topic[n_rows] = topic
    b_voter[n_rows] = voter
    b_key[n_rows] = key
    b_code[n_rows] = code
    b_t[n_rows] = t
    b_channel[n_rows] = channel
    b_counted[n_rows] = True
    return 0


@kernel
def _cast_batch(state, method, n_options, budget, costs, n_ballots, n_topics,
                household, adult, by_household, last_counts, slot_topic, slot_key, slot_row,
                b_topic, b_voter, b_key, b_code, b_t, b_channel, b_counted, n_rows,
                topic, voter, prefs, t, channel, out):
    for i in range(topic.shape[0]):
        out[i] = _cast(state, method, n_options, budget, costs, n_ballots, n_topics,
                       household, adult, by_household, last_counts, slot_topic, slot_key, slot_row,
                       b_topic, b_voter, b_key, b_code, b_t, b_channel, b_counted, n_rows,
                       topic[i], voter[i], prefs[i], t[i], channel[i])
        if out[i] == 0:
            n_rows += 1
    return n_rows


# ------------------------------------------------------------------ policy and desk
@dataclass(frozen=True)
class VotingPolicy:
    """How a community votes; parameters only (the method is chosen per topic).

    eligibility : ``'adult'`` (every adult resident votes) or ``'household'``
        (one vote per household, cast by any of its adults).
    second_ballot : ``'refuse'`` or ``'last_counts'`` (replaces the first while open).
    notice_minutes : the shortest notice period, whole minutes (default 7 days).
    quorum : the turnout needed, a share in [0, 1].
    threshold : ``'none'``, ``'simple'`` (more than half) or ``'two_thirds'``.
    tie_break : None (ties stay ties), ``'lexical'`` or ``'seeded'``.
    seed : the seeded tie-break's seed.
    """

    eligibility: str = "adult"
    second_ballot: str = "refuse"
    notice_minutes: int = 7 * 1440
    quorum: float = 0.0
    threshold: str = "none"
    tie_break: str | None = None
    seed: int = 0

    def __post_init__(self):
        _one_of("VotingPolicy.eligibility", self.eligibility, ("adult", "household"))
        _one_of("VotingPolicy.second_ballot", self.second_ballot, ("refuse", "last_counts"))
        _one_of("VotingPolicy.threshold", self.threshold, ("none", "simple", "two_thirds"))
        _one_of("VotingPolicy.tie_break", self.tie_break, (None, "lexical", "seeded"))
        if not _is_whole(self.notice_minutes) or self.notice_minutes < 0:
            raise ValueError(f"VotingPolicy.notice_minutes must be a whole number of minutes >= 0, "
                             f"got {self.notice_minutes!r}")
        # Events carry minutes as integers; 7 * 1440.0 is as good as 10080.
        object.__setattr__(self, "notice_minutes", int(self.notice_minutes))
        if isinstance(self.quorum, bool) or not isinstance(self.quorum, (int, float, np.number)) \
                or not 0 <= self.quorum <= 1:
            raise ValueError(f"VotingPolicy.quorum must be a share in [0, 1], got {self.quorum!r}")
        if not _is_int(self.seed) or not 0 <= self.seed < 2**64:
            raise ValueError(f"VotingPolicy.seed must be an integer in [0, 2**64), got {self.seed!r}")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_whole(value) -> bool:
    return _is_int(value) or (isinstance(value, (float, np.floating)) and float(value).is_integer())


class VotingDesk:
    """Topics and ballots of one community.  Batch methods take arrays; the rest are one command.

    Parameters
    ----------
    log : EventLog, optional
        Where accepted commands are logged.
    policy : VotingPolicy
    """

    def __init__(self, log=None, policy: VotingPolicy = VotingPolicy()):
        self.log = log
        self.policy = policy
        self.n_topics = 0
        self._state = np.zeros(16, np.int8)
        self._method = np.zeros(16, np.int8)
        self._n_options = np.zeros(16, np.int64)
        self._budget = np.zeros(16, np.int64)
        self._proposer = np.zeros(16, np.int64)
        self._n_projects = np.zeros(16, np.int64)
        self._costs = np.zeros((16, MAX_OPTIONS), np.int64)
        self._noticed_at = np.zeros(16, np.float64)
        self._notice_minutes = np.zeros(16, np.int64)
        self._eligible = np.zeros(16, np.int64)
        self._n_ballots = np.zeros(16, np.int64)
        self._winner = np.full(16, -1, np.int64)
        self._carried = np.zeros(16, np.bool_)
        self._results: dict[int, TallyResult] = {}
        # Ballots, one row per accepted ballot; a replaced one stays, no longer counted.
        self._n_rows = 0
        self._b_topic = np.zeros(16, np.int64)
        self._b_voter = np.zeros(16, np.int64)
        self._b_key = np.zeros(16, np.int64)
        self._b_code = np.zeros(16, np.int64)
        self._b_t = np.zeros(16, np.float64)
        self._b_channel = np.zeros(16, np.int8)
        self._b_counted = np.zeros(16, np.bool_)
        # The index (topic, voter or household) → counted row: open addressing, at most half full.
        self._slot_topic = np.full(64, -1, np.int64)
        self._slot_key = np.zeros(64, np.int64)
        self._slot_row = np.zeros(64, np.int64)
        # The electorate, by resident id; household -1 = not registered.
        self._household = np.zeros(0, np.int64)
        self._adult = np.zeros(0, np.bool_)

    # ------------------------------------------------------------- electorate
    def register_voters(self, voter_ids, household_ids, is_adult, t=0.0) -> None:
        """Register residents (or update them): their household and whether they are adults.

        Logged as ``VoterRegistered`` events, so a replayed log (or a reopened
        store) has the same electorate.
        """
        n = batch_length(voter_ids, household_ids, is_adult)
        pre = np.zeros(n, np.int16)
        voters, households = integers(voter_ids, n, pre), integers(household_ids, n, pre)
        t = times(t, n, pre)
        raise_first(pre, "register voters")
        for name, ids in (("voter_ids", voters), ("household_ids", households)):
            if n and (ids.min() < 0 or ids.max() >= MAX_ID):
                raise InvalidId(f"{name} must be in [0, {MAX_ID:,}), got {ids.min()}..{ids.max()}")
        if len(np.unique(voters)) != n:
            raise ValueError("voter_ids repeat; register each voter once per call")
        need = int(voters.max()) + 1 if n else 0
        if need > len(self._household):
            self._household = np.concatenate([self._household, np.full(need - len(self._household), -1)])
            self._adult = np.concatenate([self._adult, np.zeros(need - len(self._adult), np.bool_)])
        adult = column(is_adult, n, np.bool_)
        self._household[voters] = households
        self._adult[voters] = adult
        if self.log is not None:
            self.log.append(ev.make(ev.EventKind.VoterRegistered, column(t, n, np.float64), actor=voters,
                                    target=households, code=adult))

    def eligible_count(self) -> int:
        """Voters (or, by household, households with a registered adult) in the electorate now."""
        adults = self._household[self._adult & (self._household >= 0)]
        return len(np.unique(adults)) if self.policy.eligibility == "household" else len(adults)

    # ------------------------------------------------------------- batches
    def propose_batch(self, proposer, method_code, n_options, t, budget=0) -> Outcome:
        """Propose topics; ``ids`` holds the new topic ids.

        Refused as ``InvalidAmount``: an unknown method code, a number of
        options outside 2..31 (1..31 projects for a budget), a budget that is
        not positive for a budget topic or not zero for another.
        """
        n = batch_length(proposer, method_code, n_options, t, budget)
        pre = np.zeros(n, np.int16)
        proposer = person_ids(proposer, n, pre)
        method_code, n_options, budget = (integers(c, n, pre) for c in (method_code, n_options, budget))
        t = times(t, n, pre)
        self._reserve_topics(self.n_topics + n)
        reasons, ids = np.empty(n, np.int16), np.empty(n, np.int64)
        self.n_topics = _propose_batch(self._state, self._method, self._n_options, self._budget,
                                       self._proposer, self.n_topics, proposer, _unless(pre, method_code),
                                       n_options, budget, reasons, ids)
        reasons = _first(pre, reasons)
        ok = reasons == 0
        return self._emit(Outcome(reasons, ev.make(
            ev.EventKind.TopicProposed, t[ok], actor=proposer[ok], subject=ids[ok], code=method_code[ok],
            amount=n_options[ok], extra=budget[ok]), ids))

    def add_projects(self, topic, costs, t=0.0) -> Outcome:
        """Cost a budget topic's projects, in option order, while it is proposed; ``ids`` = option ids.

        Refused: ``InvalidTransition`` for a topic that is no budget topic or
        no longer proposed, ``InvalidAmount`` for a cost that is not positive
        or a project beyond the topic's number of options.
        """
        n = batch_length(topic, costs, t)
        pre = np.zeros(n, np.int16)
        topic, costs, t = integers(topic, n, pre), integers(costs, n, pre), times(t, n, pre)
        reasons, ids = np.empty(n, np.int16), np.empty(n, np.int64)
        _add_project_batch(self._state, self._method, self._n_options, self._n_projects, self._costs,
                           self.n_topics, _unless(pre, topic), costs, reasons, ids)
        reasons = _first(pre, reasons)
        ok = reasons == 0
        return self._emit(Outcome(reasons, ev.make(
            ev.EventKind.ProjectAdded, t[ok], subject=topic[ok], code=ids[ok], amount=costs[ok]), ids))

    def screen_batch(self, topic, passed, t, screener=0) -> Outcome:
        """Screen proposed topics: passed ones go on to notice, the others are rejected."""
        n = batch_length(topic, passed, t, screener)
        passed = (column(passed, n, np.int64) != 0).astype(np.int64)
        pre = np.zeros(n, np.int16)
        screener = integers(screener, n, pre)
        reasons, topic, t = self._steps(_SCREEN, topic, passed, t, n, pre)
        ok = reasons == 0
        return self._emit(Outcome(reasons, ev.make(
            ev.EventKind.TopicScreened, t[ok], actor=screener[ok], subject=topic[ok],
            extra=passed[ok])))

    def notice_batch(self, topic, t, minutes=None) -> Outcome:
        """Publish screened topics; voting opens ``minutes`` later (default and minimum: the policy's)."""
        n = batch_length(topic, t) if minutes is None else batch_length(topic, t, minutes)
        minutes = column(self.policy.notice_minutes if minutes is None else minutes, n, np.int64)
        reasons, topic, t = self._steps(_NOTICE, topic, minutes, t, n)
        ok = reasons == 0
        return self._emit(Outcome(reasons, ev.make(
            ev.EventKind.TopicNoticed, t[ok], subject=topic[ok], amount=minutes[ok])))

    def open_batch(self, topic, t) -> Outcome:
        """Open noticed topics for voting (``NoticePeriodNotOver`` before the notice ends)."""
        return self._lifecycle(_OPEN, ev.EventKind.TopicOpened, topic, t)

    def cast_batch(self, topic, voter, prefs, t, channel=0) -> Outcome:
        """Cast ballots: ``prefs`` is ballots × ranks of option ids, padded with -1 (or ragged rows).

        Refused, checked in this order: ``UnknownTopic``, ``TopicNotOpen``,
        ``NotEligible``, ``InvalidBallot``, ``DuplicateBallot``.
        """
        prefs = _ballot_rows(prefs)
        n = batch_length(topic, voter, t, channel, np.zeros(len(prefs)))
        pre = np.zeros(n, np.int16)
        topic, voter, t = integers(topic, n, pre), integers(voter, n, pre), times(t, n, pre)
        channel = integers(channel, n, pre)
        pre[(pre == 0) & ((channel < 0) | (channel >= _N_CHANNELS))] = Reason.UnknownKind
        channel = np.where(pre == 0, channel, 0).astype(np.int8)
        self._reserve_ballots(self._n_rows + n)
        first_row = self._n_rows
        reasons = np.empty(n, np.int16)
        self._n_rows = _cast_batch(
            self._state, self._method, self._n_options, self._budget, self._costs, self._n_ballots,
            self.n_topics, self._household, self._adult, self.policy.eligibility == "household",
            self.policy.second_ballot == "last_counts", self._slot_topic, self._slot_key,
            self._slot_row, self._b_topic, self._b_voter, self._b_key, self._b_code, self._b_t,
            self._b_channel, self._b_counted, self._n_rows, _unless(pre, topic), voter, prefs, t, channel, reasons)
        reasons = _first(pre, reasons)
        ok = reasons == 0
        with self._unit():  # the events and the sealed ballots are durable together
            if self.log is not None:
                rows = slice(first_row, self._n_rows)
                self.log.detail_many([(tp, f"{_SEALED}{key}", str(code)) for tp, key, code in zip(
                    self._b_topic[rows].tolist(), self._b_key[rows].tolist(), self._b_code[rows].tolist())])
            return self._emit(Outcome(reasons, ev.make(
                ev.EventKind.BallotCast, t[ok], actor=voter[ok], subject=topic[ok], channel=channel[ok])))

    def close_batch(self, topic, t, publish=True) -> Outcome:
        """Close open topics and publish their ballots.

        Each ``TopicClosed`` event records the eligible voters and the ballots
        counted and is followed by the topic's ``BallotCounted`` events (see
        the module docstring); the sealed ballots are erased.  Replay closes
        with ``publish=False`` and takes the published ballots from the log.
        """
        outcome = self._lifecycle(_CLOSE, ev.EventKind.TopicClosed, topic, t, emit=False)
        closed = outcome.events["subject"]
        outcome.events["amount"] = self._eligible[closed]
        outcome.events["extra"] = self._n_ballots[closed]
        if not publish:
            return self._emit(outcome)
        parts = []
        with self._unit():
            for event in outcome.events:
                tp = int(event["subject"])
                rows = self._counted_rows(tp)
                codes = np.sort(self._b_code[rows])
                self._publish(tp, rows, codes)
                parts += [event[None], ev.make(ev.EventKind.BallotCounted, event["t"], subject=tp, code=codes)]
            events = ev.join_records(parts, ev.EVENT_DTYPE) if parts else outcome.events
            return self._emit(Outcome(outcome.reasons, events))

    def resolve_batch(self, topic, t) -> Outcome:
        """Tally closed topics and store each ``TallyResult`` (see ``result``)."""
        outcome = self._lifecycle(_RESOLVE, ev.EventKind.TopicResolved, topic, t, emit=False)
        events = outcome.events
        for i, tp in enumerate(events["subject"].tolist()):
            result = self._results[tp] = self._tally(tp)
            self._winner[tp], self._carried[tp] = result.winner, result.carried
            events["code"][i], events["extra"][i] = result.winner, result.carried
        return self._emit(outcome)

    # ------------------------------------------------------------- one command
    def propose(self, proposer: int, method, n_options: int, t: float = 0.0, budget: int = 0) -> int:
        """Propose one topic (``method`` by name or code); return its id."""
        code = _method_code(method)
        return self.propose_batch([proposer], [code], [n_options], [t], [budget]) \
            .single(f"propose a {METHODS[code]} topic with {n_options} options")

    def add_project(self, topic: int, cost: int, t: float = 0.0) -> int:
        """Cost a budget topic's next project; return its option id."""
        return self.add_projects([topic], [cost], [t]).single(f"add a project to topic {topic}")

    def screen(self, topic: int, passed: bool = True, t: float = 0.0, screener: int = 0) -> None:
        self.screen_batch([topic], [passed], [t], [screener]).single(f"screen topic {topic}")

    def notice(self, topic: int, t: float = 0.0, minutes: int | None = None) -> None:
        self.notice_batch([topic], [t], None if minutes is None else [minutes]).single(f"notice topic {topic}")

    def open(self, topic: int, t: float) -> None:
        self.open_batch([topic], [t]).single(f"open topic {topic}")

    def cast(self, topic: int, voter: int, prefs, t: float = 0.0, channel: int = 0) -> None:
        """Cast one ballot (a sequence of option ids in preference order)."""
        ranks = [as_integer(r) for r in np.ravel(np.asarray(prefs, dtype=object))]
        if None in ranks:  # "1", 1.5 or a nested list is no option id
            raise InvalidBallot(f"a ballot is a list of option ids, got {prefs!r}"[:300])
        ballot = np.array([ranks], np.int64).reshape(1, -1)
        self.cast_batch([topic], [voter], ballot, [t], [channel]) \
            .single(f"ballot {ballot[0].tolist()} by voter {voter} on topic {topic}")

    def close(self, topic: int, t: float) -> None:
        self.close_batch([topic], [t]).single(f"close topic {topic}")

    def resolve(self, topic: int, t: float) -> TallyResult:
        self.resolve_batch([topic], [t]).single(f"resolve topic {topic}")
        return self._results[topic]

    # ------------------------------------------------------------- queries
    def result(self, topic: int) -> TallyResult:
        """The resolved topic's result; ``UnknownTopic`` or ``InvalidTransition`` (not resolved yet)."""
        self._known(topic)
        if topic not in self._results:
            raise InvalidTransition(f"topic {topic} is {STATES[self._state[topic]]}, not resolved")
        return self._results[topic]

    def state(self, topic: int) -> str:
        """The topic's state, one of ``STATES``."""
        self._known(topic)
        return STATES[self._state[topic]]

    def ballots(self, topic: int) -> np.ndarray:
        """The topic's counted ballots (ballots × ``MAX_RANKS``, padded with -1).

        In casting order while the topic is open; from its close on, in the
        order they were published (code order), tied to no voter.
        """
        self._known(topic)
        return unpack_prefs(self._b_code[self._counted_rows(topic)])

    def snapshot(self) -> dict:
        """Everything the desk holds, as numpy arrays and plain values (copies)."""
        n, b = self.n_topics, self._n_rows
        arrays = {
            "topic_state": self._state, "topic_method": self._method, "topic_n_options": self._n_options,
            "topic_budget": self._budget, "topic_proposer": self._proposer,
            "topic_n_projects": self._n_projects, "topic_costs": self._costs,
            "topic_noticed_at": self._noticed_at, "topic_notice_minutes": self._notice_minutes,
            "topic_eligible": self._eligible, "topic_n_ballots": self._n_ballots,
            "topic_winner": self._winner, "topic_carried": self._carried,
        }
        ballots = {
            "ballot_topic": self._b_topic, "ballot_voter": self._b_voter, "ballot_key": self._b_key,
            "ballot_code": self._b_code, "ballot_t": self._b_t, "ballot_channel": self._b_channel,
            "ballot_counted": self._b_counted,
        }
        return {"policy": asdict(self.policy), "n_topics": n, "n_ballot_rows": b,
                **{k: a[:n].copy() for k, a in arrays.items()},
                **{k: a[:b].copy() for k, a in ballots.items()},
                "voter_household": self._household.copy(), "voter_adult": self._adult.copy()}

    def replay(self, events: np.ndarray) -> None:
        """Re-execute the voting commands in ``events`` (other kinds are skipped).

        Start from a fresh desk with the same policy.  A
        command the log accepted but the replay refuses raises ``ValueError``:
        the desk was not in the logged state.
        """
        K = ev.EventKind
        mine = events[np.isin(events["kind"], [int(k) for k in KINDS])]
        for kind, rows in ev.runs(mine):
            t = rows["t"]
            if kind == K.VoterRegistered:
                for run in _unique_runs(rows["actor"]):  # one call per run of distinct voters
                    r = rows[run]
                    self.register_voters(r["actor"], r["target"], r["code"] != 0, r["t"])
                continue
            if kind == K.TopicProposed:
                outcome = self.propose_batch(rows["actor"], rows["code"], rows["amount"], t, rows["extra"])
            elif kind == K.ProjectAdded:
                outcome = self.add_projects(rows["subject"], rows["amount"], t)
            elif kind == K.TopicScreened:
                outcome = self.screen_batch(rows["subject"], rows["extra"], t, rows["actor"])
            elif kind == K.TopicNoticed:
                outcome = self.notice_batch(rows["subject"], t, rows["amount"])
            elif kind == K.TopicOpened:
                outcome = self.open_batch(rows["subject"], t)
            elif kind == K.BallotCast:
                outcome = self.cast_batch(rows["subject"], rows["actor"],
                                          self._sealed_ballots(rows["subject"], rows["actor"]), t, rows["channel"])
            elif kind == K.TopicClosed:
                outcome = self.close_batch(rows["subject"], t, publish=False)
            elif kind == K.BallotCounted:
                outcome = self._unseal(rows)
            else:
                outcome = self.resolve_batch(rows["subject"], t)
            if not outcome.accepted.all():
                raise ValueError(f"replaying {len(rows)} {kind.name} events: {outcome.counts()}; "
                                 "is the policy and the electorate the same as when they were logged?")

    # ------------------------------------------------------------- internals
    def _unit(self):
        return self.log.unit() if self.log is not None else contextlib.nullcontext()

    def _publish(self, topic: int, rows: np.ndarray, codes: np.ndarray) -> None:
        """The topic's counted rows hold ``codes`` (code order), no voter; its sealed ballots are erased."""
        self._b_code[rows] = codes
        every = np.flatnonzero(self._b_topic[: self._n_rows] == topic)
        self._b_voter[every] = -1
        if self.log is not None:
            self.log.detail_many([(topic, f"{_SEALED}{key}", None) for key in sorted(set(self._b_key[every].tolist()))])

    def _unseal(self, rows: np.ndarray) -> Outcome:
        """Replay a run of ``BallotCounted`` events: the published ballots become the counted ones."""
        for tp in dict.fromkeys(rows["subject"].tolist()):
            codes = rows["code"][rows["subject"] == tp]
            counted = self._counted_rows(tp)
            if tp >= self.n_topics or self._state[tp] != CLOSED or len(counted) != len(codes) \
                    or (np.diff(codes) < 0).any():
                raise ValueError(f"{len(codes)} ballots published for topic {tp}, which counted "
                                 f"{len(counted)} and is {STATES[self._state[tp]] if tp < self.n_topics else 'unknown'}")
            self._publish(tp, counted, codes)
        return self._emit(Outcome(np.zeros(len(rows), np.int16), rows.copy()))

    def _sealed_ballots(self, topic, voter) -> np.ndarray:
        """Replay's ballots for ``BallotCast`` rows: the sealed one while the topic is open, else a stand-in.

        A stand-in (the cheapest option alone, valid whenever any ballot was)
        is overwritten by the published ballots when the close is replayed.
        """
        out = np.full((len(topic), MAX_RANKS), -1, np.int64)
        by_household = self.policy.eligibility == "household"
        details = self.log.details if self.log is not None else {}
        for i, (tp, v) in enumerate(zip(topic.tolist(), voter.tolist())):
            known = 0 <= v < len(self._household) and 0 <= tp < self.n_topics
            key = (int(self._household[v]) if by_household else v) if known else v
            sealed = details.get(f"{_SEALED}{key}", {}).get(tp)
            if sealed is not None:
                out[i] = unpack_prefs(np.array([int(sealed)], np.int64))[0]
            elif known:
                n = int(self._n_options[tp])
                out[i, 0] = int(np.argmin(self._costs[tp, :n])) if self._method[tp] == BUDGET else 0
        return out

    def _emit(self, outcome: Outcome) -> Outcome:
        if self.log is not None:
            self.log.append(outcome.events)
        return outcome

    def _known(self, topic: int) -> None:
        if not 0 <= topic < self.n_topics:
            raise UnknownTopic(f"topic {topic} does not exist")

    def _steps(self, op, topic, arg, t, n, pre=None):
        """Run one lifecycle step over a batch; return (reasons, topic column, t column).

        Commands whose inputs are malformed (``pre``, then the columns' own
        checks) are refused before the kernel sees them.
        """
        pre = np.zeros(n, np.int16) if pre is None else pre
        topic, arg, t = integers(topic, n, pre), integers(arg, n, pre), times(t, n, pre)
        reasons = np.empty(n, np.int16)
        eligible_now = self.eligible_count() if op == _CLOSE else 0
        _step_batch(op, self._state, self._method, self._n_options, self._n_projects, self._noticed_at,
                    self._notice_minutes, self._eligible, self.n_topics, _unless(pre, topic), arg, t,
                    self.policy.notice_minutes, eligible_now, reasons)
        return _first(pre, reasons), topic, t

    def _lifecycle(self, op, kind, topic, t, emit=True) -> Outcome:
        n = batch_length(topic, t)
        reasons, topic, t = self._steps(op, topic, np.zeros(n, np.int64), t, n)
        ok = reasons == 0
        outcome = Outcome(reasons, ev.make(kind, t[ok], subject=topic[ok]))
        return self._emit(outcome) if emit else outcome

    def _counted_rows(self, topic):
        b = self._n_rows
        return np.flatnonzero((self._b_topic[:b] == topic) & self._b_counted[:b])

    def _tally(self, topic) -> TallyResult:
        n_options = int(self._n_options[topic])
        p = self.policy
        return _tally_prefs(int(self._method[topic]), self.ballots(topic), n_options,
                            self._costs[topic, :n_options], int(self._budget[topic]), p.threshold,
                            p.quorum, int(self._eligible[topic]), p.tie_break, p.seed, topic)

    def _reserve_topics(self, need):
        for name in ("_state", "_method", "_n_options", "_budget", "_proposer", "_n_projects", "_costs",
                     "_noticed_at", "_notice_minutes", "_eligible", "_n_ballots", "_carried"):
            setattr(self, name, grow(getattr(self, name), need))
        self._winner = grow(self._winner, need, fill=-1)

    def _reserve_ballots(self, need):
        for name in ("_b_topic", "_b_voter", "_b_key", "_b_code", "_b_t", "_b_channel", "_b_counted"):
            setattr(self, name, grow(getattr(self, name), need))
        if 2 * need > len(self._slot_topic):
            size = 1 << (4 * need - 1).bit_length()
            self._slot_topic = np.full(size, -1, np.int64)
            self._slot_key = np.zeros(size, np.int64)
            self._slot_row = np.zeros(size, np.int64)
            _index_ballots(self._b_topic, self._b_key, self._b_counted, self._n_rows,
                           self._slot_topic, self._slot_key, self._slot_row)


__all__ = ["METHODS", "STATES", "MAX_RANKS", "MAX_OPTIONS", "KINDS", "VotingPolicy", "VotingDesk",
           "TallyResult", "tally", "pack_prefs", "unpack_prefs"]


def _unless(refused: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``ids`` with -1 where a command is already refused: the kernel then refuses it, changing nothing."""
    return np.where(refused == 0, ids, -1)


def _first(refused: np.ndarray, reasons: np.ndarray) -> np.ndarray:
    """The input check's reason where there is one, else the kernel's."""
    return np.where(refused != 0, refused, reasons).astype(np.int16)


def _unique_runs(ids: np.ndarray):
    """Split positions 0..n-1 into consecutive runs in which no id repeats (register calls refuse repeats)."""
    start, seen = 0, set()
    for i, v in enumerate(ids.tolist()):
        if v in seen:
            yield slice(start, i)
            start, seen = i, set()
        seen.add(v)
    if len(ids):
        yield slice(start, len(ids))
