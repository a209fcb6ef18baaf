"""Every route of the OpenAPI document, fuzzed against a real server.

For each operation hypothesis draws a request: path and query values from the
document's parameter schemas (and of the wrong type), a caller (every role, no
token, a wrong one), an ``Idempotency-Key`` now and then, and a body: one made
from the operation's JSON schema, the same with an unknown field, a field of the
wrong type or a huge number, malformed JSON, JSON that is not an object, deep
nesting, lone surrogates, SQL-looking and other odd text, an oversized body, and
(for Open311) the form encoding.  Whatever it is, the answer is

- never a 5xx;
- a 2xx with a JSON (or, for Open311's ``.xml``, an XML) body, when the input
  happens to be valid (or the framework's 307 from a path ending in ``/`` to the
  same path without it: a ``%2F`` in a drawn path value decodes to one);
- otherwise a 4xx whose body is a problem document (RFC 9457), or for an
  Open311 route the spec's error list ``[{"code", "description"}]``;
- and a 4xx changes nothing: the same events, the same free-text details and
  the same service state as before it (only the record of the refusal kept
  under an ``Idempotency-Key``, which is how a retry gets the same answer).

Ids are drawn small (the seeded subjects) or past every bound (refused):
a valid id in the millions is valid but costs the dense arrays memory, which
is not what this test is about.  ``wait`` on the event feed is drawn short.
"""
import json
import time
import xml.etree.ElementTree as ET
from urllib.parse import quote, unquote

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.live.app import MAX_BODY_BYTES, create_app
from twin.services.community import Services
from twin.services.store import EventStore

from live_helpers import Server

EXAMPLES = int(__import__("os").environ.get("FUZZ_EXAMPLES", 25))
ROLE_IDS = {"resident": 17, "neighbour": 18, "technician": 4, "social_worker": 5, "coordinator": 6, "admin": 7}


def _document() -> dict:
    app = create_app(Services())
    try:
        return app.openapi()
    finally:
        app.state.committer.stop()


DOC = _document()
ROUTES = [(method.upper(), path) for path, item in DOC["paths"].items() for method in item]


# ------------------------------------------------------------------ values
NASTY = ["", " ", "' OR '1'='1", "1; DROP TABLE events;--", "\" OR 1=1 --", "<script>alert(1)</script>",
         "../../etc/passwd", "%00", "\x00", "😀" * 8, "漏水 3栋402", "３栋４０２", "٣-٤٠٢", "\u202eevil", "NaN",
         "Infinity", "-0", "1e309", "0x10", "null", "true", "{}", "[]", "a" * 2500, "plumbing", "open", "json",
         "xml", "3-402", "pending", "processing", "completed", "plurality", "Ⅻ"]
HUGE = [2 ** 31, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -2 ** 63 - 1, 10 ** 30, 10 ** 7, 10 ** 9]

texts = st.one_of(st.text(max_size=40), st.sampled_from(NASTY))
ints = st.one_of(st.integers(-2, 30), st.sampled_from(HUGE + [-1, 0]))
numbers = st.one_of(ints, st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([1e308, -1e308, 5e-324, 0.5, 4.5, -0.0]))
json_values = st.recursive(st.none() | st.booleans() | ints | numbers | texts,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
                           max_leaves=8)


#: Values a field of this name takes when it is right, drawn half the time (so requests get past the
#: first refusal and reach the rules behind it).
HINTS = {
    "status": ["pending", "processing", "completed", "cancelled", "open", "closed", "open,closed", "submitted",
               "in_progress", "rated"],
    "category": ["plumbing", "electrical", "gas", "public area", 0, 9], "service_code": ["plumbing", "gas,elevator"],
    "title": ["厨房水管漏水", "lift stuck", "楼道灯不亮"], "location": ["3栋402", "3-402", "5号楼2单元1201室", "楼下"],
    "address_string": ["3栋402", "3-402", "nowhere"], "address_id": ["30402", 10101, "-1"],
    "description": ["漏水", "light out"], "notes": ["师傅已出发", ""], "comment": ["好", ""],
    "building": [1, 3], "unit": [101, 402], "worker": [4, 6, 7], "rating": [1, 5, 0, 6],
    "method": ["plurality", "approval", "borda", "budget", 0], "n_options": [2, 3, 31, 32], "prefs": [[0], [1, 0], []],
    "activity": [0, 1, "volunteering"], "occurrence": [1, 2, 3], "item": [0, 1], "amount": [1, 5],
    "provider": [17, 18], "receiver": [17, 18], "member": [17, 19, 40], "minutes": [30, 60, 0, -5],
    "role": ["resident", "admin", "member", "coordinator"], "id": [0, 1, 2, 3, 17], "uphold": [True, False],
    "kind": ["other", 0], "channel": ["app", 1, "hotline"], "start_date": ["2026-01-01T00:00:00Z"],
    "end_date": ["2026-02-01T00:00:00Z"], "response_format": ["json", "xml"],
    "ticket": [0, 1, 2, 3], "topic": [0], "record": [0], "resident": [17, 18], "service_request_id": ["0", "1,2"],
}


def hinted(name: str, strategy):
    return st.one_of(st.sampled_from(HINTS[name]), strategy) if name in HINTS else strategy


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = DOC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def from_schema(schema: dict, plausible: bool = False):
    """Values the JSON schema describes (ints and text drawn as above: valid or not for the services).

    ``plausible``: an object has every field, each drawn from :data:`HINTS` where it has them.
    """
    schema = _resolve(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, plausible) for s in schema[key] if not plausible or s != {"type": "null"}])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "integer":
        return ints
    if kind == "number":
        return numbers
    if kind == "string":
        return texts
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=4)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        if plausible:
            return st.fixed_dictionaries({k: st.sampled_from(HINTS[k]) if k in HINTS else from_schema(v)
                                          for k, v in properties.items()})
        return st.fixed_dictionaries({k: hinted(k, from_schema(v)) for k, v in properties.items() if k in required},
                                     optional={k: hinted(k, from_schema(v)) for k, v in properties.items()
                                               if k not in required})
    return json_values


def _body_schema(operation: dict):
    content = operation.get("requestBody", {}).get("content", {})
    for kind in ("application/json", "application/x-www-form-urlencoded"):
        if kind in content:
            return content[kind]["schema"], "application/x-www-form-urlencoded" in content
    return None, False


RAW = [b"{", b"{not json", b'{"a":}', b"\xff\xfe\xfd", b"null", b"[]", b"[1, 2]", b'"text"', b"1e999", b"NaN",
       b'{"a": NaN}', b'{"a": Infinity}', b'{"description": "\\ud800", "title": "\\udfff"}', b"[" * 5000 + b"]" * 5000,
       b'{"a": ' * 3000 + b"1" + b"}" * 3000]


@st.composite
def bodies(draw, schema, form, plausible):
    """(content bytes, content type) for an operation's body, or None for no body."""
    base = draw(from_schema(schema, plausible)) if schema is not None else {}
    if plausible:
        return json.dumps(base).encode(), "application/json"
    if not isinstance(base, dict):
        base = {}
    variant = draw(st.sampled_from(["schema"] * 5 + ["unknown", "wrong_type", "huge", "raw", "not_object",
                                                      "oversized", "none"] + (["form"] * 3 if form else [])))
    if variant == "none":
        return None
    if variant == "raw":
        return draw(st.sampled_from(RAW) | st.binary(max_size=40)), "application/json"
    if variant == "oversized":
        return json.dumps({**base, "description": "x" * (MAX_BODY_BYTES + 10)}).encode(), "application/json"
    if variant == "not_object":
        return json.dumps(draw(json_values)).encode(), "application/json"
    if variant == "unknown":
        base[draw(texts)] = draw(json_values)
    elif variant == "wrong_type" and base:
        base[draw(st.sampled_from(sorted(base)))] = draw(json_values)
    elif variant == "huge" and base:
        base[draw(st.sampled_from(sorted(base)))] = draw(st.sampled_from(HUGE + [1e308, -1e308]))
    if variant == "form":
        pairs = [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in base.items()]
        return "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in pairs).encode(), \
            "application/x-www-form-urlencoded"
    return json.dumps(base).encode(), draw(st.sampled_from(["application/json"] * 4 + ["text/plain", ""]))


def _parameter(param: dict, plausible: bool):
    name, schema = param["name"], param.get("schema", {})
    if plausible and name in HINTS:
        return st.sampled_from(HINTS[name])
    if name == "wait":  # the event feed's long-poll: drawn short, or invalid
        return st.sampled_from([0, 0.01, -1, 31, "abc", "nan", "inf"])
    return st.one_of(st.sampled_from(HINTS[name]), from_schema(schema), texts) if name in HINTS else \
        from_schema(schema) | texts


@st.composite
def requests(draw, method, path, tokens):
    """A request for the operation: a third of them plausible (every field a likely value, a real caller)."""
    operation = DOC["paths"][path][method.lower()]
    plausible = draw(st.integers(0, 2)) == 0
    url = path
    query = {}
    for param in operation.get("parameters", []):
        if param["in"] == "path":
            value = draw(_parameter(param, plausible))
            url = url.replace("{" + param["name"] + "}", quote(str(value), safe="") or "%20")
        elif param["in"] == "query" and draw(st.booleans()):
            value = draw(_parameter(param, plausible))
            query[param["name"]] = value if isinstance(value, str) else json.dumps(value)
    if not plausible and draw(st.integers(0, 9)) == 0:
        query[draw(texts) or "x"] = draw(texts)
    caller = draw(st.sampled_from(sorted(tokens) + ([] if plausible else ["nobody", "wrong"])))
    headers = {}
    if caller == "wrong":
        headers["Authorization"] = draw(st.sampled_from(["Bearer nope", "Basic dXNlcjpwdw==", "Bearer", "bearer x"]))
    elif caller != "nobody":
        headers["Authorization"] = f"Bearer {tokens[caller]}"
    if method == "POST" and draw(st.integers(0, 4)) == 0:
        headers["Idempotency-Key"] = draw(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1,
                                                  max_size=300))
    schema, form = _body_schema(operation)
    body = draw(bodies(schema, form, plausible)) if method in ("POST", "PUT") or draw(st.integers(0, 9)) == 0 \
        else None
    if body is not None:
        content, kind = body
        if kind:
            headers["Content-Type"] = kind
    else:
        content = None
    return method, url, query, headers, content


# ------------------------------------------------------------------ the server
@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with Server(tmp_path_factory.mktemp("fuzz") / "fuzz.db") as srv:
        s = srv.services
        residents = [17, 18, 19]
        s.points.enroll_batch(residents)
        s.points.earn(17, 0, occurrence=1)
        s.timebank.register_batch(0, residents)
        for role in ("technician", "social_worker", "coordinator", "admin"):
            s.timebank.register(ROLE_IDS[role], role="coordinator" if role in ("coordinator", "admin") else "member")
        for i, category in enumerate(("plumbing", "electrical", "elevator", "gas")):
            s.repair.submit(category, f"ticket {i}", building=1 + i, unit=101, reporter=17 + i % 2)
        s.repair.dispatch(1, 4)
        s.voting.register_voters(residents, [1, 2, 3], [True, True, True])
        s.voting.propose(17, "plurality", 3)
        s.timebank.record(17, 18, 30, by=17)
        tokens = {name: srv.account("resident" if name == "neighbour" else name, id) for name, id in ROLE_IDS.items()}
        srv.fuzz_tokens = tokens
        srv.http = httpx.Client(base_url=srv.root, timeout=60)
        srv.tally = {}
        yield srv
        srv.http.close()
        with EventStore(srv.path, readonly=True) as reader:  # memory equals the store after it all
            assert np.array_equal(reader.load(), s.log.events)
        print("\nfuzz answers by status:", dict(sorted(srv.tally.items())))


def _observe(srv):
    """What a refused request must leave as it was: the events and the details (less idempotency records)."""
    s = srv.services
    details = sorted((field, subject, text) for subject, field, text in s.log.detail_rows()
                     if not field.startswith("idem/"))
    return len(s.log), details


def _check_answer(response, path):
    status = response.status_code
    kind = response.headers.get("content-type", "")
    assert status < 500, f"{status}: {response.text[:500]}"
    if 300 <= status < 400:  # only the framework's redirect of a path with a trailing slash ("%2F" decodes to one)
        decoded = unquote(response.request.url.path)
        assert status == 307 and decoded.endswith("/"), (status, decoded)
        assert unquote(httpx.URL(response.headers["location"]).path) == decoded.rstrip("/")
        return
    if status < 400:
        assert 200 <= status < 300, status
        if kind.startswith("text/xml"):
            ET.fromstring(response.content)
        else:
            response.json()
        return
    if kind.startswith("application/problem+json"):
        body = response.json()
        assert {"type", "title", "status", "detail"} <= set(body), body
        assert body["status"] == status and body["type"].endswith(body["title"]), body
        return
    assert path.startswith("/open311/"), f"{status} without a problem document: {kind} {response.text[:300]}"
    if kind.startswith("text/xml"):
        assert ET.fromstring(response.content).findtext("error/code") == str(status)
        return
    body = response.json()
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"code", "description"}, body
    assert body[0]["code"] == status


@pytest.mark.parametrize("method, path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_every_route_answers_a_2xx_or_a_problem_and_a_4xx_changes_nothing(live, same_state, method, path):
    started = time.monotonic()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large])
    @given(request=requests(method, path, live.fuzz_tokens))
    def answer(request):
        method_, url, query, headers, content = request
        before = _observe(live)
        response = live.http.request(method_, url, params=query, headers=headers, content=content)
        live.tally[response.status_code] = live.tally.get(response.status_code, 0) + 1
        _check_answer(response, path)
        if 400 <= response.status_code < 500:
            assert _observe(live) == before, f"{response.status_code} changed the store: {response.text}"

    answer()
    # and no state changed beside the log: the services equal a replay of what the store holds
    replayed = Services()
    replayed.replay(live.services.log.events, live.services.log.detail_rows())
    same_state(replayed.snapshot(), live.services.snapshot())
    assert time.monotonic() - started < 60, "a route's fuzzing took over a minute"
