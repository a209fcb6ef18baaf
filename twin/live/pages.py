"""Server-rendered pages for residents and staff: Jinja2 templates, plain HTML forms, no front-end build.

:func:`install_pages` mounts them on the API's application:

- ``/`` is the public progress board, or the signed-in person's home page;
  ``/board`` is the board for everyone (open tickets by category and age,
  this month's mean time from report to repair, results of closed topics).
- ``/login`` takes a pasted token (``/login?token=...`` fills it in; one
  press of the button signs in, so a link on another site cannot sign a
  browser into someone else's account).  A session is a random id in an
  HttpOnly, SameSite=Strict cookie (Secure over https) mapped in memory to
  the account's :class:`~twin.live.accounts.Principal`; a restart signs
  everyone out.  ``/logout`` ends it.
- Every form that changes something is a POST carrying the session's CSRF
  token in a hidden field; a POST without it (or with another) is refused
  with 403 and applies nothing.  The sign-in form has its own token, bound
  to a cookie set with the form.
- Every action is one of the API's operations, applied with
  :func:`twin.live.operations.call` through the same group-commit writer as
  the API (so the same roles, identity rules and service rules decide it),
  and every read runs in that writer too.  A refusal is shown on the page
  as a sentence (:mod:`twin.live.page_text`), with the status the API would
  answer; never a trace.
- Chinese by default; ``?lang=en`` (or the switch in the header) chooses
  English, and a cookie keeps the choice.  A large-type switch (a cookie
  too) enlarges every size on the page.  Pages use real buttons, labels,
  fieldsets and a visible focus ring, and no script at all.
"""
import functools
import hmac
import logging
import math
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from twin.live import accounts as acc
from twin.live import page_text as pt
from twin.live.operations import OPERATIONS, call
from twin.live.problems import status_of
from twin.services.events import WriteFailed
from twin.services.reasons import ServiceError

OPS = {op.name: op for op in OPERATIONS}
HERE = Path(__file__).parent
SESSION_COOKIE = "twin_session"
LOGIN_COOKIE = "twin_login"
#: A session unused this long is forgotten (seconds).
SESSION_IDLE_S = 12 * 3600
#: Tokens are 43 characters; anything much longer is not one.
MAX_TOKEN_CHARS = 200
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
AGE_BUCKETS = (("age_day", 1.0), ("age_3days", 3.0), ("age_week", 7.0), ("age_older", math.inf))
OPEN_STATUSES = ("submitted", "dispatched", "in_progress")
STEPS = {"screen": ("voting.screen", {"passed": True}), "reject": ("voting.screen", {"passed": False}),
         "notice": ("voting.notice", {}), "open": ("voting.open", {}), "close": ("voting.close", {}),
         "resolve": ("voting.resolve", {})}

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ sessions
@dataclass
class Session:
    principal: acc.Principal
    csrf: str
    seen: float
    flash: str | None = None


class Sessions:
    """Signed-in browsers: a random id (the cookie's value) to its session, in memory."""

    def __init__(self, idle_s: float = SESSION_IDLE_S):
        self.idle_s = idle_s
        self._by_id: dict[str, Session] = {}

    def new(self, principal: acc.Principal) -> str:
        self._expire()
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = Session(principal, secrets.token_urlsafe(32), time.monotonic())
        return sid

    def get(self, sid: str | None) -> Session | None:
        session = self._by_id.get(sid) if sid else None
        if session is None:
            return None
        now = time.monotonic()
        if now - session.seen > self.idle_s:
            del self._by_id[sid]
            return None
        session.seen = now
        return session

    def drop(self, sid: str | None) -> None:
        self._by_id.pop(sid, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [k for k, s in self._by_id.items() if now - s.seen > self.idle_s]:
            del self._by_id[sid]


# ------------------------------------------------------------------ outcomes
class Refusal(Exception):
    """An action or read that was refused: ``name`` is a Reason's name or a key of the pages' texts."""

    def __init__(self, name: str, status: int):
        super().__init__(name)
        self.name, self.status = name, status


class _Stop(Exception):
    """End the request with a page saying ``key`` (a text key), with ``status``."""

    def __init__(self, key: str, status: int):
        super().__init__(key)
        self.key, self.status = key, status


class _NeedLogin(Exception):
    pass


def _number(value):
    """A form field as an int when it is one; blank is None; anything else goes on as typed.

    The services decide what a wrong value means (``NotAnInteger``,
    ``MissingField``): the page only undoes HTML's everything-is-text.
    """
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    return int(value) if re.fullmatch(r"[+-]?\d{1,18}", value) else value


def _text(value, limit: int = 100_000):
    value = "" if value is None else str(value)
    return value[:limit]


def _local(path: str | None) -> str:
    """A path on this site to go back to (never another site)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


# ------------------------------------------------------------------ the pages
class Pages:
    """The pages' shared machinery: sessions, rendering, operations through the writer."""

    def __init__(self, services, committer, clock):
        self.services, self.committer, self.clock = services, committer, clock
        self.sessions = Sessions()
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"),
                               autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        self.css = (HERE / "static" / "pages.css").read_bytes()
        self._epoch = ...  # unknown until read in the writer

    # ---------------------------------------------------------- writer
    async def read(self, query):
        """``query(services, now)`` in the writer (reads see every answered write)."""
        try:
            return await self.committer.run(lambda s: query(s, self.clock()))
        except ServiceError as refused:
            raise Refusal(refused.reason.name, status_of(refused.reason)) from None

    async def do(self, who: acc.Principal, name: str, path: dict | None = None, body: dict | None = None):
        """Apply the operation ``name`` for ``who``, exactly as the API would."""
        op = OPS[name]
        try:
            return await self.committer.run(lambda s: call(op, s, who, dict(path or {}), dict(body or {}),
                                                           self.clock()))
        except ServiceError as refused:
            raise Refusal(refused.reason.name, status_of(refused.reason)) from None
        except ValueError:
            raise Refusal("bad_input", 422) from None
        except WriteFailed:
            raise Refusal("write_failed", 503) from None

    async def epoch(self):
        if self._epoch is ...:
            self._epoch = await self.committer.run(lambda s: s.store.epoch if s.store is not None else None)
        return self._epoch

    async def time_text(self, lang: str):
        epoch = await self.epoch()

        def fmt(t):
            if t is None or (isinstance(t, float) and math.isnan(t)):
                return "—"
            if epoch is not None:
                return datetime.fromtimestamp(epoch + float(t) * 60.0).strftime("%Y-%m-%d %H:%M")
            day, minute = divmod(int(float(t)), 1440)
            hhmm = f"{minute // 60:02d}:{minute % 60:02d}"
            return f"第{day}天 {hhmm}" if lang != "en" else f"day {day} {hhmm}"

        return fmt

    # ---------------------------------------------------------- sessions and forms
    def session(self, request: Request, required: bool = True) -> Session | None:
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None and required:
            raise _NeedLogin()
        return session

    async def form(self, request: Request, session: Session):
        """The posted form, after checking its CSRF token against the session's."""
        form = await request.form()
        sent = form.get("csrf")
        if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise _Stop("csrf_failed", 403)
        return form

    def gate(self, session: Session, op_name: str) -> None:
        """A staff page is shown to the roles that may apply its operation."""
        if session.principal.role not in OPS[op_name].roles:
            raise _Stop("not_for_role", 403)

    # ---------------------------------------------------------- rendering
    def prefs(self, request: Request):
        cookies = {}
        lang = request.query_params.get("lang")
        if lang in pt.LANGS:
            cookies["lang"] = lang
        else:
            lang = request.cookies.get("lang")
            lang = lang if lang in pt.LANGS else "zh"
        large = request.query_params.get("large")
        if large in ("0", "1"):
            cookies["large"] = large
        else:
            large = request.cookies.get("large", "0")
        return lang, large == "1", cookies

    async def render(self, request: Request, template: str, session: Session | None = None, *,
                     status: int = 200, error: Refusal | None = None, **context) -> HTMLResponse:
        lang, large, cookies = self.prefs(request)
        who = session.principal if session else None
        flash, session_flash = None, session.flash if session else None
        if session_flash:
            flash, session.flash = pt.text(session_flash, lang), None
        html = self.env.get_template(template).render(
            t=lambda key, **fmt: pt.text(key, lang, **fmt), lang=lang, large=large, who=who,
            csrf=session.csrf if session else "", nav=_nav(who), path=request.url.path, flash=flash,
            error=None if error is None else {"message": pt.refusal(error.name, lang), "name": error.name},
            L=lambda table, name: pt.label(getattr(pt, table), name, lang), when=await self.time_text(lang),
            form=context.pop("form", None) or {}, **context)
        response = HTMLResponse(html, status_code=status)
        for name, value in cookies.items():
            self.cookie(request, response, name, value, max_age=365 * 86400, samesite="lax")
        return _headers(response, private=session is not None)

    def cookie(self, request, response, name, value, max_age=None, samesite="strict"):
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite=samesite,
                            secure=request.url.scheme == "https")

    def redirect(self, to: str, private: bool = True) -> Response:
        return _headers(RedirectResponse(to, status_code=303), private=private)


def _headers(response: Response, private: bool) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if private:
        response.headers["Cache-Control"] = "no-store"
    return response


def _nav(who: acc.Principal | None):
    if who is None:
        return [("/board", "board"), ("/login", "login")]
    role = who.role
    items = [("/", "home")]
    if role == "resident":
        items += [("/repair", "repair"), ("/points", "points")]
    if role in OPS["repair.start"].roles:
        items.append(("/queue", "queue"))
    if role in OPS["repair.dispatch"].roles:
        items.append(("/dispatch", "dispatch_board"))
    items += [("/timebank", "timebank"), ("/topics", "topics")]
    if role in OPS["timebank.resolve"].roles:
        items.append(("/disputes", "disputes"))
    if role == "admin":
        items.append(("/accounts", "accounts"))
    items.append(("/board", "board"))
    return items


# ------------------------------------------------------------------ reads the operations lack in this shape
def _ticket_ids(services, *, reporter=None, worker=None, statuses=None, newest_first=True, limit=100):
    desk = services.repair
    n = desk.n_tickets
    keep = np.ones(n, bool)
    if reporter is not None:
        keep &= desk.state.reporter[:n] == reporter
    if worker is not None:
        keep &= desk.state.worker[:n] == worker
    if statuses is not None:
        from twin.services.repair import Status

        keep &= np.isin(desk.state.status[:n], [int(Status[s]) for s in statuses])
    ids = np.flatnonzero(keep)
    ids = ids[::-1] if newest_first else ids
    return [int(i) for i in ids[:limit]]


def _topics(services) -> list[dict]:
    """Every topic's public facts (method, options, projects, when voting may open)."""
    from twin.services.voting import METHODS, STATES

    snap = services.voting.snapshot()
    out = []
    for topic in range(snap["n_topics"]):
        state = STATES[int(snap["topic_state"][topic])]
        n_projects = int(snap["topic_n_projects"][topic])
        noticed = state not in ("proposed", "screened", "rejected")
        out.append({"id": topic, "state": state, "method": METHODS[int(snap["topic_method"][topic])],
                    "n_options": int(snap["topic_n_options"][topic]), "budget": int(snap["topic_budget"][topic]),
                    "costs": [int(c) for c in snap["topic_costs"][topic][:n_projects]],
                    "opens_at": float(snap["topic_noticed_at"][topic] + snap["topic_notice_minutes"][topic])
                    if noticed else None})
    return out


def _plain(value):
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _chart(topic: dict, result: dict, lang: str) -> dict:
    """Bars for a result: one per option, winners (or funded projects) marked."""
    counts = [float(c) for c in _plain(result["counts"])]
    marked = set(_plain(result.get("funded") or [])) if topic["method"] == "budget" \
        else set(_plain(result.get("winners") or []))
    top = max(counts, default=0.0) or 1.0
    rows = []
    for i, count in enumerate(counts):
        rows.append({"label": _option_label(topic, i, lang), "count": int(count) if count.is_integer() else count,
                     "width": round(210 * count / top, 1), "marked": i in marked, "y": 8 + 34 * i})
    return {"rows": rows, "height": 16 + 34 * len(rows)}


def _option_label(topic: dict, i: int, lang: str) -> str:
    if topic["method"] == "budget":
        cost = topic["costs"][i] if i < len(topic["costs"]) else "?"
        return f"{pt.text('project', lang)} {i + 1} ({cost})"
    return f"{pt.text('option', lang)} {i + 1}"


def _board(services, now, epoch) -> dict:
    """The public board's numbers, read in the writer."""
    from twin.services.repair import Category, Status

    desk = services.repair
    n = desk.n_tickets
    status = desk.state.status[:n]
    submitted_at = desk.state.times[:n, int(Status.submitted)]
    completed_at = desk.state.times[:n, int(Status.completed)]
    open_mask = np.isin(status, [int(Status[s]) for s in OPEN_STATUSES])
    age_days = (now - submitted_at) / 1440.0
    table = []
    for category in Category:
        mine = open_mask & (desk.state.category[:n] == int(category))
        counts, lower = [], -math.inf
        for _, upper in AGE_BUCKETS:
            counts.append(int((mine & (age_days >= lower) & (age_days < upper)).sum()))
            lower = upper
        if sum(counts):
            table.append({"category": category.name, "counts": counts, "total": sum(counts)})
    if epoch is not None:
        day = datetime.fromtimestamp(epoch + now * 60.0)
        month_start = (day.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp() - epoch) / 60.0
    else:  # services without a store (tests): the last 30 days
        month_start = now - 30 * 1440.0
    done = np.isin(status, [int(Status.completed), int(Status.rated)]) & (completed_at >= month_start) \
        & (completed_at <= now)
    waits = completed_at[done] - submitted_at[done]
    topics = [t for t in _topics(services) if t["state"] in ("closed", "resolved")]
    for topic in topics:
        if topic["state"] == "resolved":
            topic["result"] = {k: _plain(v) for k, v in vars(services.voting.result(topic["id"])).items()}
    return {"table": table, "open_total": int(open_mask.sum()), "done": int(done.sum()),
            "mean_wait_hours": round(float(waits.mean()) / 60.0, 1) if len(waits) else None,
            "topics": topics[::-1]}


# ------------------------------------------------------------------ routes
def install_pages(app: FastAPI, services, committer, clock) -> Pages:
    """Mount the pages on ``app`` (the API's application; same writer, same clock)."""
    pages = Pages(services, committer, clock)
    app.state.pages = pages

    def route(path, methods=("GET",)):
        def register(handler):
            @functools.wraps(handler)
            async def guarded(request: Request, **kwargs):
                try:
                    return await handler(request, **kwargs)
                except _NeedLogin:
                    return pages.redirect("/login", private=False)
                except _Stop as stop:
                    return await pages.render(request, "message.html", pages.session(request, False),
                                              status=stop.status, error=Refusal(stop.key, stop.status))
                except Refusal as refused:
                    return await pages.render(request, "message.html", pages.session(request, False),
                                              status=refused.status, error=refused)
                except Exception:  # noqa: BLE001 - a bug: a sentence for the person, the trace for the log
                    log.exception("page %s failed", request.url.path)
                    return await pages.render(request, "message.html", None, status=500,
                                              error=Refusal("bug", 500))

            app.add_api_route(path, guarded, methods=list(methods), include_in_schema=False,
                              response_class=HTMLResponse)
            return guarded

        return register

    # ---------------------------------------------------------- frame
    @route("/static/pages.css")
    async def css(request: Request):
        return Response(pages.css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @route("/prefs")
    async def prefs(request: Request):
        lang, large, cookies = pages.prefs(request)
        response = pages.redirect(_local(request.query_params.get("next")), private=False)
        for name, value in cookies.items():
            pages.cookie(request, response, name, value, max_age=365 * 86400, samesite="lax")
        return response

    @route("/")
    async def home(request: Request):
        session = pages.session(request, required=False)
        if session is None:
            return await board_page(request, None)
        return await pages.render(request, "home.html", session)

    @route("/board")
    async def board(request: Request):
        return await board_page(request, pages.session(request, required=False))

    async def board_page(request, session):
        epoch = await pages.epoch()
        data = await pages.read(lambda s, now: _board(s, now, epoch))
        lang = pages.prefs(request)[0]
        for topic in data["topics"]:
            if "result" in topic:
                topic["chart"] = _chart(topic, topic["result"], lang)
        return await pages.render(request, "board.html", session, buckets=[k for k, _ in AGE_BUCKETS], **data)

    # ---------------------------------------------------------- sign in and out
    async def login_page(request, status=200, error=None, token=""):
        login_csrf = secrets.token_urlsafe(32)
        response = await pages.render(request, "login.html", None, status=status, error=error,
                                      login_csrf=login_csrf, token=token)
        pages.cookie(request, response, LOGIN_COOKIE, login_csrf, max_age=3600)
        return response

    @route("/login")
    async def login_form(request: Request):
        return await login_page(request, token=_text(request.query_params.get("token"), MAX_TOKEN_CHARS))

    @route("/login", methods=("POST",))
    async def login(request: Request):
        form = await request.form()
        sent, expected = form.get("login_csrf"), request.cookies.get(LOGIN_COOKIE)
        if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            return await login_page(request, 403, Refusal("csrf_failed", 403))
        token = _text(form.get("token"), MAX_TOKEN_CHARS + 1).strip()
        who = None
        if 0 < len(token) <= MAX_TOKEN_CHARS:
            who = await committer.run(lambda s: acc.principal_for(s, token))
        if who is None:
            return await login_page(request, 401, Refusal("login_failed", 401))
        old = request.cookies.get(SESSION_COOKIE)
        pages.sessions.drop(old)
        sid = pages.sessions.new(who)
        pages.sessions.get(sid).flash = "logged_in"
        response = pages.redirect("/")
        pages.cookie(request, response, SESSION_COOKIE, sid)
        response.delete_cookie(LOGIN_COOKIE, path="/")
        return response

    @route("/logout", methods=("POST",))
    async def logout(request: Request):
        session = pages.session(request)
        await pages.form(request, session)
        pages.sessions.drop(request.cookies.get(SESSION_COOKIE))
        response = pages.redirect("/")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # ---------------------------------------------------------- repairs (residents)
    async def my_tickets(request, session, error=None):
        who = session.principal
        tickets = await pages.read(lambda s, now: [call(OPS["repair.get"], s, who, {"ticket": i}, {}, now)
                                                   for i in _ticket_ids(s, reporter=who.id)])
        return await pages.render(request, "repair_list.html", session, tickets=tickets, error=error,
                                  status=error.status if error else 200)

    @route("/repair")
    async def repair(request: Request):
        return await my_tickets(request, pages.session(request))

    async def new_ticket_page(request, session, error=None, form=None):
        from twin.services.repair import Category

        pages.gate(session, "repair.submit")
        return await pages.render(request, "repair_new.html", session, error=error, form=form,
                                  status=error.status if error else 200, categories=[c.name for c in Category])

    @route("/repair/new")
    async def new_ticket(request: Request):
        return await new_ticket_page(request, pages.session(request))

    @route("/repair/new", methods=("POST",))
    async def submit_ticket(request: Request):
        session = pages.session(request)
        form = await pages.form(request, session)
        contact = _text(form.get("contact")).strip()
        body = {"category": _text(form.get("category")).strip() or None,
                "description": _text(form.get("description")).strip() or None,
                "building": _number(form.get("building")), "unit": _number(form.get("unit")),
                "contact": contact or None}
        try:
            made = await pages.do(session.principal, "repair.submit", {}, body)
        except Refusal as refused:
            return await new_ticket_page(request, session, refused, dict(form))
        session.flash = "reported"
        return pages.redirect(f"/repair/{made['id']}")

    async def ticket_page(request, session, ticket, error=None):
        ticket_view = await pages.do(session.principal, "repair.get", {"ticket": ticket})
        return await pages.render(request, "ticket.html", session, ticket=ticket_view, error=error,
                                  status=error.status if error else 200)

    @route("/repair/{ticket:int}")
    async def ticket(request: Request, ticket: int):
        return await ticket_page(request, pages.session(request), ticket)

    async def ticket_action(request, ticket, op_name, body_of, done, back):
        session = pages.session(request)
        form = await pages.form(request, session)
        try:
            await pages.do(session.principal, op_name, {"ticket": ticket}, body_of(form))
        except Refusal as refused:
            return await back(request, session, ticket, refused)
        session.flash = done
        return None

    @route("/repair/{ticket:int}/rate", methods=("POST",))
    async def rate(request: Request, ticket: int):
        answer = await ticket_action(request, ticket, "repair.rate",
                                     lambda f: {"rating": _number(f.get("rating")),
                                                "comment": _text(f.get("comment")).strip()},
                                     "rated", ticket_page)
        return answer or pages.redirect(f"/repair/{ticket}")

    @route("/repair/{ticket:int}/cancel", methods=("POST",))
    async def cancel(request: Request, ticket: int):
        answer = await ticket_action(request, ticket, "repair.cancel", lambda f: {}, "cancelled", ticket_page)
        return answer or pages.redirect(f"/repair/{ticket}")

    # ---------------------------------------------------------- repairs (staff)
    async def queue_page(request, session, _ticket=None, error=None):
        pages.gate(session, "repair.start")
        who = session.principal
        worker = who.id if who.role == "technician" else None
        tickets = await pages.read(
            lambda s, now: [call(OPS["repair.get"], s, who, {"ticket": i}, {}, now)
                            for i in _ticket_ids(s, worker=worker, statuses=("dispatched", "in_progress"),
                                                 newest_first=False)])
        return await pages.render(request, "queue.html", session, tickets=tickets, error=error,
                                  status=error.status if error else 200)

    @route("/queue")
    async def queue(request: Request):
        return await queue_page(request, pages.session(request))

    @route("/repair/{ticket:int}/start", methods=("POST",))
    async def start(request: Request, ticket: int):
        answer = await ticket_action(request, ticket, "repair.start", lambda f: {}, "started", queue_page)
        return answer or pages.redirect("/queue")

    @route("/repair/{ticket:int}/complete", methods=("POST",))
    async def complete(request: Request, ticket: int):
        answer = await ticket_action(request, ticket, "repair.complete", lambda f: {}, "completed", queue_page)
        return answer or pages.redirect("/queue")

    async def dispatch_page(request, session, _ticket=None, error=None):
        pages.gate(session, "repair.dispatch")
        who = session.principal
        waiting = await pages.do(who, "repair.list", {}, {"status": "submitted", "page": 1, "limit": 100})
        workers = await pages.read(lambda s, now: sorted((p.id, p.name) for p in acc.accounts(s)
                                                         if p.role == "technician"))
        return await pages.render(request, "dispatch.html", session, waiting=waiting, workers=workers,
                                  error=error, status=error.status if error else 200)

    @route("/dispatch")
    async def dispatch(request: Request):
        return await dispatch_page(request, pages.session(request))

    @route("/repair/{ticket:int}/dispatch", methods=("POST",))
    async def dispatch_ticket(request: Request, ticket: int):
        answer = await ticket_action(request, ticket, "repair.dispatch",
                                     lambda f: {"worker": _number(f.get("worker"))}, "dispatched", dispatch_page)
        return answer or pages.redirect("/dispatch")

    # ---------------------------------------------------------- points
    async def points_page(request, session, error=None):
        who = session.principal
        try:
            balance = (await pages.do(who, "points.balance", {"resident": who.id}))["balance"]
            history = await pages.do(who, "points.history", {"resident": who.id})
        except Refusal as refused:
            if refused.name != "UnknownAccount":
                raise
            balance, history = None, []
        catalogue = await pages.do(who, "points.catalogue")
        return await pages.render(request, "points.html", session, balance=balance, history=history[::-1],
                                  catalogue=catalogue, error=error, status=error.status if error else 200)

    @route("/points")
    async def points(request: Request):
        return await points_page(request, pages.session(request))

    @route("/points/redeem", methods=("POST",))
    async def redeem(request: Request):
        session = pages.session(request)
        form = await pages.form(request, session)
        who = session.principal
        try:
            await pages.do(who, "points.redeem", {"resident": who.id}, {"item": _number(form.get("item"))})
        except Refusal as refused:
            return await points_page(request, session, refused)
        session.flash = "redeemed"
        return pages.redirect("/points")

    # ---------------------------------------------------------- time bank
    async def timebank_page(request, session, error=None, form=None):
        from twin.services.timebank import ServiceKind

        who = session.principal
        try:
            balance = (await pages.do(who, "timebank.balance", {"member": who.id}))["balance"]
        except Refusal as refused:
            if refused.name not in ("UnknownMember", "InvalidId"):
                raise
            balance = None
        pending = await pages.do(who, "timebank.pending")
        return await pages.render(request, "timebank.html", session, balance=balance, pending=pending,
                                  kinds=[k.name for k in ServiceKind], error=error, form=form,
                                  status=error.status if error else 200)

    @route("/timebank")
    async def timebank(request: Request):
        return await timebank_page(request, pages.session(request))

    @route("/timebank/record", methods=("POST",))
    async def record(request: Request):
        session = pages.session(request)
        form = await pages.form(request, session)
        body = {"provider": session.principal.id, "receiver": _number(form.get("receiver")),
                "minutes": _number(form.get("minutes")), "kind": _text(form.get("kind")).strip() or "other"}
        try:
            await pages.do(session.principal, "timebank.record", {}, body)
        except Refusal as refused:
            return await timebank_page(request, session, refused, dict(form))
        session.flash = "recorded"
        return pages.redirect("/timebank")

    @route("/timebank/{record:int}/{action}", methods=("POST",))
    async def record_action(request: Request, record: int, action: str):
        done = {"confirm": "confirmed", "dispute": "disputed_ok", "cancel": "cancelled", "resolve": "resolved_ok"}
        if action not in done:
            raise _Stop("not_found", 404)
        session = pages.session(request)
        form = await pages.form(request, session)
        body = {"uphold": form.get("uphold") == "1"} if action == "resolve" else {}
        try:
            await pages.do(session.principal, f"timebank.{action}", {"record": record}, body)
        except Refusal as refused:
            if action == "resolve":
                return await disputes_page(request, session, refused)
            return await timebank_page(request, session, refused)
        session.flash = done[action]
        return pages.redirect("/disputes" if action == "resolve" else "/timebank")

    async def disputes_page(request, session, error=None):
        from twin.services.timebank import MINUTES, PROVIDER, RECEIVER, STATUS, RecordStatus

        pages.gate(session, "timebank.resolve")

        def disputed(s, now):
            bank = s.timebank
            rec = bank.records[: bank.n_records]
            return [{"record": int(r), "provider": int(rec[r, PROVIDER]), "receiver": int(rec[r, RECEIVER]),
                     "minutes": int(rec[r, MINUTES])}
                    for r in np.flatnonzero(rec[:, STATUS] == int(RecordStatus.disputed))]

        return await pages.render(request, "disputes.html", session, disputed=await pages.read(disputed),
                                  error=error, status=error.status if error else 200)

    @route("/disputes")
    async def disputes(request: Request):
        return await disputes_page(request, pages.session(request))

    # ---------------------------------------------------------- topics
    async def topics_page(request, session, error=None, form=None):
        from twin.services.voting import METHODS

        topics = await pages.read(lambda s, now: _topics(s))
        return await pages.render(request, "topics.html", session, topics=topics[::-1], methods=METHODS,
                                  error=error, form=form, status=error.status if error else 200)

    @route("/topics")
    async def topics(request: Request):
        return await topics_page(request, pages.session(request))

    @route("/topics", methods=("POST",))
    async def propose(request: Request):
        session = pages.session(request)
        form = await pages.form(request, session)
        method = _text(form.get("method")).strip()
        body = {"method": method, "n_options": _number(form.get("n_options")),
                "budget": _number(form.get("budget")) if method == "budget" else 0}
        try:
            made = await pages.do(session.principal, "voting.propose", {}, body)
        except Refusal as refused:
            return await topics_page(request, session, refused, dict(form))
        session.flash = "proposed_ok"
        return pages.redirect(f"/topics/{made['id']}")

    async def topic_page(request, session, topic, error=None):
        who = session.principal
        view = await pages.do(who, "voting.topic", {"topic": topic})
        info = await pages.read(lambda s, now: _topics(s)[topic])
        lang = pages.prefs(request)[0]
        chart = _chart(info, view["result"], lang) if "result" in view else None
        options = [{"id": i, "label": _option_label(info, i, lang)}
                   for i in range(len(info["costs"]) if info["method"] == "budget" else info["n_options"])]
        office = who.role in OPS["voting.open"].roles
        return await pages.render(request, "topic.html", session, topic=info, result=view.get("result"),
                                  chart=chart, options=options, office=office,
                                  can_vote=who.role in OPS["voting.cast"].roles, error=error,
                                  status=error.status if error else 200)

    @route("/topics/{topic:int}")
    async def topic(request: Request, topic: int):
        return await topic_page(request, pages.session(request), topic)

    @route("/topics/{topic:int}/ballot", methods=("POST",))
    async def cast(request: Request, topic: int):
        session = pages.session(request)
        form = await pages.form(request, session)
        info = await pages.read(lambda s, now: _topics(s)[topic] if 0 <= topic < s.voting.n_topics else None)
        if info is None:
            raise Refusal("UnknownTopic", 404)
        if info["method"] == "plurality":
            prefs = [_number(form.get("choice"))] if form.get("choice") else []
        elif info["method"] in ("approval", "budget"):
            prefs = [_number(v) for v in form.getlist("choice")]
        else:  # a ranking: the chosen option of each place, a blank place as -1 (the service judges gaps)
            prefs = [_number(v) if _text(v).strip() else -1 for v in form.getlist("rank")]
            while prefs and prefs[-1] == -1:
                prefs.pop()
        try:
            await pages.do(session.principal, "voting.cast", {"topic": topic}, {"prefs": prefs})
        except Refusal as refused:
            return await topic_page(request, session, topic, refused)
        session.flash = "voted"
        return pages.redirect(f"/topics/{topic}")

    @route("/topics/{topic:int}/step", methods=("POST",))
    async def step(request: Request, topic: int):
        session = pages.session(request)
        form = await pages.form(request, session)
        chosen = _text(form.get("step"))
        if chosen == "project":
            name, body = "voting.add_project", {"cost": _number(form.get("cost"))}
        elif chosen in STEPS:
            name, body = STEPS[chosen][0], dict(STEPS[chosen][1])
            if chosen == "notice" and _number(form.get("minutes")) is not None:
                body["minutes"] = _number(form.get("minutes"))
        else:
            raise _Stop("not_found", 404)
        try:
            await pages.do(session.principal, name, {"topic": topic}, body)
        except Refusal as refused:
            return await topic_page(request, session, topic, refused)
        session.flash = "step_done"
        return pages.redirect(f"/topics/{topic}")

    # ---------------------------------------------------------- accounts (admin)
    async def accounts_page(request, session, error=None, token=None, made=None, form=None):
        if session.principal.role != "admin":  # the same rule as POST /api/v1/admin/accounts
            raise _Stop("not_for_role", 403)
        people = await pages.read(lambda s, now: sorted(acc.accounts(s), key=lambda p: (p.role, p.id)))
        return await pages.render(request, "accounts.html", session, people=people, roles=acc.ROLES,
                                  token=token, made=made, error=error, form=form,
                                  status=error.status if error else 201 if token else 200)

    @route("/accounts")
    async def accounts(request: Request):
        return await accounts_page(request, pages.session(request))

    @route("/accounts", methods=("POST",))
    async def add_account(request: Request):
        session = pages.session(request)
        form = await pages.form(request, session)
        if session.principal.role != "admin":
            raise _Stop("not_for_role", 403)
        role, id, name = _text(form.get("role")).strip(), _number(form.get("id")), _text(form.get("name"), 200)
        try:
            token = await committer.run(lambda s: acc.add_account(s, role, id, name))
        except ValueError:
            return await accounts_page(request, session, Refusal("bad_input", 422), form=dict(form))
        except WriteFailed:
            return await accounts_page(request, session, Refusal("write_failed", 503), form=dict(form))
        return await accounts_page(request, session, token=token, made={"role": role, "id": id, "name": name})

    return pages
