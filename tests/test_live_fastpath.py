"""The fast path for API operations answers every request exactly as FastAPI's routes do.

Two servers over identical in-memory services, one with the fast path and one
without, get the same sequence of requests — accepted commands, refusals by
the services, refusals the fast path must leave to the application (wrong
role, malformed or oversized bodies, bad ids, long idempotency keys, query
strings) — and must give byte-identical answers.  The fast path must also have
answered the well-formed ones itself, or the comparison would prove nothing.
"""
import asyncio
import json

import httpx
import pytest

from twin.live.accounts import add_account
from twin.live.app import MAX_BODY_BYTES, create_app
from twin.live.fastpath import OperationFastPath
from twin.services.community import Services

EARN = "/api/v1/points/residents/{}/earn"


def _server(fast_path: bool):
    """A server over in-memory services (``tests/test_live_fronts.py`` seeds its store the same way)."""
    services = Services()
    with services.unit():
        services.points.enroll_batch(list(range(100, 110)))
        services.timebank.register(6, role="coordinator")
        services.repair.submit("plumbing", "a leak", building=1, unit=101, reporter=100)
    tokens = {role: add_account(services, role, id)
              for role, id in (("coordinator", 6), ("resident", 100), ("technician", 4))}
    return create_app(services, clock=lambda: 1.0, fast_path=fast_path), tokens


def _requests(tokens):
    """``(method, path, headers, body bytes)``, each a request to both servers."""
    c, r, t = (f"Bearer {tokens[k]}" for k in ("coordinator", "resident", "technician"))
    js = {"Content-Type": "application/json"}

    def earn(resident, body, auth=c, **headers):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return "POST", EARN.format(resident), {"Authorization": auth, **js, **headers}, raw

    return [
        earn(100, {"activity": 0, "occurrence": 1}),                     # accepted
        earn(100, {"activity": 0, "occurrence": 1}),                     # DuplicateClaim (409)
        earn(100, {"activity": "volunteer_service", "occurrence": 2}),   # by name
        earn(999, {"activity": 0, "occurrence": 3}),                     # UnknownAccount (404)
        earn(100, {"activity": 0, "occurrence": 10 ** 30}),              # a huge number
        earn(100, {"activity": 0, "occurrence": 4}, auth=r),             # wrong role (403)
        earn(100, {"activity": 0}),                                      # missing field (422)
        earn(100, {"activity": 0, "occurrence": 5, "extra": 1}),         # unknown field (422)
        earn(100, b'{"activity": 0, "occurrence": '),                    # malformed JSON (422)
        earn(100, b"[1, 2]"),                                            # not an object (422)
        earn(100, b""),                                                  # no body (422)
        earn(100, {"activity": 0, "occurrence": 6}, **{"Content-Type": "text/plain"}),
        earn(100, {"activity": 0, "occurrence": 7}, auth="Bearer not-a-token"),   # 401
        earn(100, {"activity": 0, "occurrence": 8}, auth="Basic abc"),            # 401
        earn(100, {"activity": 0, "occurrence": 9}, **{"Idempotency-Key": "k1"}),
        earn(100, {"activity": 0, "occurrence": 9}, **{"Idempotency-Key": "k1"}),  # the first answer again
        earn(100, {"activity": 0, "occurrence": 10}, **{"Idempotency-Key": "k" * 201}),  # too long (422)
        earn(100, b'{"activity": 0, "occurrence": 11, "pad": "' + b"x" * MAX_BODY_BYTES + b'"}'),  # 413
        ("POST", "/api/v1/points/residents/abc/earn", {"Authorization": c, **js}, b'{"activity":0,"occurrence":1}'),
        ("GET", "/api/v1/points/residents/100/balance", {"Authorization": r}, b""),
        ("GET", "/api/v1/points/residents/101/balance", {"Authorization": r}, b""),  # not theirs (403)
        ("GET", "/api/v1/repair/tickets", {"Authorization": r}, b""),
        ("GET", "/api/v1/repair/tickets?page=1&limit=1", {"Authorization": r}, b""),
        ("GET", "/api/v1/repair/tickets/0", {"Authorization": t}, b""),
        ("POST", "/api/v1/repair/tickets", {"Authorization": r, **js},
         json.dumps({"category": "electrical", "description": "楼道灯不亮", "building": 2, "unit": 3}).encode()),
        ("POST", "/api/v1/repair/tickets", {"Authorization": r, **js},
         b'{"category": "gas", "description": "\\ud800", "building": 2, "unit": 3}'),  # lone surrogate (422)
        ("POST", "/api/v1/repair/tickets/0/start", {"Authorization": t}, b""),       # not assigned (403)
        ("POST", "/api/v1/repair/tickets/0/cancel", {"Authorization": r, **js}, b""),  # optional body: none
        ("GET", "/api/v1/points/catalogue", {"Authorization": r}, b""),
    ]


def _send_all(app, requests) -> list:
    """Each request through ``app`` in turn (over ASGI, no sockets): the answers, in order."""
    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://server") as http:
            return [await http.request(method, path, headers=headers, content=body)
                    for method, path, headers, body in requests]
    return asyncio.run(run())


def _answers(fast_path: bool):
    app, tokens = _server(fast_path)
    try:
        requests = _requests(tokens)
        answers = [(method, path, got.status_code, got.headers.get("content-type"),
                    got.headers.get("www-authenticate"), got.content)
                   for (method, path, _, _), got in zip(requests, _send_all(app, requests))]
        balance = app.state.services.points.balance(100)
    finally:
        app.state.committer.stop()
    return answers, balance, app.state.fast_path_requests


def test_the_fast_path_answers_exactly_as_the_routes_do():
    fast, fast_balance, taken = _answers(True)
    slow, slow_balance, none = _answers(False)
    for a, b in zip(fast, slow):
        assert a == b
    assert fast_balance == slow_balance
    assert none == 0
    # the well-formed requests went the fast way: accepted, refused by the services, reads, the retried key
    assert taken >= 14
    statuses = [a[2] for a in fast]
    assert {200, 201, 401, 403, 404, 409, 413, 422} <= set(statuses)


def test_the_fast_path_declines_what_it_cannot_prove_and_the_application_answers():
    async def application(scope, receive, send):
        calls.append("application")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append(body)
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def authenticate(token):
        from twin.live.accounts import Principal
        return Principal("coordinator", 6) if token == "good" else None

    async def execute(*args):
        calls.append("fast")
        from starlette.responses import Response
        return Response(b"{}", 201)

    calls, seen = [], []
    from twin.live.app import request_models
    fast = OperationFastPath(application, authenticate=authenticate, execute=execute, models=request_models(),
                             max_body=100)
    good = {"Authorization": "Bearer good", "Content-Type": "application/json"}
    body = b'{"activity":0,"occurrence":1}'
    declined = [
        (EARN.format(1), {**good, "Authorization": "Bearer bad"}, body),
        (EARN.format(1), good, b'{"activity":0,"occurrence":1,"pad":"' + b"x" * 200 + b'"}'),  # over 100 bytes
        (EARN.format(1) + "/", good, body),
        (EARN.format("01x"), good, body),
    ]
    answers = _send_all(fast, [("POST", EARN.format(1), good, body)] + [("POST", *d) for d in declined])
    assert [a.status_code for a in answers] == [201, 299, 299, 299, 299]
    assert seen == [d[2] for d in declined]  # the body the fast path had read reached the application whole
    assert calls == ["fast"] + ["application"] * 4


@pytest.mark.parametrize("mutation", ["drop-role-check"])
def test_the_comparison_catches_a_fast_path_that_differs(monkeypatch, mutation):
    """The equivalence test can fail: a fast path that skips the role gate answers a resident's earn."""
    original = OperationFastPath.__init__

    def no_roles(self, *args, **kwargs):
        original(self, *args, **kwargs)
        for entries in self.routes.values():
            for i, (op, parts) in enumerate(entries):
                entries[i] = (type(op)(**{**op.__dict__, "roles": frozenset({"resident", "coordinator",
                                                                             "technician", "social_worker",
                                                                             "admin"})}), parts)

    monkeypatch.setattr(OperationFastPath, "__init__", no_roles)
    fast, _, _ = _answers(True)
    slow, _, _ = _answers(False)
    assert fast != slow
