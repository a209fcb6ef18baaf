"""``/api/repairs``: the source text's Express API, as a thin alias of the repair desk's operations.

The original routes, their bodies and their answers, so its clients run
unchanged apart from an ``Authorization: Bearer`` header::

    POST /api/repairs            {title, description, location, contact}  -> 201 the repair
    GET  /api/repairs?page&limit&status                                    -> {total, page, limit, data}
    PUT  /api/repairs/:id        {status, notes}                           -> the repair
    POST /api/repairs/:id/rate   {rating, comment}                         -> {message, repair}

Every command is an operation of :data:`~twin.live.operations.OPERATIONS`
(``repair.submit``, ``dispatch``, ``start``, ``complete``, ``reopen``,
``cancel``, ``rate``, ``get``) run for the caller, so roles, identity rules
and the desk's refusals are the ones ``/api/v1`` has; refusals are the
server's problem documents (with the source's ``error`` member beside
``detail``).  What is the alias's own:

- **title -> category**: the first category whose keyword the title holds,
  in the table :data:`twin.live.open311.CATALOGUE` (the keywords the Open311
  service list publishes, Chinese and English; English words match at word
  starts, with ``s``/``es``/``ed``/``ing``/``age`` endings), then the same for
  the description, else ``other``.  No title is no category: ``MissingField``.
- **location -> building, unit**: :func:`twin.live.open311.parse_address`
  (``"3栋402"``, ``"3-402"``, ``"3号楼2单元402室"``); a location it cannot read
  is submitted without one, which the desk refuses (``MissingField``).  The
  title and the location text are kept as the ticket's details.
- **statuses**: ``pending`` is submitted or dispatched, ``processing`` in
  progress, ``completed`` completed or rated; ``cancelled`` shows as itself.
  The ``status`` filter takes these (or the desk's own status names).
- **PUT status**: the status already held changes nothing (a PUT may be
  repeated); ``processing`` starts the work, first dispatching the ticket if
  it is still submitted: to the ``worker`` the body names (an extension of
  the source's body), else to the calling staff member.  ``repair.dispatch``
  decides as always: only the office dispatches, and only to a technician
  on the roster (an office account whose id also holds a technician
  account dispatches to itself).  ``completed`` completes
  it; ``pending`` reopens a completed ticket; ``cancelled`` cancels.  Each
  step is the operation itself, and a step refused after an earlier one
  succeeded undoes the earlier one.  ``notes`` are kept as the ticket's
  ``notes`` detail (under the desk's text limit).  Only the roles that may
  start work (technician, coordinator, admin) may PUT.
- ids are the desk's ticket ids (the same on ``/api/v1`` and Open311), and
  ``createdAt``/``updatedAt`` are ISO 8601 (UTC) from the store's epoch.
"""
import json
import re

import numpy as np
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ConfigDict, create_model

from twin.live import accounts as acc
from twin.live.app import _answer, _Forbidden, _respond, check_unicode
from twin.live.open311 import CATALOGUE, epoch_of, iso, parse_address, submitted_ticket, ticket_times
from twin.live.operations import OPERATIONS, call
from twin.live.problems import PROBLEM, refusal
from twin.services.reasons import EXCEPTIONS, Reason, ServiceError
from twin.services.repair import Category, Status

PREFIX = "/api/repairs"
MESSAGE_RATED = "评价成功"
#: The source's statuses and the desk's statuses each stands for.
STATUSES = {"pending": (Status.submitted, Status.dispatched), "processing": (Status.in_progress,),
            "completed": (Status.completed, Status.rated), "cancelled": (Status.cancelled,)}
LEGACY_STATUS = {s: name for name, desk in STATUSES.items() for s in desk}

_OP = {op.method: op for op in OPERATIONS if op.service == "repair"}


def category_of(*texts) -> Category | None:
    """The category the first text with a keyword names (see the module docstring); None without a title."""
    if not texts or not isinstance(texts[0], str) or not texts[0].strip():
        return None
    for text in texts:
        if not isinstance(text, str):
            continue
        low = text.lower()
        for category, (*_, keywords) in CATALOGUE.items():
            for word in keywords:
                if _matches(word, low):
                    return category
    return Category.other


def _matches(word: str, text: str) -> bool:
    if word.isascii():
        return re.search(rf"\b{re.escape(word)}(?:s|es|ed|ing|age)?\b", text) is not None
    return word in text


def legacy_status(desk_status: str) -> str:
    """The source's status for a desk status name."""
    return LEGACY_STATUS[Status[desk_status]]


# ------------------------------------------------------------------ callers
def _who(request: Request, authorization: str | None = Header(None, description="Bearer <token>")):
    return request.app.state.principal(authorization)


def _gate(op_name: str):
    """The role gate of an operation, before the body is read (as on ``/api/v1``)."""
    op = _OP[op_name]

    def allowed(who: acc.Principal = Depends(_who)) -> acc.Principal:
        if who.role not in op.roles:
            raise _Forbidden(f"{op.name} is for {', '.join(sorted(op.roles))}, not a {who.role}")
        return who

    return allowed


def _problem(status: int, content: dict) -> JSONResponse:
    return _respond(status, content)


class _LegacyRoute(APIRoute):
    """Problem documents of these routes also carry the source's ``error`` member (its clients read it).

    Refusals raised before the endpoint (no token, the role gate, a body that
    does not parse) are answered by the server's own handlers first.
    """

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def with_error(request: Request):
            try:
                response = await handler(request)
            except Exception as exc:
                answer = next((request.app.exception_handlers[kind] for kind in type(exc).__mro__
                               if kind in request.app.exception_handlers), None)
                if answer is None:
                    raise
                response = await answer(request, exc)
            if response.headers.get("content-type", "").startswith(PROBLEM):
                body = json.loads(response.body)
                body["error"] = body.get("detail")
                headers = {k: v for k, v in response.headers.items() if k.lower() not in ("content-length",
                                                                                        "content-type")}
                response = JSONResponse(body, status_code=response.status_code, headers=headers, media_type=PROBLEM)
            return response

        return with_error


def _refusal(exc: Exception) -> JSONResponse:
    return _problem(*refusal(exc))


async def _run(request: Request, command):
    """``command(services)`` through the writer; a refusal as a problem, and what it returned otherwise."""
    try:
        return None, await request.app.state.committer.run(command)
    except _Undone as undone:
        return _refusal(undone.refusal), None
    except (ServiceError, ValueError) as refused:
        return _refusal(refused), None


class _Undone(Exception):
    """A later step was refused: raised as a bug so the writer rolls back the earlier steps."""

    def __init__(self, refusal: ServiceError):
        super().__init__(str(refusal))
        self.refusal = refusal


router = APIRouter(prefix=PREFIX, tags=["legacy /api/repairs"], route_class=_LegacyRoute)
_PROBLEMS = {code: {"description": what, "content": {"application/problem+json": {}}}
             for code, what in ((401, "no valid credentials"), (403, "not for this role"),
                                (404, "unknown repair"), (409, "refused by the rules now"),
                                (422, "invalid request"), (503, "not recorded: retry"))}


def repair_json(services, who, ticket: int, epoch: float, times=None) -> dict:
    """A ticket in the source's shape (and the desk's own fields beside it), as ``repair.get`` shows it."""
    t = call(_OP["get"], services, who, {"ticket": ticket}, {}, 0.0)
    created, updated = times if times is not None else ticket_times(services, [ticket])[ticket]
    desk = services.repair
    return {
        "id": ticket,
        "title": desk._detail(ticket, "title") or CATALOGUE[Category[t["category"]]][0],
        "description": t["description"],
        "location": desk._detail(ticket, "location") or f"{t['building']}-{t['unit']}",
        "contact": t["contact"],
        "status": legacy_status(t["status"]),
        "createdAt": iso(epoch, created),
        "updatedAt": iso(epoch, updated),
        "notes": desk._detail(ticket, "notes"),
        "rating": t["rating"],
        "comment": t["comment"],
        "category": t["category"], "building": t["building"], "unit": t["unit"],
        "deskStatus": t["status"], "worker": t["worker"],
    }


async def _present(request: Request, who, ticket: int) -> dict:
    """The ticket as committed (a read after the write: its texts are in the log's details by then)."""
    state = request.app.state
    epoch = epoch_of(state.services, state.clock)
    return await state.committer.run(lambda s: repair_json(s, who, ticket, epoch))


# ------------------------------------------------------------------ POST /api/repairs
NewRepair = create_model("LegacyNewRepair", __config__=ConfigDict(extra="forbid"),
                         title=(str | None, None), description=(str | None, None),
                         location=(str | None, None), contact=(str | None, None))


@router.post("", status_code=201, responses=_PROBLEMS, summary="Report a repair (the source's API)")
async def create(request: Request, body: NewRepair, who: acc.Principal = Depends(_gate("submit")),
                 idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200)):
    category = category_of(body.title, body.description)
    place = parse_address(body.location)
    payload = {"category": None if category is None else category.name, "description": body.description,
               "building": None if place is None else place[0], "unit": None if place is None else place[1]}
    if body.contact is not None:
        payload["contact"] = body.contact
    clock = request.app.state.clock

    def submit(s):
        s.repair._check_text(title=body.title, location=body.location)  # the desk's limit on free text
        check_unicode({"title": body.title, "location": body.location})
        before = s.repair.n_tickets
        status, content = _answer(s, _OP["submit"], who, {}, payload, clock(), idempotency_key)
        if status < 400:
            ticket = submitted_ticket(content, idempotency_key)
            if s.repair.n_tickets > before:  # a new ticket, not a kept answer
                s.repair._set_detail(ticket, "title", body.title)
                s.repair._set_detail(ticket, "location", body.location)
        return status, content

    refused, answer = await _run(request, submit)
    if refused is not None:
        return refused
    status, content = answer
    if status >= 400:
        if content["title"] == Reason.MissingField.name and body.location and place is None:
            content = {**content, "detail": f"location {body.location!r} names no building and unit "
                                            f"(write it like 3-402 or 3栋402); {content['detail']}"}
        return _problem(status, content)
    return JSONResponse(await _present(request, who, content["id"]), status_code=201)


# ------------------------------------------------------------------ GET /api/repairs
@router.get("", responses=_PROBLEMS, summary="Repairs, a page at a time (the source's API)")
async def page(request: Request, page: int = Query(1, ge=1), limit: int = Query(10, ge=1),
               status: str | None = Query(None, description="pending, processing, completed (or a desk status)"),
               who: acc.Principal = Depends(_gate("list"))):
    try:
        wanted = _wanted(status)
    except ServiceError as refused:
        return _refusal(refused)
    epoch = epoch_of(request.app.state.services, request.app.state.clock)

    def read(s):
        desk = s.repair
        statuses = desk.state.status[: desk.n_tickets]
        matching = (np.arange(desk.n_tickets) if wanted is None
                    else np.flatnonzero(np.isin(statuses, [int(x) for x in wanted])))
        start = min((page - 1) * limit, len(matching))
        chosen = matching[start: start + min(limit, len(matching))].tolist()
        times = ticket_times(s, chosen)
        return {"total": len(matching), "page": page, "limit": limit,
                "data": [repair_json(s, who, i, epoch, times[i]) for i in chosen]}

    refused, answer = await _run(request, read)
    return refused if refused is not None else answer


def _wanted(status: str | None):
    if status is None or status == "":
        return None
    if status in STATUSES:
        return STATUSES[status]
    key = status.strip().lower().replace(" ", "_").replace("-", "_")
    if key in Status.__members__:
        return (Status[key],)
    raise EXCEPTIONS[Reason.UnknownKind](f"status must be one of {', '.join(STATUSES)} "
                                         f"(or {', '.join(Status.__members__)}), got {status!r}")


# ------------------------------------------------------------------ PUT /api/repairs/:id
Update = create_model("LegacyUpdate", __config__=ConfigDict(extra="forbid"),
                      status=(str | None, None), notes=(str | None, None), worker=(int | None, None))


@router.put("/{id}", responses=_PROBLEMS, summary="Update a repair's status and notes (the source's API; staff)")
async def update(request: Request, id: int, body: Update, who: acc.Principal = Depends(_gate("start"))):
    try:
        target = None if body.status is None else _target(body.status)
    except ServiceError as refused:
        return _refusal(refused)
    clock = request.app.state.clock

    def change(s):
        desk = s.repair
        desk._check_text(notes=body.notes)
        check_unicode(body.notes, "notes")
        ticket = call(_OP["get"], s, who, {"ticket": id}, {}, 0.0)  # UnknownTicket first
        if not _OP["start"].owner(s, who, {"ticket": id}):
            raise EXCEPTIONS[Reason.Unauthorized](f"repair {id} is assigned to another worker")
        t = clock()
        if target is not None and Status[ticket["status"]] not in STATUSES[target]:
            steps = _steps(target, Status[ticket["status"]], who if body.worker is None else body.worker)
            for i, (name, args) in enumerate(steps):
                try:
                    call(_OP[name], s, who, {"ticket": id}, args, t)
                except ServiceError as refused:
                    if i == 0:
                        raise
                    raise _Undone(refused) from None
        if body.notes is not None:
            desk._set_detail(id, "notes", body.notes)

    refused, _ = await _run(request, change)
    return refused if refused is not None else await _present(request, who, id)


def _target(status: str) -> str:
    if status not in STATUSES:
        raise EXCEPTIONS[Reason.UnknownKind](f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    return status


def _steps(target: str, now: Status, worker) -> list[tuple[str, dict]]:
    """The operations that take a ticket in status ``now`` to the source's ``target`` status.

    ``worker``: whom a submitted ticket is dispatched to (an id, or the caller).
    """
    if target == "processing":
        worker = getattr(worker, "id", worker)
        return ([("dispatch", {"worker": worker})] if now == Status.submitted else []) + [("start", {})]
    if target == "completed":
        return [("complete", {})]
    if target == "pending":
        return [("reopen", {})]
    return [("cancel", {})]


# ------------------------------------------------------------------ POST /api/repairs/:id/rate
Rating = create_model("LegacyRating", __config__=ConfigDict(extra="forbid"), **_OP["rate"].body_fields())


@router.post("/{id}/rate", responses=_PROBLEMS, summary="Rate a completed repair (the source's API; its reporter)")
async def rate(request: Request, id: int, body: Rating, who: acc.Principal = Depends(_gate("rate")),
               idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200)):
    clock = request.app.state.clock
    payload = body.model_dump()
    refused, answer = await _run(
        request, lambda s: _answer(s, _OP["rate"], who, {"ticket": id}, payload, clock(), idempotency_key))
    if refused is not None:
        return refused
    status, content = answer
    if status >= 400:
        return _problem(status, content)
    return JSONResponse({"message": MESSAGE_RATED, "repair": await _present(request, who, id)})
