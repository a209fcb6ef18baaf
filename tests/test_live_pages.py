"""The server-rendered pages: a real uvicorn server on 127.0.0.1, driven by Debian's chromium through Playwright.

Browser tests: a resident reports a repair, a coordinator dispatches it, a
technician completes it, the resident rates it and the public board moves;
a topic goes from notice to a published result with its chart; large type
enlarges the page; a refused action reads as a sentence.  Without a browser:
CSRF (a POST without the session's token changes nothing), the session
cookie's attributes, and that every page action goes through the API's
operations.
"""
import ast
import os
import re
from pathlib import Path

import httpx
import pytest

import live_helpers
from twin.live import page_text
from twin.live.serve import DEMO_STAFF, seed_demo
from twin.services.reasons import Reason

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


def _browser_missing():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} not found (apt-get install -y chromium)"
    return None


browser_test = pytest.mark.tool("chromium", _browser_missing())


class Clock:
    """Live time in minutes, moved by the test (voting waits a notice period of days)."""

    def __init__(self, now=60.0):
        self.now = now

    def __call__(self):
        return self.now


class Server(live_helpers.Server):
    """The shared live-test server over a seeded demo store, on a clock the test moves; ``url`` is its root."""

    def __init__(self, path):
        super().__init__(path, clock=Clock())
        self.tokens = seed_demo(self.services)

    def __enter__(self):
        super().__enter__()
        self.url = self.root
        return self


@pytest.fixture
def server(tmp_path):
    with Server(tmp_path / "community.db") as srv:
        yield srv


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _person(chromium, server, token=None):
    """A new browser (own cookies), signed in with ``token`` through the sign-in form."""
    from playwright.sync_api import expect

    page = chromium.new_context(base_url=server.url).new_page()
    page.set_default_timeout(10_000)
    if token is not None:
        page.goto("/login")
        page.get_by_label("登录口令").fill(token)
        page.get_by_role("button", name="登录", exact=True).click()
        expect(page.get_by_role("status")).to_have_text("登录成功。")
    return page


# ------------------------------------------------------------------ in the browser
@browser_test
def test_a_resident_reports_a_technician_completes_the_resident_rates_and_the_board_updates(server, chromium):
    from playwright.sync_api import expect

    public = _person(chromium, server)
    public.goto("/board")
    expect(public.locator("#open-total")).to_have_text("3")  # the demo's three open tickets
    expect(public.locator("#mean-wait")).to_have_text("—")

    resident = _person(chromium, server, server.tokens["resident"])
    resident.get_by_role("link", name="我要报修").click()
    resident.get_by_label("类别").select_option(label="给排水")
    resident.get_by_label("楼号").fill("5")
    resident.get_by_label("房号").fill("502")
    resident.get_by_label("问题描述").fill("卫生间地漏反水")
    resident.get_by_label("联系电话").fill("138-0000-1234")
    resident.get_by_role("button", name="提交").click()
    expect(resident.get_by_role("status")).to_have_text("报修已提交。")
    expect(resident.locator("#ticket-status")).to_have_text("已提交")
    ticket = int(re.search(r"/repair/(\d+)$", resident.url).group(1))
    public.reload()
    expect(public.locator("#open-total")).to_have_text("4")
    expect(public.locator('tr[data-category="plumbing"] td').last).to_have_text("2")

    office = _person(chromium, server, server.tokens["coordinator"])
    office.goto("/dispatch")
    office.locator(f"#worker-{ticket}").select_option(str(DEMO_STAFF["technician"]))
    office.locator(f"#dispatch-{ticket}").click()
    expect(office.get_by_role("status")).to_have_text("已派单。")
    expect(office.locator(f"#dispatch-{ticket}")).to_have_count(0)

    server.clock.now += 90  # an hour and a half from report to repair
    technician = _person(chromium, server, server.tokens["technician"])
    technician.goto("/queue")
    technician.get_by_role("button", name=f"开始维修 #{ticket}").click()
    expect(technician.get_by_role("status")).to_have_text("已开始维修。")
    technician.get_by_role("button", name=f"维修完成 #{ticket}").click()
    expect(technician.get_by_role("status")).to_have_text("已标记完成。")
    expect(technician.locator(f"#ticket-{ticket}")).to_have_count(0)

    resident.goto(f"/repair/{ticket}")
    expect(resident.locator("#ticket-status")).to_have_text("已完工")
    resident.get_by_label("4 星").check()
    resident.get_by_label("留言").fill("师傅很专业")
    resident.get_by_role("button", name="提交评价").click()
    expect(resident.get_by_role("status")).to_have_text("感谢您的评价。")
    expect(resident.locator("#ticket-status")).to_have_text("已评价")
    expect(resident.locator("#ticket-rating")).to_contain_text("4 星")
    assert server.services.repair.get(ticket)["rating"] == 4

    public.reload()
    expect(public.locator("#open-total")).to_have_text("3")
    expect(public.locator("#done-count")).to_have_text("1")
    expect(public.locator("#mean-wait")).to_have_text("1.5 小时")


@browser_test
def test_a_vote_from_notice_to_a_published_result_with_its_chart(server, chromium):
    from playwright.sync_api import expect

    admin = _person(chromium, server, server.tokens["admin"])
    admin.goto("/accounts")
    admin.get_by_label("角色").select_option("resident")
    admin.get_by_label("编号").fill("101")
    admin.get_by_label("姓名").fill("王阿姨")
    admin.get_by_role("button", name="新建账户").click()
    token = admin.locator("#new-token").inner_text().strip()
    assert len(token) >= 40
    admin.goto("/accounts")
    expect(admin.locator("#new-token")).to_have_count(0)  # shown once

    office = _person(chromium, server, server.tokens["coordinator"])
    office.goto("/topics/0")  # the demo's topic: plurality, three options, screened
    expect(office.locator("#topic-state")).to_have_text("已审核")
    office.get_by_role("button", name="发布公示").click()
    expect(office.locator("#topic-state")).to_have_text("公示中")
    office.get_by_role("button", name="开始投票").click()
    expect(office.get_by_role("alert")).to_contain_text("公示期还没有结束，现在还不能开始投票。")
    expect(office.locator("#topic-state")).to_have_text("公示中")

    server.clock.now += 7 * 1440  # the policy's notice period is over
    office.get_by_role("button", name="开始投票").click()
    expect(office.locator("#topic-state")).to_have_text("投票中")

    li = _person(chromium, server, server.tokens["resident"])
    li.goto("/topics/0")
    li.get_by_label("选项 2").check()
    li.get_by_role("button", name="投出选票").click()
    expect(li.get_by_role("status")).to_have_text("您的选票已投出（不记名）。")
    li.get_by_label("选项 3").check()
    li.get_by_role("button", name="投出选票").click()
    expect(li.get_by_role("alert")).to_contain_text("您已经投过票了。")

    wang = _person(chromium, server)
    wang.goto(f"/login?token={token}")  # the sign-in link: one press of the button
    expect(wang.get_by_label("登录口令")).to_have_value(token)
    wang.get_by_role("button", name="登录", exact=True).click()
    expect(wang.locator(".who")).to_contain_text("王阿姨")
    wang.goto("/topics/0")
    wang.get_by_label("选项 2").check()
    wang.get_by_role("button", name="投出选票").click()
    expect(wang.get_by_role("status")).to_have_text("您的选票已投出（不记名）。")

    office.reload()
    office.get_by_role("button", name="结束投票").click()
    expect(office.locator("#topic-state")).to_have_text("已截止")
    office.get_by_role("button", name="计票并公布").click()
    expect(office.locator("#topic-state")).to_have_text("已公布结果")
    chart = office.locator("svg.chart")
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(3)
    expect(chart.locator("rect.marked")).to_have_count(1)
    widths = [float(w) for w in chart.locator("rect").evaluate_all("rs => rs.map(r => r.getAttribute('width'))")]
    assert widths[1] > widths[0] and widths[1] > widths[2]
    expect(office.locator(".result")).to_contain_text("胜出: 选项 2")

    office.goto("/board")
    expect(office.locator("#board-topic-0 svg.chart rect.marked")).to_have_count(1)
    expect(office.locator("#board-topic-0")).to_contain_text("选项 2")


@browser_test
def test_large_type_language_and_keyboard(server, chromium):
    from playwright.sync_api import expect

    page = _person(chromium, server)
    page.goto("/board")

    def size(selector):
        return float(page.locator(selector).first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))

    normal_body, normal_h1 = size("body"), size("h1")
    toggle = page.get_by_role("button", name="大字")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    toggle.click()
    expect(page.get_by_role("button", name="大字")).to_have_attribute("aria-pressed", "true")
    assert size("body") >= 1.25 * normal_body and size("h1") >= 1.25 * normal_h1
    page.goto("/login")  # the choice is kept
    assert size("body") >= 1.25 * normal_body
    page.get_by_role("button", name="大字").click()
    assert size("body") == normal_body

    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    page.goto("/board")  # the language is kept too
    expect(page.get_by_role("heading", level=1)).to_have_text("Public board")

    # by keyboard alone: the first Tab shows the skip link with a visible focus ring; sign in with Enter
    page.goto("/login")
    page.keyboard.press("Tab")
    focused = page.evaluate("() => [document.activeElement.className, getComputedStyle(document.activeElement).outlineStyle]")
    assert focused == ["skip", "solid"]
    page.get_by_label("Sign-in token").focus()
    page.keyboard.type(server.tokens["resident"])
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("You are signed in.")


@browser_test
def test_a_refused_action_reads_as_a_sentence(server, chromium):
    from playwright.sync_api import expect

    page = _person(chromium, server, server.tokens["resident"])  # resident 100 holds 10 points
    page.goto("/points")
    expect(page.locator("#points-balance")).to_have_text("10")
    with page.expect_navigation() as answer:
        page.locator("#redeem-0").click()  # a 100-point voucher
    assert answer.value.status == 409
    expect(page.get_by_role("alert")).to_contain_text("余额不足，不能完成这次操作。")
    assert "Traceback" not in page.content() and "InsufficientBalance:" not in page.content()
    expect(page.locator("#points-balance")).to_have_text("10")
    page.goto("/points?lang=en")
    page.locator("#redeem-0").click()
    expect(page.get_by_role("alert")).to_contain_text("The balance is not enough for this.")


# ------------------------------------------------------------------ without a browser
def _csrf(html, name="csrf"):
    return re.search(rf'name="{name}" value="([^"]+)"', html).group(1)


def _signed_in(server, token, **headers):
    client = httpx.Client(base_url=server.url, timeout=30, headers=headers)
    form = client.get("/login")
    login_cookie = f"twin_login={form.cookies['twin_login']}"  # sent by hand: over https it is Secure
    answer = client.post("/login", data={"token": token, "login_csrf": _csrf(form.text, "login_csrf")},
                         headers={"Cookie": login_cookie})
    assert answer.status_code == 303, answer.text
    return client, answer


def test_csrf_a_post_without_the_session_token_is_refused_and_changes_nothing(server):
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    assert anonymous.get("/repair").headers["location"] == "/login"
    refused = anonymous.post("/login", data={"token": server.tokens["resident"]})  # no sign-in token
    assert refused.status_code == 403 and "twin_session" not in refused.headers.get("set-cookie", "")

    li, answer = _signed_in(server, server.tokens["resident"])
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
    other, _ = _signed_in(server, server.tokens["coordinator"])
    token = _csrf(li.get("/repair/new").text)
    report = {"category": "plumbing", "description": "漏水", "building": "1", "unit": "101"}
    before = len(server.services.log)
    for sent in ({}, {"csrf": "forged"}, {"csrf": _csrf(other.get("/").text)}):
        answer = li.post("/repair/new", data={**report, **sent})
        assert answer.status_code == 403, sent
        assert "表单已过期或来源不明" in answer.text
    assert len(server.services.log) == before
    answer = li.post("/repair/new", data={**report, "csrf": token})
    assert answer.status_code == 303 and len(server.services.log) == before + 1

    assert li.post("/logout").status_code == 403
    assert li.get("/repair").status_code == 200  # still signed in
    assert li.post("/logout", data={"csrf": token}).status_code == 303
    assert li.get("/repair").headers["location"] == "/login"
    assert li.post("/repair/new", data={**report, "csrf": token}).headers["location"] == "/login"
    assert len(server.services.log) == before + 1


def test_the_session_cookie_is_secure_over_https_and_a_wrong_token_is_a_sentence(server):
    _, answer = _signed_in(server, server.tokens["resident"], **{"X-Forwarded-Proto": "https"})
    assert "secure" in answer.headers["set-cookie"].lower()
    client = httpx.Client(base_url=server.url, timeout=30)
    form = client.get("/login?lang=en")
    wrong = client.post("/login", data={"token": "not-a-token", "login_csrf": _csrf(form.text, "login_csrf")})
    assert wrong.status_code == 401 and "That token is unknown or no longer valid" in wrong.text


def test_every_refusal_reason_has_a_sentence_in_both_languages():
    for reason in Reason:
        if reason is Reason.Accepted:
            continue
        zh, en = page_text.refusal(reason.name, "zh"), page_text.refusal(reason.name, "en")
        assert zh != en and zh != page_text.text("bad_input", "zh"), reason
        assert page_text.REFUSALS[reason] == (zh, en)


SERVICE_COMMANDS = {"submit", "dispatch", "start", "complete", "rate", "cancel", "reopen", "escalate", "enroll",
                    "earn", "redeem", "penalise", "register", "record", "confirm", "dispute", "resolve", "endow",
                    "propose", "add_project", "add_projects", "screen", "notice", "open", "cast", "close",
                    "family_transfer", "set_floor", "revoke", "rotate_admin", "restock", "register_voters"}


def test_pages_change_nothing_but_through_the_operations():
    """No service command is called in the pages' code: actions go through ``operations.call``."""
    import twin.live.pages as pages

    tree = ast.parse(Path(pages.__file__).read_text(encoding="utf-8"))
    direct = [(node.lineno, node.func.attr) for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and (node.func.attr in SERVICE_COMMANDS or node.func.attr.endswith("_batch"))]
    assert direct == []
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == "call"]
    assert calls, "pages apply operations with operations.call"


def test_form_text_that_is_not_utf8_is_kept_and_never_fails_a_commit(server):
    li, _ = _signed_in(server, server.tokens["resident"])
    token = _csrf(li.get("/repair/new").text).encode()
    before = len(server.services.log)
    for description in (b"%ED%A0%80leak%FF", b"\xed\xa0\x80leak"):  # a lone surrogate, escaped and raw
        body = b"csrf=" + token + b"&category=plumbing&building=1&unit=2&description=" + description
        answer = li.post("/repair/new", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 303, answer.text
        ticket = int(answer.headers["location"].rsplit("/", 1)[1])
        assert "leak" in server.services.repair.get(ticket)["description"]
    assert len(server.services.log) == before + 2


def _new_account(server, admin, role, id, name=""):
    page = admin.get("/accounts")
    answer = admin.post("/accounts", data={"csrf": _csrf(page.text), "role": role, "id": str(id), "name": name})
    assert answer.status_code == 201, answer.text
    return re.search(r'id="new-token">([^<]+)<', answer.text).group(1)


def test_time_bank_help_recorded_confirmed_disputed_and_resolved(server):
    from twin.services.timebank import RecordStatus

    admin, _ = _signed_in(server, server.tokens["admin"])
    li, _ = _signed_in(server, server.tokens["resident"])  # resident 100
    wang, _ = _signed_in(server, _new_account(server, admin, "resident", 101, "王阿姨"))
    office, _ = _signed_in(server, server.tokens["coordinator"])
    server.services.timebank.endow(101, 60)  # the receiver pays: give her minutes to pay with
    csrf = {c: _csrf(c.get("/timebank").text) for c in (li, wang, office)}

    refused = li.post("/timebank/record", data={"csrf": csrf[li], "receiver": "100", "minutes": "30"})
    assert refused.status_code == 422 and "不能给自己记录服务时间" in refused.text
    for minutes in ("30", "45"):
        answer = li.post("/timebank/record", data={"csrf": csrf[li], "receiver": "101", "minutes": minutes,
                                                   "kind": "shopping"})
        assert answer.status_code == 303
    page = wang.get("/timebank").text
    assert 'id="confirm-0"' in page and 'id="confirm-1"' in page and 'id="timebank-balance">60' in page
    assert 'id="confirm-0"' not in li.get("/timebank").text  # only the receiver confirms
    refused = li.post("/timebank/0/confirm", data={"csrf": csrf[li]})
    assert refused.status_code == 403 and "您没有权限做这件事" in refused.text
    assert wang.post("/timebank/0/confirm", data={"csrf": csrf[wang]}).status_code == 303
    assert wang.post("/timebank/1/dispute", data={"csrf": csrf[wang]}).status_code == 303
    assert 'id="timebank-balance">30' in li.get("/timebank").text

    assert li.get("/disputes").status_code == 403
    board = office.get("/disputes").text
    assert 'id="disputed-1"' in board and 'id="disputed-0"' not in board
    assert office.post("/timebank/1/resolve", data={"csrf": csrf[office], "uphold": "0"}).status_code == 303
    again = office.post("/timebank/1/resolve", data={"csrf": csrf[office], "uphold": "1"})
    assert again.status_code == 409 and "这条记录没有异议" in again.text
    bank = server.services.timebank
    assert (bank.record_status(0), bank.record_status(1)) == (RecordStatus.confirmed, RecordStatus.cancelled)
    assert (bank.balance(100), bank.balance(101)) == (30, 30)


def test_each_method_gets_its_ballot_form_and_a_result_chart(server):
    office, _ = _signed_in(server, server.tokens["coordinator"])
    li, _ = _signed_in(server, server.tokens["resident"])
    csrf = {c: _csrf(c.get("/").text) for c in (office, li)}
    field = {"plurality": 'type="radio" name="choice"', "approval": 'type="checkbox" name="choice"',
             "budget": 'type="checkbox" name="choice"', "borda": 'name="rank"', "irv": 'name="rank"'}
    ballot = {"plurality": {"choice": "1"}, "approval": {"choice": ["0", "1"]}, "budget": {"choice": ["0", "2"]},
              "borda": {"rank": ["2", "0", ""]}, "irv": {"rank": ["2", "0", ""]}}
    expected = {"plurality": [1], "approval": [0, 1], "budget": [0, 2], "borda": [2, 0], "irv": [2, 0]}
    topics = {}
    for method in field:
        answer = office.post("/topics", data={"csrf": csrf[office], "method": method, "n_options": "3",
                                              "budget": "100"})
        assert answer.status_code == 303, answer.text
        topic = topics[method] = int(answer.headers["location"].rsplit("/", 1)[1])
        steps = [{"step": "project", "cost": c} for c in ("60", "50", "40")] if method == "budget" else []
        for data in steps + [{"step": "screen"}, {"step": "notice"}]:
            assert office.post(f"/topics/{topic}/step", data={"csrf": csrf[office], **data}).status_code == 303
    server.clock.now += 7 * 1440
    for method, topic in topics.items():
        assert office.post(f"/topics/{topic}/step", data={"csrf": csrf[office], "step": "open"}).status_code == 303
        page = li.get(f"/topics/{topic}").text
        assert page.count(field[method]) == 3, method
        if method == "budget":  # 60 + 50 is over the budget of 100
            over = li.post(f"/topics/{topic}/ballot", data={"csrf": csrf[li], "choice": ["0", "1"]})
            assert over.status_code == 422 and "选票无效" in over.text
        if method == "irv":  # a gap in the ranking
            gap = li.post(f"/topics/{topic}/ballot", data={"csrf": csrf[li], "rank": ["", "1", ""]})
            assert gap.status_code == 422 and "选票无效" in gap.text
        answer = li.post(f"/topics/{topic}/ballot", data={"csrf": csrf[li], **ballot[method]})
        assert answer.status_code == 303, (method, answer.text)
        for step in ("close", "resolve"):
            assert office.post(f"/topics/{topic}/step", data={"csrf": csrf[office], "step": step}).status_code == 303
        published = server.services.voting.ballots(topic)
        assert [o for o in published[0].tolist() if o >= 0] == expected[method], method
        result = li.get(f"/topics/{topic}").text
        assert result.count("<rect") == 3 and 'class="bar marked"' in result, method
