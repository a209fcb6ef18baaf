"""Group commit through the services' batch methods: a run of earns is one ``earn_batch`` call, answered as one by one.

The committer hands contiguous commands of one batchable operation (points
earn, redeem, penalise; time-bank record, confirm) to :mod:`twin.live.batching`,
which applies them with one call of the batch method.  These tests hold it to
the one-by-one path:

- at the committer: random command sequences (hypothesis) — earns, redeems,
  penalties, time-bank records and confirmations with duplicates, unknown
  residents, members, records and activities, bad amounts,
  values of the wrong type, repeated ``Idempotency-Key``s, callers known or
  looked up by token (unknown tokens too), mixed with other operations and
  reads — give the same answers, event log, kept details and state batched as
  one by one (one transaction a command); a mutation (rows' outcomes handed to
  the wrong commands) is caught by the same comparison;
- through the real server over sockets: concurrent requests held until all
  have reached the writer, so they share one batch, get the answers and leave
  the store a second server fed the same commands one at a time gets;
  ``/api/v1/health`` shows the runs applied with one batch call; the same
  mutation fails this comparison too;
- the failure guarantees with runs in the batch: a failed commit answers every
  command 503 and leaves memory equal to the store; a bug inside a run, or in
  one command beside a run, costs only the command at fault.
"""
import asyncio
import collections
import threading
import time
from concurrent.futures import Future
from unittest import mock

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.live import accounts as acc
from twin.live import batching
from twin.live.app import request_model
from twin.live.batching import OperationCommand
from twin.live.committer import GroupCommitter
from twin.live.operations import OPERATIONS
from twin.services.community import Points, Services, open_services
from twin.services.store import EventStore

from conftest import assert_state_equal
from live_helpers import Server

OPS = {op.name: op for op in OPERATIONS}
RESIDENTS = (0, 1, 2, 3)
STAFF = acc.Principal("coordinator", 2)
TOKEN = "tok-coordinator"  # the account's token, made the same in both communities


# ------------------------------------------------------------------- the committer, batched vs one by one
def _community() -> Services:
    services = Services()
    services.points.enroll_batch(list(RESIDENTS))
    services.points.earn_batch(list(RESIDENTS), 2, 0, 10)  # 300 points each: something to redeem
    for member in (2, 3, 4, 5):  # members 0 and 1 are the time bank's own (its admin, its endowment)
        services.timebank.register(member)
        services.timebank.endow(member, 90)  # enough to pay for some help received, not all
    with mock.patch.object(acc.secrets, "token_urlsafe", return_value=TOKEN):
        acc.add_account(services, "coordinator", 2)
    return services


def _stepping_clock():
    """Live time that moves on at every reading (a day apart every other reading), the same in both runs."""
    readings = iter(range(10**9))
    return lambda: 720.0 * next(readings)


_resident = st.sampled_from(RESIDENTS + (9, -1))
_member = st.sampled_from([("who", STAFF), ("token", TOKEN)] + [("who", acc.Principal("resident", m)) for m in (3, 4, 5)])
_key = st.sampled_from([None, None, "a", "b"])
_who = st.sampled_from([("who", STAFF), ("who", acc.Principal("admin", 3)), ("who", acc.Principal("resident", 1)),
                        ("token", TOKEN), ("token", "no-such-token")])
_earn = st.tuples(st.just("points.earn"), st.fixed_dictionaries({"resident": _resident}),
                  st.fixed_dictionaries({"activity": st.sampled_from([0, 1, 3, 7, "volunteer_service", "nope", 1.5,
                                                                      True, None, [1], {"x": 1}]),
                                         "occurrence": st.integers(0, 3),
                                         "units": st.sampled_from([1, 2, 0, -1, 10**20])}), _key, _who)
_redeem = st.tuples(st.just("points.redeem"), st.fixed_dictionaries({"resident": _resident}),
                    st.fixed_dictionaries({"item": st.sampled_from([0, 1, 3, 9, "supermarket_voucher_10_yuan",
                                                                    "nothing", [0]])}), _key, _who)
_penalise = st.tuples(st.just("points.penalise"), st.fixed_dictionaries({"resident": _resident}),
                      st.fixed_dictionaries({"amount": st.sampled_from([1, 50, 400, 0, -3]),
                                             "cause": st.sampled_from([0, 1])}), _key, _who)
_record = st.tuples(st.just("timebank.record"), st.just({}),
                    st.fixed_dictionaries({"provider": _resident, "receiver": _resident,
                                           "minutes": st.sampled_from([30, 60, 0, -5, 10**20, 1.5]),
                                           "kind": st.sampled_from([0, 1, "other", "nope"])}), _key, _member)
_confirm = st.tuples(st.just("timebank.confirm"), st.fixed_dictionaries({"record": st.integers(0, 4)}),
                     st.just({}), _key, _member)
_other = st.tuples(st.sampled_from(["points.enroll", "points.balance"]),
                   st.fixed_dictionaries({"resident": st.sampled_from([1, 4, 5, 9])}), st.just({}), _key, _who)
_command = st.one_of(_earn, _earn, _earn, _redeem, _penalise, _record, _record, _confirm, _confirm, _other,
                     st.just("read"))


def _commands(specs, clock) -> list:
    out = []
    for spec in specs:
        if spec == "read":
            out.append(lambda s: (200, s.points.resident_balances().tolist()))  # a plain command, as pages send
            continue
        name, args, payload, key, (kind, caller) = spec
        op = OPS[name]
        out.append(OperationCommand(op, dict(args), dict(payload), key if op.http == "POST" else None, clock,
                                    **{kind: caller}))
    return out


def _gated_batch(committer, commands) -> list:
    """Submit ``commands`` while the writer is held, so that they all reach it as one batch; their outcomes."""
    gate = threading.Event()
    committer.submit(lambda s: gate.wait(60))
    futures = [committer.submit(command) for command in commands]
    gate.set()
    return [_outcome(f) for f in futures]


def _outcome(future: Future):
    error = future.exception(60)
    return ("raised", type(error).__name__, str(error)) if error is not None else future.result()


def _run_both(specs, clock=_stepping_clock):
    """The same commands on two fresh communities: batched (one batch) and one transaction each.

    ``clock()`` makes each side's clock."""
    batched, alone = _community(), _community()
    together = GroupCommitter(batched, window_s=0.05, max_batch=512)
    one_by_one = GroupCommitter(alone, window_s=0, max_batch=1)
    try:
        answers = _gated_batch(together, _commands(specs, clock()))
        expected = [_outcome(one_by_one.submit(c)) for c in _commands(specs, clock())]
    finally:
        together.stop()
        one_by_one.stop()
    return (answers, batched, together), (expected, alone)


def _assert_same(batched_side, alone_side):
    (answers, batched, _), (expected, alone) = batched_side, alone_side
    assert len(answers) == len(expected)
    for i, (got, want) in enumerate(zip(answers, expected)):
        assert got == want, f"command {i}: batched {got!r}, one by one {want!r}"
    assert np.array_equal(batched.log.events, alone.log.events), "the event logs differ"
    assert batched.log.details == alone.log.details, "the kept details (idempotency answers) differ"
    assert_state_equal(batched.snapshot(), alone.snapshot())


@settings(max_examples=60)
@given(st.lists(_command, min_size=1, max_size=40))
def test_a_batch_of_random_commands_ends_as_one_by_one(specs):
    batched_side, alone_side = _run_both(specs)
    _assert_same(batched_side, alone_side)


def test_runs_are_applied_with_one_batch_call_each(monkeypatch):
    """A batch of 30 earns with a retry in the middle: two ``earn_batch`` calls, not 30."""
    calls = []
    earn_batch = Points.earn_batch
    monkeypatch.setattr(Points, "earn_batch", lambda self, *a, **k: calls.append(len(a[0])) or earn_batch(self, *a, **k))
    who = ("who", STAFF)
    specs = [("points.earn", {"resident": 0 if i in (10, 20) else i % 4},
              {"activity": 0, "occurrence": i, "units": 1}, "k" if i in (10, 20) else None, who) for i in range(30)]
    (answers, batched, committer), alone_side = _run_both(specs)
    _assert_same((answers, batched, committer), alone_side)
    # the run is applied before the retry (key "k" again at 20) looks for its first answer; besides the
    # communities' seeding (4 rows each), every other call is the one-by-one side's batch of one
    assert sorted(n for n in calls if n > 1) == [4, 4, 9, 20]
    assert committer.batched_runs == 2 and committer.batched_commands == 29
    assert answers[20] == answers[10] == (201, 10)


def _rotated(batch):
    def mixed_up(self, rows):
        outcomes = batch(self, rows)
        return outcomes[1:] + outcomes[:1]  # each command reads its neighbour's row
    return mixed_up


def test_the_comparison_catches_a_batching_that_hands_rows_to_the_wrong_commands(monkeypatch):
    monkeypatch.setattr(batching._Run, "_batch", _rotated(batching._Run._batch))
    who = ("who", STAFF)
    specs = [("points.earn", {"resident": r}, {"activity": 0, "occurrence": 1, "units": 1}, None, who)
             for r in (0, 9, 1)]  # the unknown resident's refusal lands on another command
    with pytest.raises(AssertionError, match="command 0"):
        _assert_same(*_run_both(specs))


# ------------------------------------------------------------------- failures with runs in the batch
def test_a_bug_inside_a_run_costs_nothing_but_a_bug_in_one_command_costs_that_command(monkeypatch):
    real = Points.earn_batch

    def buggy(self, *columns, **named):
        if len(columns[0]) > 1 and threading.current_thread().name == "group-commit":
            raise RuntimeError("a bug in the batched path")
        return real(self, *columns, **named)

    monkeypatch.setattr(Points, "earn_batch", buggy)
    who = ("who", STAFF)
    specs = [("points.earn", {"resident": r}, {"activity": 0, "occurrence": 5, "units": 1}, None, who)
             for r in (0, 1, 1, 9)]
    # applied again, a command reads the clock again: a clock that stands still keeps the logs comparable
    (answers, batched, committer), alone_side = _run_both(specs, clock=lambda: (lambda: 60.0))
    _assert_same((answers, batched, committer), alone_side)  # every command applied again, alone
    assert committer.batched_runs == 0
    monkeypatch.undo()

    def broken(services):
        raise KeyError("a bug in this command")

    services = _community()
    committer = GroupCommitter(services, window_s=0.05)
    try:
        commands = _commands(specs[:2], _stepping_clock()) + [broken] + _commands(specs[2:], _stepping_clock())
        outcomes = _gated_batch(committer, commands)
    finally:
        committer.stop()
    assert outcomes[2] == ("raised", "KeyError", "'a bug in this command'")
    assert [o[0] for o in outcomes[:2] + outcomes[3:]] == [201, 201, 409, 404]


# ------------------------------------------------------------------- through the real server
def _server_requests():
    """Many earns — duplicates, unknown residents, bad amounts and activities, repeated keys — among other
    operations: ``(method, path, body, key, role)``, every one allowed to its role (so each reaches the writer).
    Bodies are sent whole (defaults written out), as the writer sees them."""
    out = []

    def post(name, path, body, key, role):
        model, _ = request_model(OPS[name])
        out.append(("POST", path, model.model_validate(body).model_dump(), key, role))

    for i in range(120):
        resident = (1, 2, 3, 4, 99)[i % 5]  # 99: never enrolled
        key = f"phone-{i % 7}" if i % 3 == 0 else None  # the same key again: a retry
        units = {0: 0, 1: -2, 2: 10**20}.get(i % 17, 1 + i % 3)
        activity = {5: "volunteer_service", 6: "nope", 7: 1.5}.get(i % 11, i % 4)
        post("points.earn", f"/points/residents/{resident}/earn",
             {"activity": activity, "occurrence": i % 9, "units": units}, key, "coordinator")
        if i % 10 == 4:
            post("points.redeem", f"/points/residents/{resident}/redeem", {"item": i % 2}, None, "coordinator")
        if i % 10 == 7:
            post("points.penalise", f"/points/residents/{resident}/penalise", {"amount": 40}, key, "admin")
        if i % 15 == 8:
            post("repair.submit", "/repair/tickets", {"category": "plumbing", "description": f"leak {i}",
                                                      "building": 1, "unit": 101}, None, "resident")
        if i % 12 == 3:
            out.append(("GET", f"/points/residents/{resident}/balance", None, None, "coordinator"))
    return out


def _prepared(path):
    server = Server(path, clock=lambda: 1440.0)
    server.services.points.enroll_batch([1, 2, 3, 4])
    server.services.points.earn_batch([1, 2, 3, 4], 2, 0, 3)
    for role, id in (("coordinator", 2), ("admin", 3), ("resident", 1)):
        server.account(role, id)
    return server


def _send(server, requests, concurrently: bool):
    """Answers to ``requests``, as ``(status, body)``: all at once, or one at a time."""
    async def one(client, method, path, body, key, role):
        headers = {"Authorization": f"Bearer {server.tokens[(role, {'coordinator': 2, 'admin': 3}.get(role, 1))]}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = await client.request(method, server.url + path, json=body, headers=headers)
        return response.status_code, response.json()

    async def everything():
        limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            if concurrently:
                return await asyncio.gather(*(one(client, *r) for r in requests))
            return [await one(client, *r) for r in requests]

    return asyncio.run(everything())


def _hold_writer_until(committer, n: int):
    """Hold the writer until ``n`` commands have reached it (so they share one batch); their arrival order."""
    arrived = []
    submit = committer.submit

    def recording(command, future=None):
        arrived.append(command)
        return submit(command, future)

    def gate(services):
        deadline = time.monotonic() + 120
        while len(arrived) < n and time.monotonic() < deadline:
            time.sleep(0.005)

    submit(gate)
    committer.submit = recording
    return arrived


def _as_request(command):
    """The request that made ``command`` (its caller's role picks the token)."""
    op = command.op
    path = op.path.format(**command.args)
    body = command.payload if op.http == "POST" else None
    return op.http, path, body, command.key, command.who.role


def test_concurrent_requests_in_one_batch_answer_and_log_as_one_at_a_time(tmp_path):
    _compare_batched_server_with_one_at_a_time(tmp_path)


def test_the_server_comparison_catches_a_batching_that_hands_rows_to_the_wrong_commands(tmp_path, monkeypatch):
    monkeypatch.setattr(batching._Run, "_batch", _rotated(batching._Run._batch))
    with pytest.raises(AssertionError, match="answers differ"):
        _compare_batched_server_with_one_at_a_time(tmp_path)


def _compare_batched_server_with_one_at_a_time(tmp_path):
    """Concurrent requests in one batch against a second server fed the same commands one at a time."""
    requests = _server_requests()
    with _prepared(tmp_path / "together.db") as together:
        committer = together.app.state.committer
        batches = committer.batches
        arrived = _hold_writer_until(committer, len(requests))
        answers = _send(together, requests, concurrently=True)
        health = together.client().get("/health").json()
        assert len(arrived) == len(requests) and committer.batches == batches + 2  # the gate, then everything
        assert health["batched_runs"] > 0 and health["batched_commands"] > len(requests) // 2, health
        in_arrival_order = [_as_request(c) for c in arrived]
    with _prepared(tmp_path / "alone.db") as alone:
        expected = _send(alone, in_arrival_order, concurrently=False)
        assert alone.app.state.committer.batched_runs == 0  # one at a time: nothing to run together
    # the same request may be sent twice (a duplicate, a retry): answers are compared as request -> answers
    assert _by_request(requests, answers) == _by_request(in_arrival_order, expected), "answers differ"
    assert {status for status, _ in answers} >= {201, 200, 404, 409, 422}
    with EventStore(tmp_path / "together.db", readonly=True) as a, EventStore(tmp_path / "alone.db",
                                                                                 readonly=True) as b:
        assert np.array_equal(a.load(), b.load()) and len(a.load()) > 50
    with open_services(tmp_path / "together.db", readonly=True) as a, \
            open_services(tmp_path / "alone.db", readonly=True) as b:
        assert_state_equal(a.snapshot(), b.snapshot())
        assert {f: t for f, t in a.log.details.items() if f.startswith("idem/")} == \
               {f: t for f, t in b.log.details.items() if f.startswith("idem/")}


def _by_request(requests, answers) -> dict:
    out = collections.defaultdict(collections.Counter)
    for (method, path, body, key, role), (status, content) in zip(requests, answers):
        out[(method, path, repr(sorted((body or {}).items())), key, role)][(status, repr(content))] += 1
    return dict(out)


def test_a_failed_commit_of_a_batch_with_runs_answers_503_and_memory_equals_the_store(tmp_path):
    with _prepared(tmp_path / "c.db") as server:
        services = server.services

        def full_disk(events, details):
            raise OSError(28, "No space left on device")

        requests = [("POST", f"/points/residents/{1 + i % 4}/earn", {"activity": 0, "occurrence": 100 + i},
                     f"k{i}", "coordinator") for i in range(40)]
        arrived = _hold_writer_until(server.app.state.committer, len(requests))
        services.log.sinks.insert(0, full_disk)
        answers = _send(server, requests, concurrently=True)
        services.log.sinks.remove(full_disk)
        assert len(arrived) == len(requests)
        assert {status for status, _ in answers} == {503}
        assert {body["title"] for _, body in answers} == {"not-recorded"}
        with EventStore(server.path, readonly=True) as reader:
            assert np.array_equal(reader.load(), services.log.events)
        with open_services(server.path, readonly=True) as stored:
            assert_state_equal(stored.snapshot(), services.snapshot())
        # nothing was kept, not even the keys' answers: the retries apply now
        retried = _send(server, requests, concurrently=False)
        assert {status for status, _ in retried} == {201}
