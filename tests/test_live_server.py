"""The production server over real sockets: uvicorn on 127.0.0.1, an HTTP client, a SQLite store.

Covers the whole chain a resident's phone exercises: tokens and roles, every
route against every role, refusals as problem documents, group commit
(concurrent requests decided as if one by one, fewer commits than
commands), idempotent retries that survive a restart, a failed commit that
answers 503 and leaves memory equal to the store, and the one-writer rule.
"""
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from twin.live.operations import OPERATIONS
from twin.services.community import open_services
from twin.services.events import EventKind
from twin.services.store import EventStore, StoreLocked

from live_helpers import Server

ROLES = ("resident", "technician", "social_worker", "coordinator", "admin")


@pytest.fixture
def server(tmp_path):
    with Server(tmp_path / "community.db") as srv:
        yield srv


def _is_problem(response, status, title=None):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["type"].endswith(body["title"])
    if title is not None:
        assert body["title"] == title, body


# ------------------------------------------------------------------- a ticket's life
def test_a_resident_reports_a_technician_completes_and_the_resident_rates(server):
    li = server.client(server.account("resident", 17))
    wang = server.client(server.account("resident", 18))
    office = server.client(server.account("coordinator", 2))
    tech = server.client(server.account("technician", 0))
    ticket = li.post("/repair/tickets", json={"category": "plumbing", "description": "leak under the sink",
                                               "building": 3, "unit": 402, "contact": "138-0000-0000"})
    assert ticket.status_code == 201
    tid = ticket.json()["id"]
    _is_problem(li.post(f"/repair/tickets/{tid}/dispatch", json={"worker": 0}), 403, "Unauthorized")
    _is_problem(office.post(f"/repair/tickets/{tid}/dispatch", json={"worker": 9}), 404, "UnknownWorker")  # no account
    assert office.post(f"/repair/tickets/{tid}/dispatch", json={"worker": 0}).status_code == 201
    _is_problem(li.post(f"/repair/tickets/{tid}/rate", json={"rating": 5}), 409, "InvalidTransition")
    assert tech.post(f"/repair/tickets/{tid}/start").status_code == 201
    assert tech.post(f"/repair/tickets/{tid}/complete").status_code == 201
    _is_problem(wang.post(f"/repair/tickets/{tid}/rate", json={"rating": 1}), 403, "Unauthorized")  # not theirs
    _is_problem(li.post(f"/repair/tickets/{tid}/rate", json={"rating": 4.5}), 422)
    assert li.post(f"/repair/tickets/{tid}/rate", json={"rating": 5, "comment": "quick"}).status_code == 201
    _is_problem(li.post(f"/repair/tickets/{tid}/rate", json={"rating": 5}), 409, "AlreadyRated")
    mine, theirs = li.get(f"/repair/tickets/{tid}").json(), wang.get(f"/repair/tickets/{tid}").json()
    assert (mine["status"], mine["rating"], mine["contact"]) == ("rated", 5, "138-0000-0000")
    assert theirs["contact"] is None and theirs["description"] == "leak under the sink"
    page = office.get("/repair/tickets", params={"status": "rated"}).json()
    assert page["total"] == 1 and page["data"][0]["contact"] == "138-0000-0000"
    # the event feed carries ids, never the free text
    feed = office.get("/events", params={"after": 0}).json()
    assert [e["kind"] for e in feed["events"]] == ["TicketSubmitted", "TicketDispatched", "TicketStarted",
                                                    "TicketCompleted", "TicketRated"]
    assert "leak" not in str(feed) and "138-0000" not in str(feed)
    _is_problem(li.get("/events"), 403)


def test_no_credentials_or_a_wrong_token_is_401(server):
    _is_problem(server.client().get("/repair/tickets"), 401, "unauthenticated")
    _is_problem(server.client("not-a-token").get("/repair/tickets"), 401, "unauthenticated")


def test_bad_bodies_are_problems_and_change_nothing(server):
    li = server.client(server.account("resident", 17))
    before = len(server.services.log)
    for body in ({"category": "plumbing"}, {"category": "plumbing", "description": "x", "building": "three",
                                            "unit": 1}, {"unknown": 1}, [1, 2], {"category": "spaceship",
                                                                                  "description": "x",
                                                                                  "building": 1, "unit": 1}):
        response = li.post("/repair/tickets", json=body)
        assert 400 <= response.status_code < 500, (body, response.text)
        _is_problem(response, response.status_code)
    _is_problem(li.post("/repair/tickets", content=b"{not json", headers={"content-type": "application/json"}), 422)
    huge = li.post("/repair/tickets", content=b"x" * 200_000, headers={"content-type": "application/json"})
    _is_problem(huge, 413)
    assert len(server.services.log) == before


# ------------------------------------------------------------------- every route, every role
def _prepare(server):
    """A small community in which every route has a subject that its allowed roles may act on."""
    s = server.services
    s.points.enroll(17)
    s.points.earn(17, 0, occurrence=1)
    s.timebank.register(17)
    s.timebank.register(18)
    for role, id in STAFF_IDS.items():
        s.timebank.register(id, role="coordinator" if role in ("coordinator", "admin") else "member")
    ticket = s.repair.submit("plumbing", "leak", building=1, unit=101, reporter=17)
    s.repair.dispatch(ticket, STAFF_IDS["technician"])
    s.voting.register_voters([17, 18], [1, 2], [True, True])
    topic = s.voting.propose(17, "plurality", 2)
    return {"ticket": ticket, "topic": topic, "record": 0, "resident": 17, "member": 17}


STAFF_IDS = {"technician": 4, "social_worker": 5, "coordinator": 6, "admin": 7}

_BODIES = {
    "repair.submit": {"category": "plumbing", "description": "leak", "building": 1, "unit": 101},
    "repair.dispatch": {"worker": 4}, "repair.rate": {"rating": 5},
    "points.earn": {"activity": 0, "occurrence": 9}, "points.redeem": {"item": 0},
    "points.penalise": {"amount": 1},
    "timebank.register": {"member": 40}, "timebank.record": {"provider": 17, "receiver": 18, "minutes": 30},
    "timebank.resolve": {"uphold": True}, "timebank.endow": {"minutes": 10},
    "voting.propose": {"method": "plurality", "n_options": 2}, "voting.add_project": {"cost": 10},
    "voting.cast": {"prefs": [0]},
}


@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_every_role_allowed_or_refused_nothing_in_between(tmp_path, role):
    with Server(tmp_path / "roles.db") as server:
        subjects = _prepare(server)
        me = {"resident": 17, **STAFF_IDS}[role]
        client = server.client(server.account(role, me))
        for op in OPERATIONS:
            path = op.path.format(**subjects)
            before = len(server.services.log)
            response = client.request(op.http, path, json=_BODIES.get(op.name) if op.http == "POST" else None)
            assert response.status_code not in (401, 500), (op.name, response.text)
            gate = f"{op.name} is for "  # the role gate's refusal; the services' own rules say other things
            if role not in op.roles:
                _is_problem(response, 403, "Unauthorized")
                assert response.json()["detail"].startswith(gate), response.text
                assert len(server.services.log) == before, op.name
            elif response.status_code >= 400:
                assert not response.json()["detail"].startswith(gate), (op.name, role, response.text)


def test_the_openapi_document_lists_every_operation(server):
    document = httpx.get(f"http://127.0.0.1:{server.port}/openapi.json").json()
    names = {(method.upper(), "/api/v1" + op.path) for op in OPERATIONS for method in [op.http]}
    listed = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert names <= listed
    submit = document["paths"]["/api/v1/repair/tickets"]["post"]
    schema = submit["requestBody"]["content"]["application/json"]["schema"]
    ref = schema.get("$ref") or next(s["$ref"] for s in schema["anyOf"] if "$ref" in s)  # an optional body
    schema = ref.rsplit("/", 1)[1]
    fields = document["components"]["schemas"][schema]["properties"]
    assert {"category", "description", "building", "unit", "contact"} <= set(fields) and "t" not in fields


# ------------------------------------------------------------------- group commit
def test_concurrent_requests_are_group_committed_and_decided_as_one_by_one(server, same_state):
    office_token = server.account("coordinator", 2)
    server.services.points.enroll_batch(np.arange(20))
    # 200 claims, each occurrence sent twice: exactly one of each pair is accepted
    claims = [(r % 20, occ) for occ in range(100) for r in (occ, occ)]

    def claim(args):
        resident, occurrence = args
        with server.client(office_token) as c:
            return c.post(f"/points/residents/{resident}/earn", json={"activity": 0, "occurrence": occurrence})

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(claim, claims))
    codes = [a.status_code for a in answers]
    assert codes.count(201) == 100 and codes.count(409) == 100
    assert all(a.json()["title"] == "DuplicateClaim" for a in answers if a.status_code == 409)
    committer = server.app.state.committer
    assert committer.batches < committer.commands  # several commands shared a commit
    with EventStore(server.path, readonly=True) as reader:
        stored = reader.load()
    assert np.array_equal(stored, server.services.log.events)
    assert (stored["kind"] == EventKind.PointsEarned).sum() == 100
    # the same commands one by one give the same state
    from twin.services.community import Services

    one_by_one = Services()
    one_by_one.replay(stored)
    same_state(one_by_one.snapshot(), server.services.snapshot())


def test_a_failed_commit_answers_503_and_memory_stays_equal_to_the_store(server, same_state):
    office = server.client(server.account("coordinator", 2))
    server.services.points.enroll_batch(np.arange(3))
    conn = server.services.store.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")
    statuses = []
    for occurrence in range(400):
        r = office.post("/points/residents/1/earn", json={"activity": 0, "occurrence": occurrence})
        statuses.append(r.status_code)
        if r.status_code == 503:
            _is_problem(r, 503, "not-recorded")
            break
    assert statuses[-1] == 503
    with EventStore(server.path, readonly=True) as reader:
        assert np.array_equal(reader.load(), server.services.log.events)
    conn.execute("PRAGMA max_page_count=1073741823")
    assert office.post("/points/residents/1/earn", json={"activity": 0, "occurrence": occurrence}).status_code == 201


# ------------------------------------------------------------------- idempotency
def test_a_retry_with_the_same_key_gets_the_first_answer_even_after_a_restart(tmp_path):
    path = tmp_path / "idem.db"
    with Server(path) as server:
        token = server.account("resident", 17)
        li = server.client(token)
        body = {"category": "plumbing", "description": "leak", "building": 1, "unit": 101}
        first = li.post("/repair/tickets", json=body, headers={"Idempotency-Key": "phone-42"})
        again = li.post("/repair/tickets", json=body, headers={"Idempotency-Key": "phone-42"})
        other = li.post("/repair/tickets", json=body, headers={"Idempotency-Key": "phone-43"})
        assert first.json() == again.json() == {"id": 0} and other.json() == {"id": 1}
        refused = li.post("/repair/tickets/0/rate", json={"rating": 5}, headers={"Idempotency-Key": "r"})
        _is_problem(refused, 409)
    with Server(path) as server:
        li = server.client(token)  # the account survived too
        after = li.post("/repair/tickets", json=body, headers={"Idempotency-Key": "phone-42"})
        assert after.status_code == 201 and after.json() == {"id": 0}
        assert server.services.repair.n_tickets == 2


# ------------------------------------------------------------------- one writer
def test_a_second_writer_beside_the_server_is_refused(server):
    with pytest.raises(StoreLocked, match="already open for writing"):
        open_services(server.path)
    with open_services(server.path, readonly=True) as looking:
        assert len(looking.log) == len(server.services.log)


def test_concurrent_retries_with_one_key_apply_once_and_a_key_belongs_to_its_route(server):
    li = server.client(server.account("resident", 17))
    body = {"category": "plumbing", "description": "leak", "building": 1, "unit": 101}

    def post(_):
        with server.client(server.tokens[("resident", 17)]) as c:
            return c.post("/repair/tickets", json=body, headers={"Idempotency-Key": "same"})

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(32)))
    assert {a.status_code for a in answers} == {201} and {a.json()["id"] for a in answers} == {0}
    assert server.services.repair.n_tickets == 1
    # the same, certain to share one commit: two commands queued back to back reach the writer together
    from twin.live.accounts import Principal
    from twin.live.app import _answer

    submit = next(op for op in OPERATIONS if op.name == "repair.submit")
    me = Principal("resident", 17)
    committer = server.app.state.committer
    batches = committer.batches
    twins = [committer.submit(lambda s: _answer(s, submit, me, {}, body, 1.0, "twice")) for _ in range(2)]
    assert [f.result(30) for f in twins] == [(201, {"id": 1})] * 2
    assert committer.batches == batches + 1 and server.services.repair.n_tickets == 2
    other = li.post("/repair/tickets/0/cancel", headers={"Idempotency-Key": "same"})  # another route
    assert other.status_code == 201 and server.services.repair.get(0)["status"] == "cancelled"
