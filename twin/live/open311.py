"""Open311 GeoReport v2 for the repair desk, over the same operations as ``/api/v1``.

Routes (``{fmt}`` is ``json`` or ``xml``)::

    GET  /open311/v2/services.{fmt}                       one service per repair category (public)
    GET  /open311/v2/services/{service_code}.{fmt}        its definition (no extra attributes: metadata false)
    POST /open311/v2/requests.{fmt}                       report a repair -> 201 [{service_request_id, service_notice,
                                                                                   account_id}]
    GET  /open311/v2/requests.{fmt}                       requests, filtered as the spec says
    GET  /open311/v2/requests/{service_request_id}.{fmt}  one request (a list of one, as the spec says)

Everything goes through :data:`~twin.live.operations.OPERATIONS`: a request
is ``repair.submit`` (its refusals, roles and identity rules), and a request
shown is ``repair.get`` for the caller; nothing here re-states a rule of the
desk.  What is Open311's own:

- **Codes.** ``service_code`` is the desk's category name (``plumbing``,
  ``public_area``, ...); ``service_request_id`` is the ticket id, as text.
- **Location.** ``address_id`` is the desk's location number,
  ``building * LOCATION_BASE + unit`` (``30402`` is building 3, unit 402);
  ``address_string`` is read by :func:`parse_address` (``"3-402"``,
  ``"3栋402"``, ``"3号楼2单元402室"``: the first number is the building,
  the last the unit) and kept as the request's ``address``.  ``lat``/``long``
  are accepted but locate nothing here: a request with no readable address
  is the desk's ``MissingField`` refusal.
- **Contact.** ``first_name``, ``last_name``, ``email`` and ``phone`` become
  the ticket's contact (shown to staff and the reporter only, as on
  ``/api/v1``); ``account_id`` names the resident a staff member (a hotline
  operator) reports for, as ``reporter`` does on ``/api/v1``.
- **Keys.** ``api_key`` (a form or JSON field, or a query parameter) is an
  account's token, an alternative to ``Authorization: Bearer``.  The service
  list is public; requests, read or written, need a key.  A missing or
  unknown key is 403, as the spec says.  ``Idempotency-Key`` works on POST
  as on ``/api/v1``.
- **Status.** ``open`` while submitted, dispatched or in progress;
  ``closed`` once completed, rated or cancelled.  ``status_notes`` says the
  desk's own status (and the staff's notes, when the legacy alias kept any).
- **Times.** ISO 8601 in UTC (``Z``): the store's epoch plus the log's
  minutes.  ``requested_datetime`` is the ticket's first submission (a
  reopened ticket keeps it), ``updated_datetime`` its latest event.  Without
  dates, ``GET requests`` covers the last 90 days; a range may not span more
  than 90 days; at most 1,000 requests are returned, oldest first.
- **Errors** are the spec's list, ``[{"code": <HTTP status>, "description": ...}]``:
  400 for a wrong request (the desk's 422 refusals, a malformed body, an
  unknown field), 403 for keys and roles, 404 for an unknown request, 503
  when the store could not record it.  What the server answers before a
  route is chosen stays a problem document: the body limit (413), a path
  no route has (404), a method a path does not take (405).
"""
import math
import re
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import numpy as np
from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from twin.live.app import _answer, check_unicode
from twin.live.committer import Stopped
from twin.live.operations import OPERATIONS, call
from twin.live.problems import status_of
from twin.services.events import WriteFailed
from twin.services.reasons import Reason, ServiceError
from twin.services.repair import KINDS, LOCATION_BASE, Category, Status, _member

PREFIX = "/open311/v2"
#: The most requests one ``GET requests`` returns, and the widest date range it takes (the spec's).
MAX_REQUESTS = 1000
MAX_SPAN = timedelta(days=90)
#: A ticket's desk status as people read it.
STATUS_TEXT = {Status.submitted: "已受理 submitted", Status.dispatched: "已派工 dispatched",
               Status.in_progress: "处理中 in progress", Status.completed: "已完成 completed",
               Status.rated: "已评价 rated", Status.cancelled: "已取消 cancelled"}
OPEN = frozenset({Status.submitted, Status.dispatched, Status.in_progress})

# ------------------------------------------------------------------ the service list
#: One Open311 service per desk category: Chinese and English name, description, group,
#: and the keywords people use for it.  The legacy ``/api/repairs`` alias reads a
#: ticket's category from its title with the same keywords, trying the categories in
#: this table's order (gas first: "gas leak" is gas, not plumbing; 电梯 before 电).
CATALOGUE = {
    Category.gas: ("燃气", "Gas", "燃气泄漏、燃气灶与燃气表 Gas leaks, cookers and meters", "safety",
                   ("燃气", "煤气", "天然气", "液化气", "gas")),
    Category.elevator: ("电梯", "Elevator", "电梯故障、困人、异响 Elevator breakdowns, people trapped, noise",
                        "facilities", ("电梯", "扶梯", "困人", "elevator", "lift", "escalator")),
    Category.security: ("安防", "Security", "门禁、监控、对讲与消防设施 Access control, cameras, intercoms, "
                                            "fire safety", "safety",
                        ("门禁", "监控", "摄像", "保安", "门卫", "对讲", "消防", "防盗", "security", "cctv",
                         "camera", "intercom", "alarm", "fire")),
    Category.heating: ("供暖", "Heating", "暖气不热、暖气片与地暖 Radiators, floor heating, no heat",
                       "facilities", ("暖气", "供暖", "采暖", "地暖", "heating", "radiator", "heater", "heat")),
    Category.plumbing: ("给排水", "Plumbing", "漏水、堵塞、水管与卫浴 Leaks, blockages, pipes, taps and toilets",
                        "facilities", ("漏水", "渗水", "水管", "下水", "堵", "马桶", "水龙头", "水槽", "花洒",
                                       "热水器", "水", "leak", "pipe", "drain", "clog", "clogged", "blocked",
                                       "toilet", "tap", "faucet", "sink", "shower", "water")),
    Category.electrical: ("电气", "Electrical", "停电、跳闸、灯具、插座与线路 Power cuts, breakers, lights, "
                                                "sockets, wiring", "facilities",
                          ("停电", "跳闸", "灯", "插座", "开关", "线路", "电路", "电表", "电", "electric",
                           "electrical", "power", "light", "lamp", "socket", "outlet", "switch", "breaker",
                           "wiring", "fuse")),
    Category.doors_windows: ("门窗", "Doors and windows", "门、窗、锁与玻璃 Doors, windows, locks, glass", "home",
                             ("门", "窗", "锁", "玻璃", "door", "window", "lock", "glass")),
    Category.greenery: ("绿化", "Greenery", "树木、草坪与花坛 Trees, lawns, flower beds", "environment",
                        ("绿化", "树", "草", "花", "园林", "修剪", "tree", "grass", "lawn", "garden", "hedge",
                         "plant")),
    Category.public_area: ("公共区域", "Public areas", "楼道、楼梯、垃圾、保洁、路面与停车 Corridors, stairs, "
                                                     "rubbish, cleaning, paths, parking", "environment",
                           ("楼道", "走廊", "楼梯", "公共", "垃圾", "保洁", "卫生", "清洁", "路面", "停车", "车库",
                            "corridor", "hallway", "stair", "stairwell", "garbage", "trash", "rubbish", "litter",
                            "cleaning", "parking", "garage", "pavement", "road")),
    Category.other: ("其他", "Other", "其他报修 Anything else", "other", ("其他", "other")),
}
assert set(CATALOGUE) == set(Category), "every category is an Open311 service"


def service_name(category: Category) -> str:
    zh, en, *_ = CATALOGUE[category]
    return f"{zh} {en}"


def services_list() -> list[dict]:
    """GET services: one realtime service per category, no extra attributes."""
    return [{"service_code": c.name, "service_name": service_name(c), "description": description,
             "metadata": False, "type": "realtime", "keywords": ", ".join(keywords), "group": group}
            for c, (zh, en, description, group, keywords) in sorted(CATALOGUE.items())]


# ------------------------------------------------------------------ addresses
_NUMBER = re.compile(r"\d+", re.ASCII)


def parse_address(text) -> tuple[int, int] | None:
    """``(building, unit)`` from text like ``"3-402"``, ``"3栋402"``, ``"3号楼2单元402室"``; None if unreadable.

    The first number is the building and the last the unit (a middle one,
    the 单元 entrance, stays in the text only); a text with fewer than two
    numbers is unreadable.  Whether the numbers are a location the desk
    takes (a unit below ``LOCATION_BASE``) is the desk's rule, not this one's.
    """
    if not isinstance(text, str) or len(text) > 200:
        return None
    numbers = _NUMBER.findall(text)
    if len(numbers) < 2 or max(len(n) for n in numbers) > 18:
        return None
    return int(numbers[0]), int(numbers[-1])


def address_of_id(text) -> tuple[int, int] | None:
    """``(building, unit)`` from an ``address_id`` (``building * LOCATION_BASE + unit``); None if not one."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif isinstance(text, str) and text.strip().isascii() and text.strip().isdigit() and len(text.strip()) <= 18:
        value = int(text.strip())
    else:
        return None
    return divmod(value, LOCATION_BASE)


def address_text(building: int, unit: int) -> str:
    return f"{building}栋{unit}室 (building {building}, unit {unit})"


# ------------------------------------------------------------------ times
def epoch_of(services, clock) -> float:
    """The store's epoch (seconds); for a server without a store, the one its clock counts from."""
    if services.store is not None:
        return services.store.epoch
    return time.time() - clock() * 60.0


def iso(epoch: float, minutes: float) -> str:
    """ISO 8601 in UTC for ``minutes`` after ``epoch``."""
    moment = datetime.fromtimestamp(epoch + minutes * 60.0, tz=timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def ticket_times(services, tickets) -> dict[int, tuple[float, float]]:
    """``{ticket: (first submitted, last event)}`` in minutes, from the log.

    A ticket whose events are still in the writer's open batch is not in the
    log yet: it takes the desk's own times instead.
    """
    tickets = np.asarray(list(tickets), np.int64)
    out: dict[int, tuple[float, float]] = {}
    if len(tickets):
        events = services.log.events
        rows = events[np.isin(events["kind"], [int(k) for k in KINDS]) & np.isin(events["subject"], tickets)]
        for subject, t in zip(rows["subject"].tolist(), rows["t"].tolist()):
            first, last = out.get(subject, (t, t))
            out[subject] = (min(first, t), max(last, t))
    desk = services.repair
    for ticket in tickets.tolist():
        if ticket not in out:
            times = desk.state.times[ticket]
            known = times[~np.isnan(times)]
            out[ticket] = (float(times[Status.submitted]), float(known.max()))
    return out


def parse_when(name: str, text: str | None) -> datetime | None:
    if text is None or text == "":
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Open311Error(400, f"{name} must be a w3 date-time such as 2010-01-01T00:00:00Z, got {text!r}") from None
    if moment.tzinfo is None:
        raise Open311Error(400, f"{name} must include its time zone (Z or +08:00), got {text!r}")
    return moment


# ------------------------------------------------------------------ errors and formats
class Open311Error(Exception):
    """An Open311 error: the HTTP status (also the error's code) and a description."""

    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status = status
        self.description = description


def _status_for(reason: Reason) -> int:
    """The server's status for a refusal, with 422 (a wrong request) as the spec's 400."""
    status = status_of(reason)
    return 400 if status == 422 else status


def _error_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, Open311Error):
        return exc.status, exc.description
    if isinstance(exc, ServiceError):
        return _status_for(exc.reason), f"{exc.reason.name}: {exc}"
    if isinstance(exc, RequestValidationError):
        return 400, "; ".join(f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg', '')}"
                              for e in exc.errors())
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, ValueError):
        return 400, str(exc)
    if isinstance(exc, (WriteFailed, Stopped)):
        return 503, f"not recorded, retry: {exc}"
    return 500, f"internal error ({type(exc).__name__}); the request was not applied"


def _fmt(response_format: str) -> str:
    if response_format not in ("json", "xml"):
        raise Open311Error(400, f"the response format is json or xml, not {response_format!r}")
    return response_format


def render(content, fmt: str, root: str, item: str, status: int = 200) -> Response:
    """``content`` (a list of dicts) as JSON, or as the spec's XML (``<root><item>...``)."""
    if fmt != "xml":
        return JSONResponse(content, status_code=status)
    top = ET.Element(root)
    for entry in content:
        element = ET.SubElement(top, item)
        for key, value in entry.items():
            child = ET.SubElement(element, key)
            if value is not None:
                child.text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    body = ET.tostring(top, encoding="utf-8", xml_declaration=True)
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


def errors(status: int, description: str, fmt: str | None = "json") -> Response:
    """The spec's error list: ``[{"code", "description"}]`` (``<errors><error>`` in XML)."""
    return render([{"code": status, "description": description}], "xml" if fmt == "xml" else "json",
                  "errors", "error", status=status)


class _Open311Route(APIRoute):
    """Every failure of an Open311 route, whatever raised it, answers in the spec's error format."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def guarded(request: Request):
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 - answered as an error list, never a traceback
                status, description = _error_of(exc)
                return errors(status, description, request.path_params.get("response_format"))

        return guarded


router = APIRouter(prefix=PREFIX, tags=["open311"], route_class=_Open311Route)
_SUBMIT = next(op for op in OPERATIONS if op.name == "repair.submit")
_GET = next(op for op in OPERATIONS if op.name == "repair.get")

#: The fields a POST may carry (the spec's, ``jurisdiction_id`` accepted and ignored).
POST_FIELDS = ("api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id",
               "email", "device_id", "account_id", "first_name", "last_name", "phone", "description",
               "media_url")
_ERRORS_DOC = {code: {"description": what} for code, what in (
    (400, "a wrong request: [{code, description}]"), (403, "no valid api_key, or not for this role"),
    (404, "no such service or request"), (503, "not recorded: retry"))}


def _principal(request: Request, api_key):
    """The caller, from ``api_key`` or ``Authorization: Bearer`` (the server's own token check)."""
    authorization = request.headers.get("authorization")
    if api_key in (None, "") and not authorization:
        raise Open311Error(403, "an api_key is required (or Authorization: Bearer <token>)")
    if api_key not in (None, ""):
        if not isinstance(api_key, str):
            raise Open311Error(403, "api_key must be text")
        authorization = f"Bearer {api_key}"
    try:
        return request.app.state.principal(authorization)
    except Exception as exc:  # the server's own "unauthenticated" refusal
        raise Open311Error(403, f"invalid api_key: {exc}") from None


def _app(request: Request):
    state = request.app.state
    return state.services, state.committer, state.clock


# ------------------------------------------------------------------ GET services
@router.get("/services.{response_format}", summary="Open311: the repair services (one per category)",
            responses=_ERRORS_DOC)
async def get_services(response_format: str):
    return render(services_list(), _fmt(response_format), "services", "service")


@router.get("/services/{service_code}.{response_format}", summary="Open311: a service's definition",
            responses=_ERRORS_DOC)
async def get_service_definition(service_code: str, response_format: str):
    fmt = _fmt(response_format)
    if service_code not in Category.__members__:
        raise Open311Error(404, f"no service {service_code!r}; see services.{fmt}")
    if fmt == "xml":
        return render([{"service_code": service_code, "attributes": None}], fmt, "service_definition",
                      "service")
    return JSONResponse({"service_code": service_code, "attributes": []})


# ------------------------------------------------------------------ POST requests
_FORM_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["service_code"],
                "properties": {name: {"type": "string"} for name in POST_FIELDS}}


@router.post("/requests.{response_format}", status_code=201, responses=_ERRORS_DOC,
             summary="Open311: report a repair (form-encoded or JSON)",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA},
                 "application/json": {"schema": _FORM_SCHEMA}}}})
async def post_request(request: Request, response_format: str,
                       idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200)):
    fmt = _fmt(response_format)
    fields = await _post_fields(request)
    who = _principal(request, fields.pop("api_key", None))
    services, committer, clock = _app(request)
    payload = _submission(fields)
    address = fields.get("address_string") if fields.get("address_id") is None else None
    location = payload.pop("_location_text")

    def submit(s):
        s.repair._check_text(address_string=address)  # the desk's limit on free text
        check_unicode(address, "address_string")
        before = s.repair.n_tickets
        status, content = _answer(s, _SUBMIT, who, {}, payload, clock(), idempotency_key)
        if status >= 400:
            return status, content, None
        ticket = submitted_ticket(content, idempotency_key)
        if address and s.repair.n_tickets > before:  # a new ticket, not a kept answer
            s.repair._set_detail(ticket, "location", address)
        return status, content, int(s.repair.state.reporter[ticket])

    status, content, reporter = await committer.run(submit)
    if status >= 400:
        description = f"{content['title']}: {content['detail']}"
        if content["title"] == Reason.MissingField.name and location is not None:
            description = f"{location}; {description}"
        return errors(400 if status == 422 else status, description, fmt)
    ticket = content["id"]
    notice = (f"已受理，物业服务中心将派工维修 Received: the office will dispatch a worker "
              f"(request {ticket})")
    return render([{"service_request_id": str(ticket), "service_notice": notice, "account_id": str(reporter)}],
                  fmt, "service_requests", "request", status=201)


def submitted_ticket(content, key) -> int:
    """The ticket id of a ``repair.submit`` answer; a key kept with another operation's answer is refused."""
    if isinstance(content, dict) and isinstance(content.get("id"), int) and set(content) == {"id"}:
        return content["id"]
    raise ValueError(f"the Idempotency-Key {key!r} was used for another request; send a new key")


async def _post_fields(request: Request) -> dict:
    """The POST's fields, from the form or JSON body and the query string; each named once, each text."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = await request.json()
        except Exception:  # noqa: BLE001 - any undecodable body
            raise Open311Error(400, "the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Open311Error(400, "a JSON body must be an object of the spec's fields")
        items = list(body.items())
    elif kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        try:
            form = await request.form()
        except Exception:  # noqa: BLE001 - a malformed form
            raise Open311Error(400, "the form could not be read") from None
        items = list(form.multi_items())
    elif kind == "" and not await request.body():
        items = []
    else:
        raise Open311Error(400, f"send the fields form-encoded (application/x-www-form-urlencoded) "
                                f"or as JSON, not {kind!r}")
    items += list(request.query_params.multi_items())
    fields: dict = {}
    for name, value in items:
        if name.startswith("attribute[") and name.endswith("]"):
            raise Open311Error(400, f"{name}: these services have no attributes (metadata is false)")
        if name not in POST_FIELDS:
            raise Open311Error(400, f"unknown field {name!r}; the fields are {', '.join(POST_FIELDS)}")
        if name in fields:
            raise Open311Error(400, f"{name} is given more than once")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise Open311Error(400, f"{name} must be text, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise Open311Error(400, f"{name} must be a finite number")
        fields[name] = value if isinstance(value, str) or name in ("address_id", "account_id") else str(value)
    return fields


def _submission(fields: dict) -> dict:
    """``repair.submit``'s body from the spec's fields (the desk decides what is missing or wrong)."""
    payload: dict = {"category": fields.get("service_code"), "description": fields.get("description"),
                     "_location_text": None}
    if fields.get("address_id") is not None:
        place = address_of_id(fields["address_id"])
        if place is None:
            payload["_location_text"] = (f"address_id {fields['address_id']!r} is not "
                                         f"building * {LOCATION_BASE} + unit")
    elif fields.get("address_string") is not None:
        place = parse_address(fields["address_string"])
        if place is None:
            payload["_location_text"] = (f"address_string {fields['address_string']!r} names no building and "
                                         f"unit (write it like 3-402 or 3栋402)")
    else:
        place = None
        payload["_location_text"] = "no address_string or address_id (lat/long locate nothing here)"
    payload["building"], payload["unit"] = place if place is not None else (None, None)
    name = " ".join(str(fields[k]) for k in ("first_name", "last_name") if fields.get(k))
    contact = "; ".join(x for x in (name, fields.get("email"), fields.get("phone")) if x)
    if contact:
        payload["contact"] = contact
    account = fields.get("account_id")
    if account not in (None, ""):
        if isinstance(account, str) and account.strip().isascii() and account.strip().isdigit():
            account = int(account.strip())
        payload["reporter"] = account  # for staff reporting on behalf; the op binds a resident to themself
    return payload


# ------------------------------------------------------------------ GET requests
@router.get("/requests.{response_format}", summary="Open311: repair requests (filters as the spec says)",
            responses=_ERRORS_DOC)
async def get_requests(request: Request, response_format: str,
                       service_request_id: str | None = Query(None, description="comma-delimited ids; "
                                                                                  "overrides the other filters"),
                       service_code: str | None = Query(None, description="comma-delimited service codes"),
                       start_date: str | None = Query(None, description="earliest requested_datetime (w3)"),
                       end_date: str | None = Query(None, description="latest requested_datetime (w3)"),
                       status: str | None = Query(None, description="open, closed or open,closed"),
                       api_key: str | None = Query(None), jurisdiction_id: str | None = Query(None)):
    fmt = _fmt(response_format)
    who = _principal(request, api_key)
    services, committer, clock = _app(request)
    epoch = epoch_of(services, clock)
    if service_request_id is not None:
        ids = [_request_id(x) for x in service_request_id.split(",")]
        selection = dict(ids=ids)
    else:
        selection = dict(codes=_codes(service_code), statuses=_statuses(status),
                         window=_window(parse_when("start_date", start_date), parse_when("end_date", end_date),
                                        epoch, clock))

    def read(s):
        desk = s.repair
        if "ids" in selection:
            chosen = [i for i in dict.fromkeys(selection["ids"]) if 0 <= i < desk.n_tickets]
        else:
            n = desk.n_tickets
            keep = np.isin(desk.state.category[:n], selection["codes"]) & np.isin(desk.state.status[:n],
                                                                                    selection["statuses"])
            chosen = np.flatnonzero(keep).tolist()
        times = ticket_times(s, chosen)
        if "window" in selection:
            low, high = selection["window"]
            chosen = [i for i in chosen if low <= times[i][0] <= high]
        chosen = chosen[:MAX_REQUESTS]
        return [present(s, who, i, times[i], epoch) for i in chosen]

    return render(await committer.run(read), fmt, "service_requests", "request")


@router.get("/requests/{service_request_id}.{response_format}", summary="Open311: one repair request",
            responses=_ERRORS_DOC)
async def get_request(request: Request, service_request_id: str, response_format: str,
                      api_key: str | None = Query(None), jurisdiction_id: str | None = Query(None)):
    fmt = _fmt(response_format)
    who = _principal(request, api_key)
    services, committer, clock = _app(request)
    epoch = epoch_of(services, clock)
    ticket = service_request_id.strip()
    ticket = int(ticket) if ticket.isascii() and ticket.isdigit() and len(ticket) <= 18 else ticket

    def read(s):
        call(_GET, s, who, {"ticket": ticket}, {}, 0.0)  # the desk's refusals: not an id, unknown
        return [present(s, who, ticket, ticket_times(s, [ticket])[ticket], epoch)]

    return render(await committer.run(read), fmt, "service_requests", "request")


def present(services, who, ticket: int, times: tuple[float, float], epoch: float) -> dict:
    """One ticket as an Open311 request, as ``repair.get`` shows it to ``who``."""
    t = call(_GET, services, who, {"ticket": ticket}, {}, 0.0)
    status = Status[t["status"]]
    notes = services.repair._detail(ticket, "notes")
    worker = f", worker {t['worker']}" if t["worker"] is not None else ""
    category = Category[t["category"]]
    return {
        "service_request_id": str(ticket),
        "status": "open" if status in OPEN else "closed",
        "status_notes": STATUS_TEXT[status] + worker + (f"; {notes}" if notes else ""),
        "service_name": service_name(category),
        "service_code": category.name,
        "description": t["description"],
        "agency_responsible": "物业服务中心 property service office",
        "service_notice": "",
        "requested_datetime": iso(epoch, times[0]),
        "updated_datetime": iso(epoch, times[1]),
        "address": services.repair._detail(ticket, "location") or address_text(t["building"], t["unit"]),
        "address_id": str(t["location"]),
    }


def _request_id(text: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise Open311Error(400, f"service_request_id is a list of ids such as 12,15, got {text!r}")
    return int(text)


def _codes(text: str | None) -> list[int]:
    if text is None or text == "":
        return [int(c) for c in Category]
    try:
        return [int(_member(Category, code, "service_code")) for code in text.split(",")]
    except ServiceError as refused:  # the desk's own reading of a category name
        raise Open311Error(400, f"{refused}; see services.json") from None


def _statuses(text: str | None) -> list[int]:
    if text is None or text == "":
        return [int(s) for s in Status]
    out = []
    for word in text.split(","):
        word = word.strip().lower()
        if word not in ("open", "closed"):
            raise Open311Error(400, f"status is open, closed or both (comma-delimited), got {word!r}")
        out += [int(s) for s in Status if (s in OPEN) == (word == "open")]
    return out


def _window(start: datetime | None, end: datetime | None, epoch: float, clock) -> tuple[float, float]:
    """The requested_datetime range in the store's minutes (the spec's 90-day default and limit)."""
    if start is None and end is None:
        end = datetime.fromtimestamp(epoch + clock() * 60.0, tz=timezone.utc)
    if start is None:
        start = end - MAX_SPAN
    if end is None:
        end = start + MAX_SPAN
    if end < start:
        raise Open311Error(400, "end_date is before start_date")
    if end - start > MAX_SPAN:
        raise Open311Error(400, "start_date and end_date may not span more than 90 days")
    return ((start.timestamp() - epoch) / 60.0, (end.timestamp() - epoch) / 60.0)
