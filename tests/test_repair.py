"""The repair desk: every rule and refusal, pagination, and properties against a naive desk."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.services import events as ev
from twin.services.events import Channel, EventKind, EventLog
from twin.services._inputs import MAX_ID
from twin.services.reasons import (
    AlreadyRated, BeforeSubmission, InvalidId, InvalidRating, InvalidTime, InvalidTransition,
    MissingField, NotAnInteger, Reason, ReopenWindowExpired, ServiceError, TextTooLong,
    UnknownCategory, UnknownKind, UnknownTicket, UnknownWorker,
)
from twin.services.repair import (
    KINDS, LOCATION_BASE, MAX_BUILDING, NO_CATEGORY, Action, Category, RepairDesk, RepairPolicy, Status,
)

# The lifecycle as the issue states it, written out independently of the module's table.
LEGAL = {
    ("submitted", "dispatch"): "dispatched",
    ("submitted", "cancel"): "cancelled",
    ("submitted", "escalate"): "submitted",
    ("dispatched", "start"): "in_progress",
    ("dispatched", "cancel"): "cancelled",
    ("dispatched", "escalate"): "dispatched",
    ("in_progress", "complete"): "completed",
    ("in_progress", "escalate"): "in_progress",
    ("completed", "rate"): "rated",
    ("completed", "reopen"): "submitted",
}
# How to bring a fresh ticket to each status.
PATH = {
    "submitted": [],
    "dispatched": ["dispatch"],
    "in_progress": ["dispatch", "start"],
    "completed": ["dispatch", "start", "complete"],
    "rated": ["dispatch", "start", "complete", "rate"],
    "cancelled": ["cancel"],
}


def new_ticket(desk, t=0.0, **fields):
    given = dict(category="plumbing", description="tap drips", building=3, unit=2, t=t)
    return desk.submit(**{**given, **fields})


def command(desk, action, ticket, arg=0, t=0.0):
    """One action through the object layer; ``arg`` is the worker, the rating or the actor."""
    if action == "dispatch":
        return desk.dispatch(ticket, arg, t=t)
    if action == "rate":
        return desk.rate(ticket, arg, t=t)
    if action in ("start", "complete"):
        return getattr(desk, action)(ticket, t=t)
    return getattr(desk, action)(ticket, arg, t=t)


def batch(desk, action, ticket, arg, t):
    """The same through the batch API (columns may be arrays)."""
    if action in ("start", "complete"):
        return getattr(desk, f"{action}_batch")(ticket, t)
    return getattr(desk, f"{action}_batch")(ticket, arg, t)


def drive(desk, status, t=0.0):
    """A new ticket brought to ``status`` one minute per step; returns its id."""
    ticket = new_ticket(desk, t=t)
    for step, action in enumerate(PATH[status], start=1):
        command(desk, action, ticket, 4 if action == "rate" else 1, t=t + step)
    return ticket


def assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# ------------------------------------------------------------------ submission
def test_submit_numbers_tickets_and_logs_ids_only():
    log = EventLog()
    desk = RepairDesk(log=log)
    first = desk.submit("electrical", "stairwell light out", 12, 301, channel="hotline",
                        priority=2, contact="138-0000-0000", reporter=77, t=5.5)
    second = new_ticket(desk, t=6.0)
    assert (first, second) == (0, 1)
    e = log.events[0]
    assert e["kind"] == EventKind.TicketSubmitted and e["t"] == 5.5
    assert (e["actor"], e["subject"], e["code"], e["amount"], e["channel"]) == (
        77, 0, Category.electrical, 2, Channel.hotline)
    assert divmod(int(e["target"]), LOCATION_BASE) == (12, 301)
    got = desk.get(first)
    assert got["location"] == 12 * LOCATION_BASE + 301
    assert (got["description"], got["contact"], got["channel"]) == (
        "stairwell light out", "138-0000-0000", "hotline")
    assert all(a.dtype.kind in "biuf" for a in desk.snapshot().values())


@pytest.mark.parametrize("missing", [
    dict(category=None), dict(description=None), dict(description="   "), dict(building=None),
    dict(unit=None), dict(building=-1), dict(unit=-1), dict(unit=LOCATION_BASE),
])
def test_submit_refuses_missing_required_field(missing):
    log = EventLog()
    desk = RepairDesk(log=log)
    with pytest.raises(MissingField, match="required"):
        new_ticket(desk, **missing)
    assert desk.n_tickets == 0 and len(log) == 0


def test_submit_batch_refuses_per_command_and_keeps_ids_dense():
    desk = RepairDesk()
    out = desk.submit_batch(reporter=[1, 2, 3, 4], category=[0, 1, NO_CATEGORY, len(Category)],
                            building=5, unit=1, channel=Channel.app, priority=1,
                            has_description=[True, False, True, True], t=0.0)
    assert out.reasons.tolist() == [0, Reason.MissingField, Reason.MissingField, Reason.UnknownCategory]
    assert out.ids.tolist() == [0, -1, -1, -1]
    again = desk.submit_batch(9, 0, 5, 1, Channel.sensor, 0, True, 1.0)
    assert again.ids.tolist() == [1] and len(again.events) == 1


@pytest.mark.parametrize("value", ["public area", "Public-Area", "PUBLIC_AREA", Category.public_area,
                                   int(Category.public_area), np.int64(Category.public_area)])
def test_category_accepts_member_code_or_name(value):
    desk = RepairDesk()
    assert desk.get(new_ticket(desk, category=value))["category"] == "public_area"


@pytest.mark.parametrize("fields, refusal", [
    (dict(category="plumbin"), UnknownCategory), (dict(category=99), UnknownCategory),
    (dict(category=-2), UnknownCategory), (dict(category=2.5), NotAnInteger),
    (dict(channel="fax"), UnknownKind), (dict(channel=17), UnknownKind), (dict(channel=1.5), NotAnInteger),
    (dict(priority=4), UnknownKind), (dict(priority=-1), UnknownKind), (dict(priority=1.5), NotAnInteger),
    (dict(priority="1"), NotAnInteger),
    (dict(building="3"), NotAnInteger), (dict(building=3.5), NotAnInteger), (dict(building=True), NotAnInteger),
    (dict(building=MAX_BUILDING + 1), MissingField), (dict(building=2**70), NotAnInteger),
    (dict(unit="2"), NotAnInteger), (dict(unit=math.nan), NotAnInteger),
    (dict(reporter=-1), InvalidId), (dict(reporter=MAX_ID), InvalidId), (dict(reporter=10**30), NotAnInteger),
    (dict(reporter=0.5), NotAnInteger),
    (dict(t=math.nan), InvalidTime), (dict(t=math.inf), InvalidTime), (dict(t=-math.inf), InvalidTime),
    (dict(t="5"), InvalidTime), (dict(t=None), InvalidTime),
])
def test_submit_refuses_values_outside_their_domain_by_reason(fields, refusal):
    log = EventLog()
    desk = RepairDesk(log=log)
    with pytest.raises(refusal):
        new_ticket(desk, **fields)
    assert desk.n_tickets == 0 and len(log) == 0


@pytest.mark.parametrize("fields", [dict(building=3.0, unit=2.0, priority=1.0), dict(category=2.0),
                                    dict(building=np.int8(3), t=np.float32(1.5)), dict(t=7)])
def test_integral_floats_and_numpy_numbers_are_integers_and_times(fields):
    desk = RepairDesk()
    got = desk.get(new_ticket(desk, **fields))
    assert isinstance(got["building"], int) and got["submitted_at"] == float(fields.get("t", 0.0))


def test_submit_batch_refuses_bad_values_one_command_at_a_time():
    log = EventLog()
    desk = RepairDesk(log=log)
    nan = math.nan
    out = desk.submit_batch(reporter=np.array([1, -1, 2, 3, 4, 5, 6, 7], dtype=object),
                            category=np.array([0, 0, 0.5, 0, 0, 0, 0, 1]),
                            building=[3, 3, 3, "3", 3, 3, 3, 4], unit=1,
                            channel=[1, 1, 1, 1, 9, 1, 1, 2], priority=[0, 0, 0, 0, 0, 7, 0, 1],
                            has_description=True, t=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, nan, 8.0])
    assert [Reason(r).name for r in out.reasons] == [
        "Accepted", "InvalidId", "NotAnInteger", "NotAnInteger", "UnknownKind", "UnknownKind",
        "InvalidTime", "Accepted"]
    assert out.ids.tolist() == [0, -1, -1, -1, -1, -1, -1, 1]
    assert log.events["t"].tolist() == [1.0, 8.0] and log.events["actor"].tolist() == [1, 7]
    assert divmod(int(log.events["target"][1]), LOCATION_BASE) == (4, 1)


def test_form_is_checked_before_the_fields():
    """Argument order: a fraction or a bad id wins over a missing field or an unknown category."""
    desk = RepairDesk()
    out = desk.submit_batch([-1, 0, 0, 0], [99, 99, NO_CATEGORY, 99], [-1, 1.5, -1, 1], 0, 1, 0,
                            [True, True, True, False], [0.0, 0.0, math.nan, 0.0])
    assert [Reason(r).name for r in out.reasons] == ["InvalidId", "NotAnInteger", "InvalidTime", "MissingField"]


def test_submit_batch_refuses_a_time_in_the_description_flag():
    with pytest.raises(ValueError, match="has_description"):
        RepairDesk().submit_batch(1, 0, 1, 1, Channel.app, 1, [10.0])


# ------------------------------------------------------------------ free text
def test_default_text_limit_is_two_thousand_characters():
    assert RepairPolicy().max_text_chars == 2_000
    desk = RepairDesk()
    ticket = new_ticket(desk, description="漏" * 2_000, contact="c" * 2_000)
    assert desk.get(ticket)["description"] == "漏" * 2_000


@pytest.mark.parametrize("field", ["description", "contact"])
@pytest.mark.parametrize("size", [2_001, 1_000_000])
def test_submit_refuses_text_over_the_limit_before_anything_changes(field, size):
    log = EventLog()
    desk = RepairDesk(log=log)
    with pytest.raises(TextTooLong, match=f"{field} of {size:,} characters \\(at most 2,000\\)"):
        new_ticket(desk, **{field: "x" * size})
    assert desk.n_tickets == 0 and len(log) == 0
    assert new_ticket(desk) == 0  # the desk goes on


def test_text_is_checked_first():
    with pytest.raises(TextTooLong):
        RepairDesk().submit(category="fax machine", description="x" * 3_000, t=math.nan)


def test_rate_refuses_a_comment_over_the_limit_and_keeps_the_ticket_unrated():
    log = EventLog()
    desk = RepairDesk(log=log, policy=RepairPolicy(max_text_chars=10))
    ticket = drive(desk, "completed")
    logged = len(log)
    with pytest.raises(TextTooLong, match="comment of 11 characters"):
        desk.rate(ticket, 5, comment="x" * 11, t=10.0)
    got = desk.get(ticket)
    assert (got["status"], got["rating"], got["comment"], len(log)) == ("completed", None, None, logged)
    desk.rate(ticket, 5, comment="x" * 10, t=10.0)
    assert desk.get(ticket)["comment"] == "x" * 10


def test_channel_accepts_names_with_spaces():
    desk = RepairDesk()
    assert desk.get(new_ticket(desk, channel="grid worker"))["channel"] == "grid_worker"


# ------------------------------------------------------------------- lifecycle
def test_full_lifecycle_records_times_worker_rating_and_events():
    log = EventLog()
    desk = RepairDesk(log=log, n_workers=10)
    ticket = new_ticket(desk, reporter=42, t=100.0)
    desk.dispatch(ticket, 7, t=110.0)
    desk.start(ticket, t=130.0)
    desk.complete(ticket, t=190.0)
    desk.rate(ticket, 5, comment="fast and tidy", t=200.0)
    got = desk.get(ticket)
    assert got["status"] == "rated" and got["worker"] == 7 and got["rating"] == 5
    assert got["comment"] == "fast and tidy"
    assert [got[k] for k in ("submitted_at", "dispatched_at", "started_at", "completed_at",
                             "rated_at", "cancelled_at")] == [100.0, 110.0, 130.0, 190.0, 200.0, None]
    kinds = [EventKind(k) for k in log.events["kind"]]
    assert kinds == [EventKind.TicketSubmitted, EventKind.TicketDispatched, EventKind.TicketStarted,
                     EventKind.TicketCompleted, EventKind.TicketRated]
    dispatched, started, completed, rated = log.events[1:]
    assert dispatched["target"] == 7 and started["actor"] == 7 and completed["actor"] == 7
    assert (rated["actor"], rated["amount"]) == (42, 5)
    assert (log.events["subject"] == ticket).all()


@pytest.mark.parametrize("status", list(PATH))
@pytest.mark.parametrize("action", [a.name for a in Action])
def test_every_status_action_pair_follows_the_lifecycle(status, action):
    desk = RepairDesk()
    ticket = drive(desk, status)
    before = desk.snapshot()
    arg = 3 if action == "rate" else 1
    if (status, action) in LEGAL:
        command(desk, action, ticket, arg, t=10.0)
        assert desk.get(ticket)["status"] == LEGAL[status, action]
    else:
        refusal = AlreadyRated if (status, action) == ("rated", "rate") else InvalidTransition
        with pytest.raises(refusal, match=f"{action} ticket {ticket} \\({status}\\)"):
            command(desk, action, ticket, arg, t=10.0)
        assert_same_state(desk.snapshot(), before)


def test_a_step_before_submission_is_refused_as_such():
    desk = RepairDesk()
    ticket = new_ticket(desk, t=100.0)
    with pytest.raises(BeforeSubmission, match="dispatch ticket 0 \\(submitted\\) at t=99.0"):
        desk.dispatch(ticket, 1, t=99.0)
    with pytest.raises(BeforeSubmission):
        desk.escalate(ticket, t=-5.0)
    desk.dispatch(ticket, 1, t=100.0)
    with pytest.raises(BeforeSubmission):
        desk.cancel(ticket, t=99.5)
    assert desk.get(ticket)["status"] == "dispatched"


def test_a_step_after_submission_but_before_the_current_status_is_an_invalid_transition():
    desk = RepairDesk()
    ticket = new_ticket(desk, t=100.0)
    desk.dispatch(ticket, 1, t=110.0)
    with pytest.raises(InvalidTransition):
        desk.start(ticket, t=105.0)
    with pytest.raises(InvalidTransition):
        desk.cancel(ticket, t=100.0)
    desk.start(ticket, t=110.0)  # the same minute is fine
    assert desk.get(ticket)["status"] == "in_progress"


def test_a_move_the_table_forbids_is_an_invalid_transition_whatever_its_time():
    desk = RepairDesk()
    ticket = new_ticket(desk, t=100.0)
    with pytest.raises(InvalidTransition):
        desk.complete(ticket, t=50.0)


def test_a_reopened_ticket_is_submitted_anew_when_reopened():
    desk = RepairDesk()
    ticket = drive(desk, "completed", t=100.0)  # completed at 103
    desk.reopen(ticket, actor=1, t=200.0)
    with pytest.raises(BeforeSubmission):
        desk.dispatch(ticket, 1, t=150.0)
    desk.dispatch(ticket, 1, t=200.0)
    assert desk.get(ticket)["dispatched_at"] == 200.0


@pytest.mark.parametrize("t", [math.nan, math.inf, -math.inf, "10", None, True])
@pytest.mark.parametrize("action", [a.name for a in Action])
def test_every_step_refuses_a_time_that_is_not_a_finite_number(action, t):
    log = EventLog()
    desk = RepairDesk(log=log)
    status = {"rate": "completed", "reopen": "completed", "complete": "in_progress", "start": "dispatched"}
    ticket = drive(desk, status.get(action, "submitted"))
    before, logged = desk.snapshot(), len(log)
    with pytest.raises(InvalidTime):
        command(desk, action, ticket, 4 if action == "rate" else 1, t=t)
    assert_same_state(desk.snapshot(), before)
    assert len(log) == logged


@pytest.mark.parametrize("ticket", [0.5, "0", True, None])
def test_a_ticket_id_that_is_not_an_integer_is_refused(ticket):
    desk = RepairDesk()
    new_ticket(desk)
    with pytest.raises(NotAnInteger):
        desk.dispatch(ticket, 1, t=1.0)
    with pytest.raises(NotAnInteger):
        desk.get(ticket)
    assert desk.get(0)["status"] == "submitted"


def test_an_integral_float_names_a_ticket():
    desk = RepairDesk()
    new_ticket(desk)
    desk.dispatch(0.0, 1.0, t=1.0)
    assert desk.get(0.0)["worker"] == 1


@pytest.mark.parametrize("action", ["cancel", "reopen", "escalate"])
@pytest.mark.parametrize("actor, refusal", [(-1, InvalidId), (MAX_ID, InvalidId), (1.5, NotAnInteger),
                                            ("7", NotAnInteger)])
def test_an_actor_must_be_a_persons_id(action, actor, refusal):
    desk = RepairDesk()
    ticket = drive(desk, "completed" if action == "reopen" else "submitted")
    before = desk.snapshot()
    with pytest.raises(refusal):
        command(desk, action, ticket, actor, t=10.0)
    assert_same_state(desk.snapshot(), before)


def test_cancel_records_when_and_is_final():
    desk = RepairDesk()
    ticket = drive(desk, "dispatched")
    desk.cancel(ticket, actor=5, t=30.0)
    assert desk.get(ticket)["cancelled_at"] == 30.0
    with pytest.raises(InvalidTransition):
        desk.dispatch(ticket, 1, t=31.0)


# --------------------------------------------------------------------- rating
@pytest.mark.parametrize("rating, refusal", [(0, InvalidRating), (6, InvalidRating), (-1, InvalidRating),
                                             (100, InvalidRating), (2**64, NotAnInteger),
                                             (4.5, NotAnInteger), (math.nan, NotAnInteger),
                                             ("5", NotAnInteger), (True, NotAnInteger), (None, NotAnInteger)])
def test_rating_outside_one_to_five_or_not_an_integer_is_refused_and_ticket_stays_completed(rating, refusal):
    desk = RepairDesk()
    ticket = drive(desk, "completed")
    with pytest.raises(refusal):
        desk.rate(ticket, rating, comment="ok", t=10.0)
    got = desk.get(ticket)
    assert got["status"] == "completed" and got["rating"] is None and got["comment"] is None


def test_rate_batch_refuses_a_fraction_instead_of_truncating_it():
    desk = RepairDesk()
    tickets = [drive(desk, "completed") for _ in range(3)]
    out = desk.rate_batch(tickets, np.array([4.5, 4.0, 3.0]), 10.0)
    assert [Reason(r).name for r in out.reasons] == ["NotAnInteger", "Accepted", "Accepted"]
    assert [desk.get(k)["rating"] for k in tickets] == [None, 4, 3]


def test_rating_is_given_once_and_never_overwritten():
    desk = RepairDesk()
    ticket = drive(desk, "completed")
    desk.rate(ticket, 2, comment="slow", t=10.0)
    with pytest.raises(AlreadyRated):
        desk.rate(ticket, 5, comment="actually fine", t=11.0)
    got = desk.get(ticket)
    assert (got["rating"], got["comment"], got["rated_at"]) == (2, "slow", 10.0)


def test_rating_before_completion_is_an_invalid_transition():
    desk = RepairDesk()
    ticket = drive(desk, "in_progress")
    with pytest.raises(InvalidTransition):
        desk.rate(ticket, 5, t=10.0)


# --------------------------------------------------------------------- reopen
def test_default_reopen_window_is_one_week():
    assert RepairPolicy().reopen_window_minutes == 7 * 1440


@pytest.mark.parametrize("after, accepted", [(0.0, True), (60.0, True), (60.5, False), (1e6, False)])
def test_reopen_only_within_window(after, accepted):
    desk = RepairDesk(policy=RepairPolicy(reopen_window_minutes=60))
    ticket = drive(desk, "completed")
    completed_at = desk.get(ticket)["completed_at"]
    if accepted:
        desk.reopen(ticket, actor=9, t=completed_at + after)
        assert desk.get(ticket)["status"] == "submitted"
    else:
        with pytest.raises(ReopenWindowExpired, match="window 60"):
            desk.reopen(ticket, actor=9, t=completed_at + after)
        assert desk.get(ticket)["status"] == "completed"


def test_reopened_ticket_starts_a_new_cycle():
    desk = RepairDesk()
    ticket = drive(desk, "completed")
    desk.reopen(ticket, actor=3, t=50.0)
    got = desk.get(ticket)
    assert (got["reopens"], got["worker"], got["submitted_at"]) == (1, None, 50.0)
    assert got["dispatched_at"] is got["started_at"] is got["completed_at"] is None
    desk.dispatch(ticket, 2, t=60.0)
    desk.start(ticket, t=61.0)
    desk.complete(ticket, t=62.0)
    desk.rate(ticket, 4, t=63.0)
    assert desk.get(ticket)["status"] == "rated" and desk.get(ticket)["worker"] == 2


# ------------------------------------------------------------------- escalate
def test_escalation_raises_priority_up_to_the_maximum_and_counts():
    log = EventLog()
    desk = RepairDesk(log=log, policy=RepairPolicy(max_priority=4, escalation_step=2))
    ticket = new_ticket(desk, priority=1)
    desk.dispatch(ticket, 0, t=1.0)
    out = desk.escalate_batch([ticket, ticket, ticket], actor=[5, 6, 7], t=[2.0, 3.0, 4.0])
    assert out.accepted.all()
    assert out.events["amount"].tolist() == [3, 4, 4] and out.events["actor"].tolist() == [5, 6, 7]
    got = desk.get(ticket)
    assert (got["priority"], got["escalations"], got["status"], got["dispatched_at"]) == (
        4, 3, "dispatched", 1.0)


# ----------------------------------------------------------- tickets, workers
def test_unknown_ticket_is_refused_everywhere():
    desk = RepairDesk()
    new_ticket(desk)
    for ticket in (-1, 1, 10**9):
        with pytest.raises(UnknownTicket, match=f"ticket {ticket}"):
            desk.start(ticket)
        with pytest.raises(UnknownTicket):
            desk.get(ticket)
    assert desk.dispatch_batch([5, 0], 1).reasons.tolist() == [Reason.UnknownTicket, 0]


@pytest.mark.parametrize("n_workers, worker, accepted", [
    (3, 2, True), (3, 3, False), (3, -1, False), (None, 10**6, True), (None, -1, False), (0, 0, False),
])
def test_worker_must_be_known(n_workers, worker, accepted):
    desk = RepairDesk(n_workers=n_workers)
    ticket = new_ticket(desk)
    if accepted:
        desk.dispatch(ticket, worker)
        assert desk.get(ticket)["worker"] == worker
    else:
        with pytest.raises(UnknownWorker):
            desk.dispatch(ticket, worker)
        assert desk.get(ticket)["status"] == "submitted"


@pytest.mark.parametrize("worker", [1.5, "1", True, math.nan])
def test_a_worker_id_that_is_not_an_integer_is_refused(worker):
    desk = RepairDesk(n_workers=3)
    ticket = new_ticket(desk)
    with pytest.raises(NotAnInteger):
        desk.dispatch(ticket, worker, t=1.0)
    assert desk.get(ticket)["status"] == "submitted"


def test_a_desk_with_a_roster_refuses_workers_off_it_in_a_batch():
    desk = RepairDesk(n_workers=2)
    tickets = [new_ticket(desk) for _ in range(4)]
    out = desk.dispatch_batch(tickets, [0, 1, 2, 10**6], 1.0)
    assert [Reason(r).name for r in out.reasons] == ["Accepted", "Accepted", "UnknownWorker", "UnknownWorker"]
    assert out.events["target"].tolist() == [0, 1]


def test_refusals_are_service_errors_with_their_reason():
    desk = RepairDesk()
    with pytest.raises(ServiceError) as raised:
        desk.start(0)
    assert raised.value.reason is Reason.UnknownTicket


# --------------------------------------------------------------------- policy
@pytest.mark.parametrize("field, value", [
    ("reopen_window_minutes", -1), ("reopen_window_minutes", math.nan),
    ("reopen_window_minutes", math.inf), ("reopen_window_minutes", "7"),
    ("reopen_window_minutes", True), ("max_priority", -1), ("max_priority", 1.5),
    ("escalation_step", 0), ("escalation_step", True),
])
def test_policy_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        RepairPolicy(**{field: value})


@pytest.mark.parametrize("value", [0, -5, 1.5, True, "2000"])
def test_policy_rejects_a_bad_text_limit(value):
    with pytest.raises(ValueError, match="max_text_chars"):
        RepairPolicy(max_text_chars=value)


@pytest.mark.parametrize("n_workers", [-1, 2.5, True])
def test_desk_rejects_bad_worker_count(n_workers):
    with pytest.raises(ValueError, match="n_workers"):
        RepairDesk(n_workers=n_workers)


# ---------------------------------------------------------------- pagination
@pytest.fixture
def desk_of_23():
    """23 tickets; every third one dispatched."""
    desk = RepairDesk()
    for i in range(23):
        new_ticket(desk, reporter=i)
    desk.dispatch_batch(np.arange(0, 23, 3), 1, 1.0)
    return desk


@pytest.mark.parametrize("page, limit", [(1, 10), (2, 10), (3, 10), (4, 10), (1, 23), (1, 100),
                                         (5, 5), (23, 1)])
def test_list_pages_all_tickets(desk_of_23, page, limit):
    listed = desk_of_23.list(page=page, limit=limit)
    expected = list(range(23))[(page - 1) * limit : page * limit]
    assert (listed["total"], listed["page"], listed["limit"]) == (23, page, limit)
    assert [d["id"] for d in listed["data"]] == expected
    assert listed["data"] == [desk_of_23.get(i) for i in expected]


@pytest.mark.parametrize("status", ["dispatched", Status.dispatched, int(Status.dispatched)])
def test_list_filters_by_status_across_pages(desk_of_23, status):
    dispatched = [i for i in range(23) if i % 3 == 0]
    pages = [desk_of_23.list(status=status, page=p, limit=3) for p in (1, 2, 3, 4)]
    assert {p["total"] for p in pages} == {len(dispatched)}
    assert [d["id"] for p in pages for d in p["data"]] == dispatched
    assert all(d["status"] == "dispatched" for p in pages for d in p["data"])
    assert desk_of_23.list(status="submitted")["total"] == 23 - len(dispatched)
    assert desk_of_23.list(status="rated") == {"total": 0, "page": 1, "limit": 10, "data": []}


def test_list_reads_page_numbers_from_query_strings(desk_of_23):
    assert desk_of_23.list(page="3", limit="10")["data"][0]["id"] == 20


@pytest.mark.parametrize("kwargs, field", [
    (dict(page=0), "page"), (dict(page=-2), "page"), (dict(page="x"), "page"), (dict(page=1.5), "page"),
    (dict(limit=0), "limit"),
])
def test_list_rejects_bad_arguments(desk_of_23, kwargs, field):
    with pytest.raises(ValueError, match=field):
        desk_of_23.list(**kwargs)


@pytest.mark.parametrize("status, refusal", [("done", UnknownKind), (17, UnknownKind), (1.5, NotAnInteger)])
def test_list_refuses_a_status_that_is_none(desk_of_23, status, refusal):
    with pytest.raises(refusal, match="status"):
        desk_of_23.list(status=status)


# --------------------------------------------------------------------- replay
def test_kinds_are_the_ticket_events():
    assert KINDS == {k for k in EventKind if k.name.startswith("Ticket")}


def test_replay_skips_other_kinds_and_refuses_a_log_applied_twice():
    log = EventLog()
    desk = RepairDesk(log=log)
    drive(desk, "rated")
    mixed = np.concatenate([ev.make(EventKind.Transferred, 0.0, actor=1, target=2, amount=3),
                            log.events])
    replayed = RepairDesk()
    replayed.replay(mixed)
    assert_same_state(replayed.snapshot(), desk.snapshot())
    with pytest.raises(ValueError, match="did not reproduce"):
        replayed.replay(log.events)


# ---------------------------------------------------------------- properties
class NaiveDesk:
    """The rules restated plainly, one dict per ticket: the oracle for the kernels."""

    def __init__(self, window, max_priority, step, n_workers):
        self.window, self.max_priority, self.step, self.n_workers = window, max_priority, step, n_workers
        self.tickets = []

    def submit(self, priority, t):
        self.tickets.append(dict(status="submitted", entered=t, submitted=t, completed=None, worker=-1,
                                 rating=0, priority=priority, escalations=0, reopens=0))

    def act(self, action, ticket, arg, t):
        """``arg`` is the worker, the rating or (cancel, reopen, escalate) the actor."""
        if action not in ("start", "complete") and arg != int(arg):
            return Reason.NotAnInteger
        if action in ("cancel", "reopen", "escalate") and not 0 <= arg < MAX_ID:
            return Reason.InvalidId
        if not 0 <= ticket < len(self.tickets):
            return Reason.UnknownTicket
        k = self.tickets[ticket]
        if action == "rate" and k["status"] == "rated":
            return Reason.AlreadyRated
        if (k["status"], action) not in LEGAL:
            return Reason.InvalidTransition
        if t < k["submitted"]:
            return Reason.BeforeSubmission
        if t < k["entered"]:
            return Reason.InvalidTransition
        if action == "dispatch" and not 0 <= arg < self.n_workers:
            return Reason.UnknownWorker
        if action == "rate" and not 1 <= arg <= 5:
            return Reason.InvalidRating
        if action == "reopen" and t - k["completed"] > self.window:
            return Reason.ReopenWindowExpired
        if action == "escalate":
            k["priority"] = min(k["priority"] + self.step, self.max_priority)
            k["escalations"] += 1
            return Reason.Accepted
        if action == "dispatch":
            k["worker"] = arg
        elif action == "rate":
            k["rating"] = arg
        elif action == "complete":
            k["completed"] = t
        elif action == "reopen":
            k["worker"] = -1
            k["reopens"] += 1
            k["submitted"] = t
        k["status"], k["entered"] = LEGAL[k["status"], action], t
        return Reason.Accepted


ACTION_NAMES = [a.name for a in Action]
KIND_OF = {"dispatch": EventKind.TicketDispatched, "start": EventKind.TicketStarted,
           "complete": EventKind.TicketCompleted, "rate": EventKind.TicketRated,
           "cancel": EventKind.TicketCancelled, "reopen": EventKind.TicketReopened,
           "escalate": EventKind.TicketEscalated}
# "next" takes the ticket one step along its lifecycle (as the naive desk sees it), so
# random sequences reach completed, rated and reopened tickets, not only fresh ones.
NEXT = {"submitted": "dispatch", "dispatched": "start", "in_progress": "complete",
        "completed": "rate", "rated": "rate", "cancelled": "cancel"}
commands = st.lists(st.tuples(st.sampled_from(ACTION_NAMES + ["next"] * 10),
                              st.sampled_from([0, 0, 0, 1, 1, 1, 2, 2, 2, -1, 3]),
                              st.integers(-1, 5) | st.just(2.5), st.integers(-5, 60)), min_size=5, max_size=60)


@settings(max_examples=150, deadline=None)
@given(commands=commands)
def test_only_legal_transitions_happen(commands):
    policy = RepairPolicy(reopen_window_minutes=90, max_priority=3, escalation_step=1)
    desk, naive = RepairDesk(policy=policy, n_workers=5), NaiveDesk(90, 3, 1, 5)
    for _ in range(3):
        new_ticket(desk, priority=1)
        naive.submit(1, 0.0)
    t = 0.0
    for action, ticket, arg, dt in commands:
        t += dt
        if action == "next":
            status = naive.tickets[ticket]["status"] if 0 <= ticket < 3 else "submitted"
            action = "reopen" if status == "completed" and arg % 2 else NEXT[status]
        before = desk.snapshot()
        out = batch(desk, action, [ticket], [arg], [t])
        assert Reason(out.reasons[0]) == naive.act(action, ticket, arg, t)
        if out.accepted[0]:
            old, new = Status(before["status"][ticket]).name, Status(desk.state.status[ticket]).name
            assert LEGAL[old, action] == new
            [event] = out.events
            k = naive.tickets[ticket]
            assert (event["kind"], event["subject"], event["t"]) == (KIND_OF[action], ticket, t)
            assert event["target"] == (arg if action == "dispatch" else 0)
            assert event["amount"] == {"rate": arg, "escalate": k["priority"]}.get(action, 0)
        else:
            assert_same_state(desk.snapshot(), before)
            assert len(out.events) == 0
    for ticket, k in enumerate(naive.tickets):
        got = desk.get(ticket)
        assert (got["status"], got["priority"], got["escalations"], got["reopens"]) == (
            k["status"], k["priority"], k["escalations"], k["reopens"])
        assert (got["worker"], got["rating"]) == (
            None if k["worker"] < 0 else k["worker"], k["rating"] or None)


# A program is rounds of runs (one action over several commands).  Inside a round the runs
# follow the lifecycle and all act on the round's focus tickets, so tickets get far; repeats
# put same-kind runs side by side.  Cancelling ends a ticket, so it is drawn least.
LIFECYCLE = ["submit", "dispatch", "start", "escalate", "complete", "reopen", "rate", "cancel"]
WEIGHTED = LIFECYCLE[:-1] * 3 + ["cancel"]
submission = st.tuples(st.integers(0, 5), st.integers(-1, len(Category)), st.integers(-1, 9),
                       st.integers(0, 3), st.sampled_from(list(Channel)), st.integers(0, 3),
                       st.sampled_from([True] * 9 + [False]), st.integers(-5, 60))


def runs_on(focus):
    def run(action):
        if action == "submit":
            rows = st.lists(submission, min_size=1, max_size=3)
        else:  # (ticket, worker / rating / actor, minutes since the previous command)
            rows = st.tuples(*[st.tuples(st.just(k), st.integers(-1, 5), st.integers(-5, 60))
                               for k in focus]).map(list)
        return rows.map(lambda rows: (action, rows))

    actions = st.lists(st.sampled_from(WEIGHTED), min_size=1, max_size=8)
    return actions.map(lambda a: sorted(a, key=LIFECYCLE.index)).flatmap(
        lambda a: st.tuples(*[run(action) for action in a]))


rounds = st.lists(st.sampled_from([0, 1, 2, 3, 4, -1]), min_size=1, max_size=3).flatmap(runs_on)
programs = st.tuples(st.lists(submission, min_size=5, max_size=8), st.lists(rounds, max_size=6)).map(
    lambda p: [("submit", p[0])] + [run for rnd in p[1] for run in rnd])


def run_program(desk, program, split):
    """Run ``program``, each run as one batch or (``split``) one batch per command; return outcomes."""
    outcomes, clock = [], 0.0
    for action, rows in program:
        times = clock + np.cumsum([row[-1] for row in rows], dtype=float)
        clock = float(times[-1])
        pieces = [slice(i, i + 1) for i in range(len(rows))] if split else [slice(None)]
        for piece in pieces:
            cols = [np.array(c) for c in zip(*rows[piece])]
            if action == "submit":
                outcomes.append(desk.submit_batch(*cols[:-1], times[piece]))
            else:
                outcomes.append(batch(desk, action, cols[0], cols[1], times[piece]))
    return outcomes


def joined(outcomes):
    return (np.concatenate([o.reasons for o in outcomes] or [np.zeros(0)]),
            np.concatenate([o.ids for o in outcomes if o.ids is not None] or [np.zeros(0)]),
            np.concatenate([o.events for o in outcomes] or [ev.empty()]))


@settings(max_examples=100, deadline=None)
@given(program=programs)
def test_batch_of_n_equals_n_batches_of_one(program):
    policy = RepairPolicy(reopen_window_minutes=200)
    whole, split = RepairDesk(policy=policy, n_workers=5), RepairDesk(policy=policy, n_workers=5)
    for a, b in zip(joined(run_program(whole, program, False)), joined(run_program(split, program, True))):
        np.testing.assert_array_equal(a, b)
    assert_same_state(whole.snapshot(), split.snapshot())


@settings(max_examples=100, deadline=None)
@given(program=programs)
def test_replaying_the_log_reproduces_the_live_state(program):
    policy = RepairPolicy(reopen_window_minutes=200)
    log, replay_log = EventLog(), EventLog()
    live = RepairDesk(log=log, policy=policy, n_workers=5)
    run_program(live, program, False)
    replayed = RepairDesk(log=replay_log, policy=policy, n_workers=5)
    replayed.replay(log.events)
    assert_same_state(replayed.snapshot(), live.snapshot())
    np.testing.assert_array_equal(replay_log.events, log.events)
