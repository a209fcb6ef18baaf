"""The ASGI application: routes derived from the operations table, over one group-commit writer.

Every route is built by :func:`_route` from an :class:`~twin.live.operations.Operation`:
its path parameters, query parameters and a request model made from the
service method's signature (unknown fields refused).  A request becomes a
command for the :class:`~twin.live.committer.GroupCommitter`; its answer —
a result, or a refusal as a problem document — is sent only after the
batch it was in has been committed.

``Idempotency-Key`` on a POST: the first answer is kept with the command,
in the same transaction, so a retry gets that answer and applies nothing
twice.
"""
import asyncio
import inspect
import json
import time
from contextlib import asynccontextmanager

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, Header, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, create_model
from starlette.exceptions import HTTPException as StarletteHTTPException

from twin.live import accounts as acc
from twin.live.committer import GroupCommitter
from twin.live.fastpath import OperationFastPath
from twin.live.operations import OPERATIONS, Operation, call
from twin.live.problems import PROBLEM, problem, refusal
from twin.services.events import WriteFailed, as_json
from twin.services.reasons import ServiceError

API = "/api/v1"
PING, PONG = "/ping", {"status": "ok"}
UNKNOWN_TOKEN = "unknown or revoked token"
MAX_BODY_BYTES = 64 * 1024
IDEMPOTENCY_SUBJECT = -2


def create_app(services, *, window_s: float = 0.002, max_batch: int = 512, clock=None,
               publisher=None, fast_path: bool = True) -> FastAPI:
    """The server over ``services`` (opened on a store with ``open_services``; this app is its one writer).

    ``clock()`` gives live time in minutes (default: the store's epoch clock).
    ``publisher``: an :class:`~twin.live.publisher.EventPublisher` that gets every committed event.
    ``window_s``, ``max_batch``: the group commit's (``window_s=0, max_batch=1``: one transaction a request).
    ``fast_path``: well-formed operation requests skip FastAPI's routing (:mod:`twin.live.fastpath`);
    the answers are the same either way (False: every request through FastAPI, for comparison).
    """
    committer = GroupCommitter(services, window_s=window_s, max_batch=max_batch)
    if publisher is not None:
        committer.on_commit.append(publisher.publish)
    if clock is None:
        clock = services.store.minutes_now if services.store is not None else _minutes_since(time.time())

    @asynccontextmanager
    async def lifespan(app):
        yield
        committer.stop()

    app = FastAPI(title="community-twin", version="1", lifespan=lifespan,
                  description="The community's services: repair, points, time bank and voting.")
    app.state.services, app.state.committer, app.state.clock = services, committer, clock
    app.state.fronts = 0  # front processes connected to this writer (twin.live.writer)
    app.state.refused_frames = 0  # frames from fronts that could not be read: counted and skipped
    _install_problem_handlers(app)
    _install_body_limit(app)

    async def authenticate(token):
        return acc.principal_for(services, token)

    from twin.live.batching import OperationCommand  # it builds on this module's answers

    async def execute(op, token, who, args, payload, key):
        app.state.fast_path_requests += 1
        try:
            return _respond(*await committer.run(OperationCommand(op, args, payload, key, clock, who=who)))
        except Exception as exc:  # noqa: BLE001 - answered as the application's handlers would
            return failure(exc)

    app.state.fast_path_requests = 0  # how many requests the fast path answered
    if fast_path:
        app.add_middleware(OperationFastPath, authenticate=authenticate, execute=execute,
                           models=request_models(), max_body=MAX_BODY_BYTES)

    def principal(authorization: str | None = Header(None, description="Bearer <token>")) -> acc.Principal:
        if not authorization or not authorization.startswith("Bearer "):
            raise _Unauthenticated("send Authorization: Bearer <token>")
        found = acc.principal_for(services, authorization[7:].strip())
        if found is None:
            raise _Unauthenticated(UNKNOWN_TOKEN)
        return found

    async def caller(authorization: str | None = Header(None, description="Bearer <token>")) -> acc.Principal:
        """``principal`` on the event loop: FastAPI runs a plain ``def`` dependency in a worker thread."""
        return principal(authorization)

    for service in ("repair", "points", "timebank", "voting"):
        router = APIRouter(prefix=API, tags=[service])
        for op in OPERATIONS:
            if op.service == service:
                _route(router, op, committer, clock, caller)
        app.include_router(router)
    app.state.principal = principal  # Open311 and the /api/repairs alias: the same token check
    from twin.live import legacy, open311

    app.include_router(open311.router)
    app.include_router(legacy.router)

    @app.get(API + "/events", tags=["events"], summary="The event log after a sequence number (long-poll)")
    async def events(after: int = Query(0, ge=0), limit: int = Query(500, ge=1, le=5000),
                     wait: float = Query(0.0, ge=0.0, le=30.0), who: acc.Principal = Depends(principal)):
        if not who.is_staff:
            raise _Forbidden("the event feed is for staff")
        deadline = time.monotonic() + wait
        while True:
            rows = await committer.run(lambda s: s.log.events[after: after + limit].copy())
            if len(rows) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        return {"after": after, "next": after + len(rows), "events": [as_json(after + 1 + i, r)
                                                                      for i, r in enumerate(rows)]}

    @app.post(API + "/admin/accounts", tags=["admin"], summary="Create an account; the token is shown once")
    async def add_account(body: create_model("NewAccount", role=(str, ...), id=(int, ...), name=(str, ""),
                                             __config__=ConfigDict(extra="forbid")),
                          who: acc.Principal = Depends(principal)):
        if who.role != "admin":
            raise _Forbidden("accounts are created by an admin")
        try:
            token = await committer.run(lambda s: acc.add_account(s, body.role, body.id, body.name))
        except ValueError as exc:
            return problem(422, "InvalidValue", str(exc))
        return JSONResponse({"role": body.role, "id": body.id, "token": token}, status_code=201)

    @app.get(API + "/health", tags=["health"])
    async def health():
        """The writer's state: events in the log, batches and commands committed (and those applied in runs
        with one batch call), front processes connected."""
        return {"status": "ok", "events": len(services.log), "batches": committer.batches,
                "commands": committer.commands, "batched_runs": committer.batched_runs,
                "batched_commands": committer.batched_commands, "fronts": app.state.fronts,
                "refused_frames": app.state.refused_frames}

    @app.get(API + PING, tags=["health"])
    async def ping():
        """Liveness of the process that answers (with ``--fronts``, a front: the writer is not asked)."""
        return PONG

    from twin.live.pages import install_pages

    install_pages(app, services, committer, clock)
    return app


def _minutes_since(start: float):
    return lambda: (time.time() - start) / 60.0


_MODELS: dict[str, tuple] = {}


def request_model(op: Operation):
    """The request model of ``op``'s route and whether a body is required (None: the route takes no body).

    Built once per operation, so the FastAPI route and the fast path validate with the same class.
    """
    if op.name not in _MODELS:
        fields = op.body_fields()
        model = create_model(f"{op.service}_{op.method}_request", __config__=ConfigDict(extra="forbid"),
                             **fields) if fields else None
        _MODELS[op.name] = (model, any(default is ... for _, default in fields.values())) if fields else None
    return _MODELS[op.name]


def request_models() -> dict:
    """Every operation's :func:`request_model` that takes a body, by operation name."""
    return {op.name: request_model(op) for op in OPERATIONS if request_model(op) is not None}


def _route(router: APIRouter, op: Operation, committer: GroupCommitter, clock, principal) -> None:
    from twin.live.batching import OperationCommand  # it builds on this module's answers

    Body, required = request_model(op) or (None, False)

    async def endpoint(**kwargs):
        who = kwargs.pop("_principal")
        key = kwargs.pop("_idempotency_key", None)
        body = kwargs.pop("_body", None)
        args = {k: v for k, v in kwargs.items()}
        payload = body.model_dump() if body is not None else {}
        status, content = await committer.run(OperationCommand(op, args, payload, key, clock, who=who))
        return _respond(status, content)

    async def allowed(who: acc.Principal = Depends(principal)) -> acc.Principal:
        """The role gate, before the request is even parsed."""
        if who.role not in op.roles:
            raise _Forbidden(f"{op.name} is for {', '.join(sorted(op.roles))}, not a {who.role}")
        return who

    params = [inspect.Parameter("_principal", inspect.Parameter.KEYWORD_ONLY,
                                default=Depends(allowed), annotation=acc.Principal)]
    for name in op.path_params:
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=int))
    for name, kind, default in op.query:
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                                        default=Query(default)))
    if op.http == "POST":
        params.append(inspect.Parameter("_idempotency_key", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=str | None,
                                        default=Header(None, alias="Idempotency-Key", max_length=200)))
    if Body is not None:
        params.append(inspect.Parameter("_body", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Body if required else Body | None,
                                        **({} if required else {"default": None})))
    endpoint.__signature__ = inspect.Signature(params)
    endpoint.__name__ = f"{op.service}_{op.method}"
    router.add_api_route(op.path, endpoint, methods=[op.http], summary=op.summary, name=op.name,
                         status_code=201 if op.http == "POST" else 200,
                         responses={code: {"description": what, "content": {"application/problem+json": {}}}
                                    for code, what in ((401, "no valid credentials"), (403, "not for this role"),
                                                       (404, "unknown subject"), (409, "refused by the rules now"),
                                                       (422, "invalid request"), (503, "not recorded: retry"))})


def _answer(services, op, who, args, payload, t, key):
    """Run one operation inside the writer; the (status, body) answer, kept under ``key`` if given."""
    field = idempotency_field(op, who, args, key)
    kept = kept_answer(services, field)
    if kept is not None:
        return kept
    try:
        check_unicode(payload)
        answer = succeeded(op, call(op, services, who, args, payload, t))
    except (ServiceError, ValueError) as refused:
        answer = refusal(refused)
    return keep_answer(services, op, field, answer)


def idempotency_field(op, who, args, key) -> str | None:
    """Where the answer to a request with ``key`` is kept (None: no key).

    A key is the caller's and the route's: the same key elsewhere is another request.
    """
    if not key:
        return None
    where = "/".join(str(args[p]) for p in op.path_params)
    return f"idem/{who.role}/{who.id}/{op.name}/{where}/{key}"


def kept_answer(services, field):
    """The answer kept under ``field``, or None.  A retry that lands in the same batch as its first
    try sees that try's answer, still uncommitted (``detail_of``)."""
    if field is None:
        return None
    kept = services.log.detail_of(IDEMPOTENCY_SUBJECT, field)
    if kept is None:
        return None
    status, content = json.loads(kept)
    return status, content


def succeeded(op, result) -> tuple[int, object]:
    """The answer to an accepted operation: 201 for a POST, else 200, with its result as JSON values."""
    return (201 if op.http == "POST" else 200), _jsonable(result)


def keep_answer(services, op, field, answer):
    """Keep a POST's ``answer`` under its idempotency ``field`` (in the same transaction); returns it."""
    if field is not None and op.http == "POST":
        services.log.detail(IDEMPOTENCY_SUBJECT, field, json.dumps(list(answer)))
    return answer


def check_unicode(value, where: str = "body") -> None:
    """Refuse text the store cannot encode (a lone surrogate, JSON's ``"\\ud800"``) as a ValueError (422).

    Let through, it would fail the commit of its whole batch, everyone's commands with it.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where}: text must be valid Unicode (a lone surrogate is not)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_unicode(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_unicode(item, where)


def _respond(status: int, content):
    return JSONResponse(_document(status, content), status_code=status, media_type=media_type(status))


def media_type(status: int) -> str:
    return PROBLEM if status >= 400 else "application/json"


def _document(status: int, content):
    """What answers ``(status, content)``: the problem document, the result, or ``{"ok": true}`` for none."""
    return content if status >= 400 or content is not None else {"ok": True}


_RENDERER = JSONResponse.__new__(JSONResponse)  # Starlette's own JSON encoding, without building a response


def rendered(status: int, content) -> bytes:
    """The body :func:`_respond` would send, as bytes (the writer sends it to a front as it is)."""
    return _RENDERER.render(_document(status, content))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


# ----------------------------------------------------------- errors as problems
class _Unauthenticated(Exception):
    pass


class _Forbidden(Exception):
    pass


def _install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(_Unauthenticated)
    async def no_credentials(request, exc):
        return unauthenticated(str(exc))

    @app.exception_handler(_Forbidden)
    async def forbidden(request, exc):
        return problem(403, "Unauthorized", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc):
        errors = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in exc.errors()]
        return problem(422, "invalid-request", "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors),
                       errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc):
        return problem(exc.status_code, "http-error", str(exc.detail))

    @app.exception_handler(WriteFailed)
    async def not_recorded(request, exc):
        return failure(exc)

    @app.exception_handler(Exception)
    async def bug(request, exc):  # never a traceback to a client
        return failure(exc)


def unauthenticated(detail: str) -> JSONResponse:
    """401: no valid credentials (``WWW-Authenticate: Bearer``)."""
    response = problem(401, "unauthenticated", detail)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def failure(exc: Exception) -> JSONResponse:
    """The answer to a command that raised instead of answering: 503 if not recorded, else 500, never a traceback."""
    if isinstance(exc, WriteFailed):
        return problem(503, "not-recorded", str(exc))
    return problem(500, "internal-error", f"{type(exc).__name__}; the request was not applied")


def too_large(limit: int) -> JSONResponse:
    """The answer to a request body over ``limit`` bytes."""
    return problem(413, "body-too-large", f"request bodies are limited to {limit} bytes")


def _install_body_limit(app: FastAPI) -> None:
    app.add_middleware(_BodyLimit)


class _BodyLimit:
    """Refuse a declared body over ``MAX_BODY_BYTES`` (plain ASGI: ``@app.middleware`` costs a task a request)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                response = too_large(MAX_BODY_BYTES)
                return await response(scope, receive, send)
        await self.app(scope, receive, send)
