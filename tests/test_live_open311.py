"""Open311 GeoReport v2 over the repair desk, against a real server: the spec's names, formats and errors."""
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import httpx
import pytest

from twin.live.open311 import CATALOGUE, address_of_id, parse_address
from twin.services.repair import LOCATION_BASE, Category

from live_helpers import Server

V2 = "/open311/v2"


def _serve(path):
    srv = Server(path).__enter__()
    srv.resident = srv.account("resident", 17)
    srv.neighbour = srv.account("resident", 18)
    srv.office = srv.account("coordinator", 6)
    srv.tech = srv.account("technician", 4)
    srv.open311 = httpx.Client(base_url=srv.root + V2, timeout=30)
    return srv


@pytest.fixture
def server(tmp_path):
    srv = _serve(tmp_path / "open311.db")
    yield srv
    srv.__exit__(None, None, None)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the refusal tables (each checks that it changed nothing)."""
    srv = _serve(tmp_path_factory.mktemp("open311") / "shared.db")
    yield srv
    srv.__exit__(None, None, None)


def _error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"code", "description"}, body
    assert body[0]["code"] == status
    return body[0]["description"]


def _iso(srv, minutes):
    moment = datetime.fromtimestamp(srv.services.store.epoch + minutes * 60, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _report(srv, **fields):
    body = {"api_key": srv.resident, "service_code": "plumbing", "description": "厨房水管漏水 leak under the sink",
            "address_string": "3栋402", **fields}
    response = srv.open311.post("/requests.json", data={k: v for k, v in body.items() if v is not None})
    assert response.status_code == 201, response.text
    return int(response.json()[0]["service_request_id"])


# ------------------------------------------------------------------ services
def test_services_lists_one_realtime_service_per_category_with_the_spec_fields(server):
    response = server.open311.get("/services.json")
    assert response.status_code == 200
    services = response.json()
    assert [s["service_code"] for s in services] == [c.name for c in Category]
    for service in services:
        assert set(service) == {"service_code", "service_name", "description", "metadata", "type", "keywords",
                                "group"}
        assert service["metadata"] is False and service["type"] == "realtime"
        zh, en = CATALOGUE[Category[service["service_code"]]][:2]
        assert service["service_name"] == f"{zh} {en}"
        assert any("\u4e00" <= ch <= "\u9fff" for ch in service["service_name"])  # Chinese and English
        assert service["keywords"] and service["group"]
    plumbing = next(s for s in services if s["service_code"] == "plumbing")
    assert "漏水" in plumbing["keywords"].split(", ") and "leak" in plumbing["keywords"].split(", ")
    # the same list as the spec's XML
    xml = ET.fromstring(server.open311.get("/services.xml").content)
    assert xml.tag == "services" and [s.findtext("service_code") for s in xml] == [c.name for c in Category]
    assert xml[0].findtext("metadata") == "false"
    # a definition: no extra attributes
    assert server.open311.get("/services/gas.json").json() == {"service_code": "gas", "attributes": []}
    assert "spaceship" in _error(server.open311.get("/services/spaceship.json"), 404)
    _error(server.open311.get("/services.csv"), 400)


# ------------------------------------------------------------------ POST requests
def test_a_form_encoded_request_with_an_api_key_opens_a_ticket(server):
    response = server.open311.post("/requests.json", data={
        "api_key": server.resident, "service_code": "plumbing", "description": "厨房水管漏水",
        "address_id": str(3 * LOCATION_BASE + 402), "email": "li@example.org", "phone": "138-0000-0000",
        "first_name": "Li", "last_name": "Wei", "jurisdiction_id": "community", "lat": "30.6", "long": "104.1"})
    assert response.status_code == 201, response.text
    [answer] = response.json()
    assert set(answer) == {"service_request_id", "service_notice", "account_id"}
    assert answer["account_id"] == "17" and answer["service_notice"]
    ticket = server.services.repair.get(int(answer["service_request_id"]))
    assert (ticket["category"], ticket["building"], ticket["unit"], ticket["reporter"], ticket["channel"]) == (
        "plumbing", 3, 402, 17, "app")
    assert ticket["contact"] == "Li Wei; li@example.org; 138-0000-0000"
    # the same ticket on /api/v1
    same = server.client(server.resident).get(f"/repair/tickets/{answer['service_request_id']}").json()
    assert same["description"] == "厨房水管漏水" and same["location"] == 30402


def test_a_json_request_with_a_bearer_token_and_an_address_string(server):
    response = server.open311.post("/requests.json", json={"service_code": "elevator", "description": "电梯异响",
                                                           "address_string": "5号楼2单元1201室"},
                                   headers={"Authorization": f"Bearer {server.resident}"})
    assert response.status_code == 201, response.text
    ticket = server.services.repair.get(int(response.json()[0]["service_request_id"]))
    assert (ticket["category"], ticket["building"], ticket["unit"]) == ("elevator", 5, 1201)
    shown = server.open311.get(f"/requests/{ticket['id']}.json", params={"api_key": server.resident}).json()
    assert shown[0]["address"] == "5号楼2单元1201室" and shown[0]["address_id"] == "51201"


def test_addresses_are_read_as_building_and_unit():
    assert parse_address("3-402") == parse_address("3栋402") == parse_address("3号楼402室") == (3, 402)
    assert parse_address("12栋1单元1502") == (12, 1502)
    assert parse_address("402") is None and parse_address("楼下") is None and parse_address(None) is None
    assert address_of_id("30402") == address_of_id(30402) == (3, 402)
    assert address_of_id("3-402") is None and address_of_id("") is None and address_of_id(True) is None


def test_staff_report_for_a_resident_with_account_id_and_a_resident_only_for_themself(server):
    office = server.open311.post("/requests.json", data={"api_key": server.office, "service_code": "gas",
                                                         "description": "燃气味", "address_id": "10101",
                                                         "account_id": "18"})
    assert office.json()[0]["account_id"] == "18"
    resident = server.open311.post("/requests.json", data={"api_key": server.resident, "service_code": "gas",
                                                           "description": "燃气味", "address_id": "10101",
                                                           "account_id": "18"})
    assert resident.json()[0]["account_id"] == "17"  # the operation binds a resident to themself
    assert [server.services.repair.get(i)["reporter"] for i in (0, 1)] == [18, 17]


def test_post_answers_xml_too_and_a_retry_with_the_same_key_gets_the_first_answer(server):
    body = {"api_key": server.resident, "service_code": "heating", "description": "暖气不热",
            "address_string": "2-301"}
    first = server.open311.post("/requests.xml", data=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201 and first.headers["content-type"].startswith("text/xml")
    xml = ET.fromstring(first.content)
    assert xml.tag == "service_requests" and xml[0].tag == "request"
    assert xml[0].findtext("service_request_id") == "0" and xml[0].findtext("account_id") == "17"
    again = server.open311.post("/requests.json", data=body, headers={"Idempotency-Key": "k1"})
    assert again.json()[0]["service_request_id"] == "0" and server.services.repair.n_tickets == 1


@pytest.mark.parametrize("change, status, says", [
    ({"api_key": None}, 403, "an api_key is required"),
    ({"api_key": "not-a-token"}, 403, "api_key"),
    ({"service_code": None}, 400, "MissingField"),
    ({"service_code": "spaceship"}, 400, "UnknownCategory"),
    ({"description": None}, 400, "MissingField"),
    ({"address_string": "楼下"}, 400, "names no building and unit"),
    ({"address_string": None}, 400, "no address_string or address_id"),
    ({"address_string": None, "address_id": "3-402"}, 400, "is not building"),
    ({"address_string": "3-10402"}, 400, "MissingField"),  # the desk's rule: a unit below LOCATION_BASE
    ({"description": "x" * 2001}, 400, "TextTooLong"),
    ({"colour": "red"}, 400, "unknown field"),
    ({"attribute[WHISPER]": "x"}, 400, "no attributes"),
])
def test_refused_requests_are_open311_errors_and_change_nothing(shared, change, status, says):
    server = shared
    before = len(server.services.log), sorted(server.services.log.detail_rows())
    body = {"api_key": server.resident, "service_code": "plumbing", "description": "leak",
            "address_string": "3-402", **change}
    response = server.open311.post("/requests.json", data={k: v for k, v in body.items() if v is not None})
    assert says in _error(response, status)
    assert (len(server.services.log), sorted(server.services.log.detail_rows())) == before


def test_bodies_that_are_not_forms_or_json_objects_are_400(server):
    key = {"Authorization": f"Bearer {server.resident}"}
    for content, kind in ((b"{not json", "application/json"), (b"[1, 2]", "application/json"),
                          (b'{"service_code": {"a": 1}}', "application/json"), (b"<xml/>", "text/xml")):
        _error(server.open311.post("/requests.json", content=content, headers={**key, "content-type": kind}), 400)
    twice = "api_key={0}&service_code=gas&service_code=plumbing&description=x&address_id=10101"
    assert "more than once" in _error(server.open311.post(
        "/requests.json", content=twice.format(server.resident),
        headers={"content-type": "application/x-www-form-urlencoded"}), 400)
    assert len(server.services.log) == 0


# ------------------------------------------------------------------ GET requests
def test_a_request_shows_the_spec_fields_status_and_iso_times_from_the_store_epoch(server):
    ticket = _report(server)
    shown = server.open311.get(f"/requests/{ticket}.json", params={"api_key": server.neighbour})
    assert shown.status_code == 200
    [request] = shown.json()
    assert {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
            "requested_datetime", "updated_datetime", "address"} <= set(request)
    submitted = server.services.repair.get(ticket)["submitted_at"]
    assert request["requested_datetime"] == request["updated_datetime"] == _iso(server, submitted)
    assert (request["status"], request["service_code"], request["service_name"]) == ("open", "plumbing",
                                                                                     "给排水 Plumbing")
    assert "contact" not in str(request) and request["address"] == "3栋402"
    # dispatched, started, completed through /api/v1: closed, updated at the last step
    office, tech = server.client(server.office), server.client(server.tech)
    assert office.post(f"/repair/tickets/{ticket}/dispatch", json={"worker": 4}).status_code == 201
    assert server.open311.get(f"/requests/{ticket}.json", params={"api_key": server.resident}).json()[0][
        "status_notes"].startswith("已派工 dispatched")
    assert tech.post(f"/repair/tickets/{ticket}/start").status_code == 201
    assert tech.post(f"/repair/tickets/{ticket}/complete").status_code == 201
    [closed] = server.open311.get(f"/requests/{ticket}.json", headers={"Authorization": f"Bearer {server.tech}"}
                                  ).json()
    completed = server.services.repair.get(ticket)["completed_at"]
    assert closed["status"] == "closed" and closed["updated_datetime"] == _iso(server, completed)
    assert closed["requested_datetime"] == request["requested_datetime"]


def test_a_reopened_request_keeps_its_first_requested_datetime(server):
    ticket = _report(server)
    first = server.services.repair.get(ticket)["submitted_at"]
    office, tech, li = server.client(server.office), server.client(server.tech), server.client(server.resident)
    office.post(f"/repair/tickets/{ticket}/dispatch", json={"worker": 4})
    tech.post(f"/repair/tickets/{ticket}/start")
    tech.post(f"/repair/tickets/{ticket}/complete")
    assert li.post(f"/repair/tickets/{ticket}/reopen").status_code == 201
    [request] = server.open311.get(f"/requests/{ticket}.json", params={"api_key": server.resident}).json()
    assert request["status"] == "open" and request["requested_datetime"] == _iso(server, first)
    assert server.services.repair.get(ticket)["submitted_at"] > first  # the desk's cycle restarted


def test_get_requests_filters_by_id_code_status_and_dates(server):
    plumbing = _report(server)
    gas = _report(server, service_code="gas")
    elevator = _report(server, service_code="elevator")
    server.client(server.office).post(f"/repair/tickets/{gas}/cancel")
    key = {"api_key": server.resident}

    def ids(**params):
        response = server.open311.get("/requests.json", params={**key, **params})
        assert response.status_code == 200, response.text
        return [int(r["service_request_id"]) for r in response.json()]

    assert ids() == [plumbing, gas, elevator]
    assert ids(status="open") == [plumbing, elevator] and ids(status="closed") == [gas]
    assert ids(status="open,closed") == [plumbing, gas, elevator]
    assert ids(service_code="gas,elevator") == [gas, elevator]
    assert ids(service_code="plumbing", status="closed") == []
    assert ids(service_request_id=f"{elevator},{plumbing},99") == [elevator, plumbing]
    assert ids(service_request_id=str(gas), service_code="plumbing") == [gas]  # overrides the other filters
    now = datetime.now(timezone.utc)
    assert ids(start_date="2000-01-01T00:00:00Z", end_date="2000-02-01T00:00:00Z") == []
    assert ids(end_date=now.isoformat()) == [plumbing, gas, elevator]
    assert ids(start_date=now.strftime("%Y-%m-%dT%H:%M:%S+08:00"), end_date=now.isoformat()) == [
        plumbing, gas, elevator]  # eight hours earlier, in China's time zone
    xml = ET.fromstring(server.open311.get("/requests.xml", params=key).content)
    assert [r.findtext("service_request_id") for r in xml] == ["0", "1", "2"]


@pytest.mark.parametrize("params, status, says", [
    ({"status": "pending"}, 400, "open, closed"),
    ({"service_code": "spaceship"}, 400, "UnknownCategory"),
    ({"service_request_id": "1;DROP TABLE events"}, 400, "service_request_id"),
    ({"start_date": "yesterday"}, 400, "w3 date-time"),
    ({"start_date": "2024-01-01T00:00:00"}, 400, "time zone"),
    ({"start_date": "2024-01-01T00:00:00Z", "end_date": "2024-06-01T00:00:00Z"}, 400, "90 days"),
    ({"start_date": "2024-02-01T00:00:00Z", "end_date": "2024-01-01T00:00:00Z"}, 400, "before"),
    ({"api_key": "wrong"}, 403, "api_key"),
])
def test_bad_filters_are_open311_errors(shared, params, status, says):
    server = shared
    response = server.open311.get("/requests.json", params={"api_key": server.resident, **params})
    assert says in _error(response, status)


def test_requests_need_a_key_and_unknown_requests_are_404(server):
    ticket = _report(server)
    assert "api_key" in _error(server.open311.get(f"/requests/{ticket}.json"), 403)
    assert "api_key" in _error(server.open311.get("/requests.json"), 403)
    assert "UnknownTicket" in _error(server.open311.get("/requests/41.json", params={"api_key": server.resident}),
                                     404)
    assert "NotAnInteger" in _error(server.open311.get("/requests/abc.json",
                                                       params={"api_key": server.resident}), 400)
    xml = server.open311.get("/requests/41.xml", params={"api_key": server.resident})
    assert xml.status_code == 404 and ET.fromstring(xml.content).findtext("error/code") == "404"


def test_the_routes_are_in_the_openapi_document(server):
    paths = httpx.get(server.root + "/openapi.json").json()["paths"]
    for path, method in ((V2 + "/services.{response_format}", "get"), (V2 + "/requests.{response_format}", "post"),
                         (V2 + "/requests.{response_format}", "get"),
                         (V2 + "/requests/{service_request_id}.{response_format}", "get")):
        assert method in paths[path], path
    body = paths[V2 + "/requests.{response_format}"]["post"]["requestBody"]["content"]
    assert {"application/x-www-form-urlencoded", "application/json"} <= set(body)
