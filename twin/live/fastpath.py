"""The operation routes' fast path: well-formed API commands without FastAPI's per-request machinery.

FastAPI spends most of a request's CPU time on routing through every route
and solving each route's dependencies; for the ``/api/v1`` operations
(:data:`twin.live.operations.OPERATIONS`) that work is always the same.
:class:`OperationFastPath` sits in front of the application and handles a
request itself only when it can prove the answer equals the one FastAPI's
route would give:

- the method and path are exactly an operation's route, with integer path ids;
- one ``Authorization: Bearer`` header whose token has an account, and the
  account's role is among the operation's roles;
- no query string (an operation's query parameters take their defaults);
- a declared body length, if any, within the size limit;
- for a POST, at most one ``Idempotency-Key`` of at most 200 characters and,
  if the operation has a body, a declared ``application/json`` body within the
  size limit that validates against the very request model the route uses
  (:func:`twin.live.app.request_model`).

Everything else — a missing token, a wrong role, a malformed or oversized
body, any other route — goes on, unchanged (the body it read is replayed), to
the application, which answers it as it always has.  So every refusal's shape
is decided in one place, and the fast path only makes accepted requests cheap.
What the fast path does with an accepted request is ``execute``'s: apply it
through the group-commit writer in this process, or send it to the writer
process (:mod:`twin.live.front`).
"""
import json
import re

from pydantic import ValidationError

from twin.live.operations import OPERATIONS

API = "/api/v1"
_ID = re.compile(rb"[0-9]{1,18}")


class OperationFastPath:
    """ASGI middleware: accepted operation requests go to ``execute``, everything else to ``app``.

    ``authenticate(token)`` awaits the caller's ``Principal`` (or None);
    ``execute(op, token, who, args, payload, key)`` awaits an ASGI response.
    ``models[op.name]`` is the route's request model and whether its body is required (absent: no body).
    """

    def __init__(self, app, *, authenticate, execute, models: dict, max_body: int):
        self.app = app
        self.authenticate = authenticate
        self.execute = execute
        self.models = models
        self.max_body = max_body
        self.routes: dict[tuple[str, int], list] = {}
        for op in OPERATIONS:
            parts = (API + op.path).encode().split(b"/")
            self.routes.setdefault((op.http, len(parts)), []).append((op, parts))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("query_string") or scope.get("root_path"):
            return await self.app(scope, receive, send)
        found = self._match(scope["method"], scope.get("raw_path") or scope["path"].encode())
        if found is None:
            return await self.app(scope, receive, send)
        op, args = found
        headers = _headers(scope["headers"], (b"authorization", b"idempotency-key", b"content-type",
                                              b"content-length"))
        token = _token(headers[b"authorization"])
        who = await self.authenticate(token) if token else None
        lengths = headers[b"content-length"]
        if who is None or who.role not in op.roles or len(lengths) > 1 or \
                (lengths and not (lengths[0].isdigit() and int(lengths[0]) <= self.max_body)):
            return await self.app(scope, receive, send)
        key = None
        body = b""
        payload = {}
        if op.http == "POST":
            keys = headers[b"idempotency-key"]
            if len(keys) > 1 or (keys and len(keys[0]) > 200):
                return await self.app(scope, receive, send)
            key = keys[0].decode("latin-1") if keys else None
            model = self.models.get(op.name)
            if model is not None:
                body, complete = await _read_body(receive, self.max_body)
                replay = _replaying(body, complete, receive)
                if not complete:
                    return await self.app(scope, replay, send)
                parsed = self._payload(model, headers, body)
                if parsed is None:
                    return await self.app(scope, replay, send)
                payload = parsed
        response = await self.execute(op, token, who, args, payload, key)
        await response(scope, receive, send)

    def _match(self, method: str, path: bytes):
        parts = path.split(b"/")
        for op, template in self.routes.get((method, len(parts)), ()):
            args = {}
            for given, part in zip(parts, template):
                if part[:1] == b"{":
                    if not _ID.fullmatch(given):
                        break
                    args[part[1:-1].decode()] = int(given)
                elif given != part:
                    break
            else:
                return op, args
        return None

    def _payload(self, model, headers, body: bytes):
        """The validated body as the route's model dumps it, or None (let the application answer)."""
        model, required = model
        types = headers[b"content-type"]
        if not body:
            return None if required else {}
        if len(types) != 1 or types[0].split(b";")[0].strip().lower() != b"application/json":
            return None
        try:
            value = json.loads(body)
            return model.model_validate(value).model_dump() if isinstance(value, dict) else None
        except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            return None


def _headers(raw, names) -> dict:
    """Every value of each of ``names`` (lower-case bytes), in order."""
    out = {name: [] for name in names}
    for name, value in raw:
        if name in out:
            out[name].append(value)
    return out


def _token(values: list) -> str | None:
    if len(values) != 1 or not values[0].startswith(b"Bearer "):
        return None
    return values[0][7:].decode("latin-1").strip() or None


async def _read_body(receive, limit: int) -> tuple[bytes, bool]:
    """The request body, and whether it was read whole within ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), False
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replaying(body: bytes, complete: bool, receive):
    """A ``receive`` that gives the application the body already read, then the client's own messages."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": not complete}
        return await receive()

    return replay
