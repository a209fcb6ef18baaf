"""The source text's Express API (``/api/repairs``) as an alias of the repair desk, against a real server.

The source's example requests run as written there, with an ``Authorization``
header added; everything they do goes through the desk's operations.
"""
import httpx
import pytest

from twin.live import legacy
from twin.live.legacy import category_of
from twin.services.repair import Category

from live_helpers import Server


@pytest.fixture
def server(tmp_path):
    with Server(tmp_path / "legacy.db") as srv:
        srv.tokens_by = {"resident": srv.account("resident", 17), "neighbour": srv.account("resident", 18),
                         "office": srv.account("coordinator", 6), "tech": srv.account("technician", 4),
                         "admin": srv.account("admin", 7)}
        srv.account("technician", 6)  # the office's coordinator 6 also repairs: on the desk's roster
        yield srv


def _as(srv, who):
    return httpx.Client(base_url=srv.root, headers={"Authorization": f"Bearer {srv.tokens_by[who]}"}, timeout=30)


def _is_problem(response, status, title):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["title"] == title and body["status"] == status, body
    assert body["error"] == body["detail"]  # the source's clients read `error`
    return body


# ------------------------------------------------------------------ the source's requests
def test_the_source_example_requests_run_unchanged(server):
    resident, staff = _as(server, "resident"), _as(server, "office")
    # 1. 提交报修
    created = resident.post("/api/repairs", json={"title": "厨房水管漏水", "description": "水槽下面的水管一直在滴水",
                                                  "location": "3栋402", "contact": "13800000000"})
    assert created.status_code == 201, created.text
    repair = created.json()
    assert {"id", "title", "description", "location", "contact", "status", "createdAt", "updatedAt"} <= set(repair)
    assert (repair["title"], repair["location"], repair["contact"], repair["status"]) == (
        "厨房水管漏水", "3栋402", "13800000000", "pending")
    rid = repair["id"]
    ticket = server.services.repair.get(rid)
    assert (ticket["category"], ticket["building"], ticket["unit"], ticket["reporter"]) == ("plumbing", 3, 402, 17)
    # 2. 查询报修列表(支持分页和状态过滤)
    listed = resident.get("/api/repairs", params={"page": 1, "limit": 10, "status": "pending"})
    assert listed.status_code == 200
    page = listed.json()
    assert (page["total"], page["page"], page["limit"]) == (1, 1, 10) and page["data"][0]["id"] == rid
    assert resident.get("/api/repairs").json()["total"] == 1  # page 1, limit 10 by default
    # 3. 更新报修状态(物业/社区工作人员操作)
    updated = staff.put(f"/api/repairs/{rid}", json={"status": "processing", "notes": "维修师傅已出发"})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["status"], updated.json()["notes"]) == ("processing", "维修师傅已出发")
    assert server.services.repair.get(rid)["worker"] == 6  # dispatched to the calling staff member, then started
    done = staff.put(f"/api/repairs/{rid}", json={"status": "completed"})
    assert done.json()["status"] == "completed" and done.json()["notes"] == "维修师傅已出发"
    # 4. 居民评价服务
    rated = resident.post(f"/api/repairs/{rid}/rate", json={"rating": 5, "comment": "修得很快"})
    assert rated.status_code == 200, rated.text
    assert rated.json()["message"] == "评价成功"
    assert (rated.json()["repair"]["rating"], rated.json()["repair"]["comment"]) == (5, "修得很快")
    assert rated.json()["repair"]["status"] == "completed"
    assert resident.get("/api/repairs", params={"status": "completed"}).json()["total"] == 1
    # the store holds the desk's own events, as if /api/v1 had been used
    assert [e["kind"] for e in staff.get("/api/v1/events").json()["events"]] == [
        "TicketSubmitted", "TicketDispatched", "TicketStarted", "TicketCompleted", "TicketRated"]


def test_the_source_refusals_are_the_desk_refusals(server):
    resident, neighbour, staff = _as(server, "resident"), _as(server, "neighbour"), _as(server, "office")
    before = len(server.services.log)
    # 必填字段缺失: no title, no description, no location, a location without building and unit
    for body in ({"description": "漏水", "location": "3-402"}, {"title": "漏水", "location": "3-402"},
                 {"title": "漏水", "description": "漏水"}, {"title": "漏水", "description": "漏水", "location": "楼下"}):
        _is_problem(resident.post("/api/repairs", json=body), 422, "MissingField")
    assert "names no building and unit" in resident.post("/api/repairs", json={
        "title": "漏水", "description": "漏水", "location": "楼下"}).json()["detail"]
    _is_problem(resident.post("/api/repairs", json={"title": "漏水", "description": "漏水", "location": "3-20000"}),
                422, "MissingField")  # the desk's rule: a unit below LOCATION_BASE
    assert len(server.services.log) == before
    rid = resident.post("/api/repairs", json={"title": "灯不亮", "description": "楼道灯不亮",
                                              "location": "1-101"}).json()["id"]
    # 报修记录不存在
    _is_problem(staff.put("/api/repairs/99", json={"status": "processing"}), 404, "UnknownTicket")
    _is_problem(resident.post("/api/repairs/99/rate", json={"rating": 5}), 404, "UnknownTicket")
    # 只有已完成的报修可以评价
    _is_problem(resident.post(f"/api/repairs/{rid}/rate", json={"rating": 5}), 409, "InvalidTransition")
    _is_problem(staff.put(f"/api/repairs/{rid}", json={"status": "completed"}), 409, "InvalidTransition")
    # only staff who work tickets may PUT; only the reporter rates
    _is_problem(resident.put(f"/api/repairs/{rid}", json={"status": "processing"}), 403, "Unauthorized")
    _is_problem(staff.post(f"/api/repairs/{rid}/rate", json={"rating": 5}), 403, "Unauthorized")
    _is_problem(staff.put(f"/api/repairs/{rid}", json={"status": "done"}), 422, "UnknownKind")
    _is_problem(resident.get("/api/repairs", params={"status": "done"}), 422, "UnknownKind")
    _is_problem(staff.put(f"/api/repairs/{rid}", json={"notes": "x" * 2001}), 422, "TextTooLong")
    _is_problem(staff.put(f"/api/repairs/{rid}", json={"status": "completed", "notes": "done?"}), 409,
                "InvalidTransition")
    assert resident.get("/api/repairs").json()["data"][-1]["notes"] is None  # a refused PUT keeps no notes
    assert server.services.repair.get(rid)["status"] == "submitted" and len(server.services.log) == before + 1
    staff.put(f"/api/repairs/{rid}", json={"status": "processing"})
    staff.put(f"/api/repairs/{rid}", json={"status": "completed"})
    _is_problem(neighbour.post(f"/api/repairs/{rid}/rate", json={"rating": 5}), 403, "Unauthorized")
    _is_problem(resident.post(f"/api/repairs/{rid}/rate", json={"rating": 4.5}), 422, "invalid-request")
    _is_problem(resident.post(f"/api/repairs/{rid}/rate", json={"rating": 9}), 422, "InvalidRating")
    assert httpx.get(server.root + "/api/repairs").status_code == 401


def test_a_technician_may_start_only_a_ticket_dispatched_to_them(server):
    resident, tech = _as(server, "resident"), _as(server, "tech")
    rid = resident.post("/api/repairs", json={"title": "电梯异响", "description": "电梯异响",
                                              "location": "2-1201"}).json()["id"]
    _is_problem(tech.put(f"/api/repairs/{rid}", json={"status": "processing"}), 403, "Unauthorized")
    assert server.services.repair.get(rid)["status"] == "submitted"
    office = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.tokens_by['office']}"})
    assert office.post(f"/repair/tickets/{rid}/dispatch", json={"worker": 4}).status_code == 201
    started = tech.put(f"/api/repairs/{rid}", json={"status": "processing", "notes": "到场"})
    assert started.status_code == 200 and started.json()["status"] == "processing"
    assert server.services.repair.get(rid)["worker"] == 4


def test_processing_dispatches_to_the_named_worker_or_the_caller_on_the_roster_only(server):
    resident, admin = _as(server, "resident"), _as(server, "admin")
    rid = resident.post("/api/repairs", json={"title": "漏水", "description": "漏水", "location": "1-101"}).json()["id"]
    events = len(server.services.log)
    # admin 7 holds no technician account: the dispatch operation refuses, nothing moves
    _is_problem(admin.put(f"/api/repairs/{rid}", json={"status": "processing"}), 404, "UnknownWorker")
    _is_problem(admin.put(f"/api/repairs/{rid}", json={"status": "processing", "worker": 5}), 404, "UnknownWorker")
    assert len(server.services.log) == events
    named = admin.put(f"/api/repairs/{rid}", json={"status": "processing", "worker": 4})
    assert named.status_code == 200 and (named.json()["status"], named.json()["worker"]) == ("processing", 4)


def test_a_put_may_be_repeated_and_pending_reopens_cancelled_cancels(server):
    resident, staff = _as(server, "resident"), _as(server, "office")
    rid = resident.post("/api/repairs", json={"title": "窗户关不上", "description": "卧室窗户关不上",
                                              "location": "4-503"}).json()["id"]
    assert staff.put(f"/api/repairs/{rid}", json={"status": "processing"}).status_code == 200
    events = len(server.services.log)
    again = staff.put(f"/api/repairs/{rid}", json={"status": "processing"})
    assert again.status_code == 200 and len(server.services.log) == events  # nothing moved
    staff.put(f"/api/repairs/{rid}", json={"status": "completed"})
    reopened = staff.put(f"/api/repairs/{rid}", json={"status": "pending"})
    assert reopened.json()["status"] == "pending" and reopened.json()["deskStatus"] == "submitted"
    cancelled = staff.put(f"/api/repairs/{rid}", json={"status": "cancelled"})
    assert cancelled.json()["status"] == "cancelled"
    assert resident.get("/api/repairs", params={"status": "cancelled"}).json()["total"] == 1


def test_a_refused_later_step_undoes_the_earlier_ones(server, monkeypatch):
    resident, staff = _as(server, "resident"), _as(server, "office")
    rid = resident.post("/api/repairs", json={"title": "漏水", "description": "漏水", "location": "1-101"}).json()["id"]
    events = len(server.services.log)
    # a processing whose second step is refused (a coordinator may not rate): the dispatch is undone
    monkeypatch.setattr(legacy, "_steps", lambda target, now, worker: [("dispatch", {"worker": worker.id}),
                                                                        ("rate", {"rating": 5})])
    _is_problem(staff.put(f"/api/repairs/{rid}", json={"status": "processing", "notes": "x"}), 403, "Unauthorized")
    assert server.services.repair.get(rid)["status"] == "submitted" and len(server.services.log) == events
    assert server.services.repair.get(rid)["worker"] is None
    assert resident.get("/api/repairs?status=pending").json()["data"][0]["notes"] is None


def test_a_retried_report_with_the_same_key_is_one_repair(server):
    resident = _as(server, "resident")
    body = {"title": "漏水", "description": "漏水", "location": "1-101"}
    first = resident.post("/api/repairs", json=body, headers={"Idempotency-Key": "phone-1"})
    again = resident.post("/api/repairs", json={**body, "title": "changed"}, headers={"Idempotency-Key": "phone-1"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.json()["title"] == "漏水"
    assert server.services.repair.n_tickets == 1


def test_pages_and_status_filters(server):
    resident, staff = _as(server, "resident"), _as(server, "office")
    ids = [resident.post("/api/repairs", json={"title": f"漏水{i}", "description": "漏水", "location": f"1-{100 + i}"}
                         ).json()["id"] for i in range(5)]
    staff.put(f"/api/repairs/{ids[1]}", json={"status": "processing"})
    page = resident.get("/api/repairs", params={"page": 2, "limit": 2}).json()
    assert (page["total"], [r["id"] for r in page["data"]]) == (5, ids[2:4])
    assert resident.get("/api/repairs", params={"page": 9, "limit": 2}).json()["data"] == []
    pending = resident.get("/api/repairs", params={"status": "pending"}).json()
    assert pending["total"] == 4 and ids[1] not in [r["id"] for r in pending["data"]]
    assert resident.get("/api/repairs", params={"status": "in_progress"}).json()["total"] == 1  # desk names too
    for bad in ({"page": 0}, {"limit": 0}, {"page": "one"}):
        assert resident.get("/api/repairs", params=bad).status_code == 422
    # someone else's contact is hidden, as on /api/v1
    other = _as(server, "neighbour").post("/api/repairs", json={"title": "漏水", "description": "漏水",
                                                                 "location": "1-1", "contact": "139"}).json()
    mine = resident.get("/api/repairs", params={"page": 1, "limit": 10}).json()["data"]
    assert next(r for r in mine if r["id"] == other["id"])["contact"] is None
    assert staff.get("/api/repairs").json()["data"][-1]["contact"] == "139"


@pytest.mark.parametrize("title, description, category", [
    ("厨房水管漏水", "", Category.plumbing), ("kitchen sink leaking", "", Category.plumbing),
    ("马桶堵了", "", Category.plumbing), ("Toilet clogged", "", Category.plumbing),
    ("楼道灯不亮", "", Category.electrical), ("Stairwell light out", "", Category.electrical),
    ("电梯异响", "", Category.elevator), ("The lift is stuck", "", Category.elevator),
    ("燃气泄漏", "", Category.gas), ("gas leak in kitchen", "", Category.gas),
    ("暖气片漏水", "", Category.heating), ("radiator cold", "", Category.heating),
    ("门禁坏了", "", Category.security), ("防盗门锁坏了", "", Category.security),
    ("单元门关不上", "", Category.doors_windows), ("broken window", "", Category.doors_windows),
    ("树枝挡路", "", Category.greenery), ("楼道堆满垃圾", "", Category.public_area),
    ("parking lot pothole", "", Category.public_area),
    ("报修", "卫生间花洒漏水", Category.plumbing),  # no keyword in the title: the description's
    ("有问题", "说不清", Category.other), ("tape on the wall", "", Category.other),  # no "tap" in "tape"
])
def test_titles_name_categories_by_keyword(title, description, category):
    assert category_of(title, description) is category


def test_no_title_is_no_category():
    assert category_of(None, "漏水") is None and category_of("  ", "漏水") is None
