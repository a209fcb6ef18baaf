"""``twin emulate``: production played on one machine — people at a real server's API, devices on a real
Mosquitto — checked on the far side of the broker against the production twin it replays."""
import json
import queue
from collections import Counter

import numpy as np
import pytest

from live_bridge import emulate as em
from live_bridge import mqtt
from live_bridge import sparkplug as sp
from twin.config import load_scenario
from twin.services import events as ev
from twin.services.events import EventKind

WAIT_S = 120  # how long the far side waits for the end of the stream before it says what it got
# a tiny community with many faults, so that two days hold every step of the repair life cycle
TINY = ["community.households=60", "community.buildings=3", "sim.days=2", "progress=false",
        "facilities.household_faults_per_year=40", "facilities.public_faults_per_building_year=100"]
FAULTY = ["sensors.dropout_per_device_day=0.3"]  # production's meters fall silent: NaN on the twin's side
REPAIR = [int(k) for k in em.REPLAYED]


# ----------------------------------------------------------------------------------- production's config
def test_slower_technicians_multiply_every_categorys_service_minutes_and_the_engine_uses_them():
    from twin.engine.twin import Twin

    plain = load_scenario("default", TINY)
    slow = em.production_config("default", TINY, slower_technicians=1.3)
    assert plain.staff.service_minutes.keys() == slow.staff.service_minutes.keys()
    for category, minutes in plain.staff.service_minutes.items():
        assert slow.staff.service_minutes[category] == pytest.approx(1.3 * minutes)
    assert slow.community == plain.community and slow.seed == plain.seed  # the same community
    # production's twin draws its repairs from means 1.3 times the plain twin's, every category
    assert np.allclose(Twin(slow)._service_mean, 1.3 * Twin(plain)._service_mean)


def test_production_overrides_reach_production_only_and_never_its_community():
    plain = load_scenario("default", TINY)
    faulty = em.production_config("default", TINY, production=FAULTY)
    assert faulty.sensors.dropout_per_device_day == 0.3 != plain.sensors.dropout_per_device_day
    faulty.sensors.dropout_per_device_day = plain.sensors.dropout_per_device_day
    assert faulty == plain
    for shared in ("community.households=5", "sim.days=9", "seed=3"):
        with pytest.raises(ValueError, match=f"--production '{shared}': allowed are key=value overrides of "
                                             "anything but community, sim, seed"):
            em.production_config("default", TINY, production=[shared])
    for bad in (0, -1.3, float("nan"), float("inf"), "1.3", True):
        with pytest.raises(ValueError, match="slower_technicians .*allowed values are a positive factor"):
            em.production_config("default", TINY, slower_technicians=bad)


# ------------------------------------------------------------------------------------ the log as requests
def test_the_log_becomes_requests_in_time_order_earlier_steps_first_at_one_minute():
    log = np.concatenate([
        ev.make(EventKind.TicketSubmitted, 100.0, actor=7, subject=0, target=20_000, code=1, amount=0, channel=1),
        ev.make(EventKind.TicketSubmitted, 1500.0, actor=8, subject=1, target=10_000, code=0, amount=2, channel=4),
        ev.make(EventKind.TicketStarted, 480.0, actor=3, subject=0),  # logged before its dispatch, same minute
        ev.make(EventKind.TicketDispatched, 480.0, subject=0, target=3),
        ev.make(EventKind.PointsEarned, 200.0, actor=7),
        ev.make(EventKind.TicketCompleted, 530.0, actor=3, subject=0),
        ev.make(EventKind.TicketRated, 770.0, actor=7, subject=0, amount=4),
        ev.make(EventKind.AlertRaised, 900.0),
    ])
    acts, left_out = em.repair_acts(log, days=2)
    assert [(a.t, a.operation, a.ticket, a.actor, a.arg) for a in acts[0]] == [
        (100.0, "submit", 0, 7, -1), (480.0, "dispatch", 0, 3, -1), (480.0, "start", 0, 3, -1),
        (530.0, "complete", 0, 3, -1), (770.0, "rate", 0, 7, 4)]
    assert [(a.t, a.operation, a.ticket) for a in acts[1]] == [(1500.0, "submit", 1)]
    assert left_out == Counter({"PointsEarned": 1, "AlertRaised": 1})


# ---------------------------------------------------------------------------------- end to end
class FarSide:
    """A subscriber on the broker that keeps every message in arrival order."""

    def __init__(self, url, *filters):
        self.messages = queue.Queue()
        self.client = mqtt.connect(url, "", subscriptions=list(filters),
                                   on_message=lambda c, u, m: self.messages.put((m.topic, m.payload)))
        self.client.wait_ready(30)

    def until(self, done):
        """Messages until ``done(messages so far)`` holds."""
        got = []
        while not done(got):
            try:
                got.append(self.messages.get(timeout=WAIT_S))
            except queue.Empty:
                pytest.fail(f"the stream did not end within {WAIT_S} s; {len(got)} messages arrived")
        mqtt.close(self.client)
        return got


def non_nan_readings(run) -> int:
    """Every reading production's devices hold (NaN: a silent meter, which publishes nothing), alarms included."""
    return sum(int(np.isfinite(a).sum()) for r in run.readings for a in (r.water, r.power, r.main_lph, r.bin_fill)
               ) + sum(int((r.smoke_t >= 0).sum()) for r in run.readings)


def comparable(rows, ids=None):
    """Repair events as tuples, the twin's ticket ids mapped to the server's by ``ids``."""
    out = Counter()
    for r in rows:
        subject = int(r["subject"]) if ids is None else ids[int(r["subject"])]
        out[(float(r["t"]), int(r["kind"]), int(r["actor"]), subject, int(r["target"]), int(r["amount"]),
             int(r["code"]), int(r["channel"]))] += 1
    return out


def test_production_replays_the_twins_tickets_through_the_api_and_its_devices_readings(mosquitto):
    cfg = em.production_config("default", TINY, production=FAULTY)
    run = em.run_production(cfg)
    twin_repairs = run.events[np.isin(run.events["kind"], REPAIR)]
    kinds = Counter(EventKind(int(k)).name for k in twin_repairs["kind"])
    assert all(kinds[k.name] > 0 for k in em.REPLAYED), kinds  # every step of the life cycle is exercised
    expected_readings = non_nan_readings(run)
    assert expected_readings < sum(r.water.size + r.power.size for r in run.readings)  # some meters are silent

    far = FarSide(mosquitto.url, "community/c1/events/#", "spBv1.0/c1/#")
    said = []
    summary = em.emulate(cfg, mosquitto.url, speed=200_000, run=run, say=said.append)
    got = far.until(lambda got: sum("/NDEATH/" in t for t, _ in got) == cfg.community.buildings)

    # people: every request answered, and production's log is the twin's, ticket ids mapped
    assert summary.refused == Counter()
    assert summary.requests == Counter({em.REPLAYED[EventKind[k]]: n for k, n in kinds.items()})
    assert sorted(summary.tickets.values()) == list(range(kinds["TicketSubmitted"]))  # one server ticket each
    events = [json.loads(p) for t, p in got if t.startswith("community/c1/events/")]
    assert {t.rsplit("/", 1)[1] for t, _ in got if t.startswith("community/")} == {"repair"}
    production = np.concatenate([ev.make(EventKind[e["kind"]], e["t"], actor=e["actor"], subject=e["subject"],
                                         target=e["target"], amount=e["amount"], code=e["code"],
                                         channel=e["channel"]) for e in events])
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)  # in log order
    for kind in (EventKind.TicketSubmitted, EventKind.TicketCompleted):  # times equal, to the bit
        assert comparable(production[production["kind"] == kind]) == comparable(
            twin_repairs[twin_repairs["kind"] == kind], summary.tickets)
    assert comparable(production) == comparable(twin_repairs, summary.tickets)  # and every other step
    assert summary.events_published == len(events)

    # devices: each reading production's meters hold arrives once; the silent ones send nothing
    host = sp.HostSession("c1")
    received, refused, first_of_day = 0, [], {}
    for i, (topic, payload) in enumerate(got):
        if topic.startswith("spBv1.0/"):
            readings, reason = host.accept(topic, payload)
            if reason is not None:
                refused.append((topic, reason))
            received += len(readings or [])
            for r in readings or []:  # where each day's first reading arrived (a tick's end is its own day's)
                day = (r.timestamp_ms - summary.epoch_ms - 1) // (1440 * 60_000)
                first_of_day.setdefault(day, i)
    assert refused == []
    assert received == expected_readings == summary.devices.readings == summary.devices.messages
    # production's events of a day are on the broker before the day's readings, so before a shadow closes it
    for i, (topic, payload) in enumerate(got):
        if topic.startswith("community/"):
            day = int(json.loads(payload)["t"] // 1440)
            assert i < first_of_day[day]
    assert any("day 2/2" in line for line in said) and any(summary.server_url in line for line in said)


def test_a_refused_request_is_counted_and_said_and_the_rest_goes_on(mosquitto):
    cfg = em.production_config("default", [*TINY[:2], "sim.days=1", *TINY[3:]])
    run = em.run_production(cfg)
    day = run.acts[0]
    rate = next(i for i, a in enumerate(day) if a.operation == "rate")
    day[rate] = day[rate]._replace(arg=9)  # a rating out of range: the server refuses it
    day.append(day[-1]._replace(operation="start", ticket=10_000))  # a ticket the server never saw
    said = []
    summary = em.emulate(cfg, mosquitto.url, speed=0, run=run, say=said.append)
    assert summary.refused == Counter({"rate": 1, "start": 1})
    assert sum(summary.requests.values()) == len(day)
    refusals = [line for line in said if "refused:" in line]
    assert len(refusals) == 2 and "422" in refusals[0] and "never submitted" in refusals[1]


def test_an_emulation_behind_its_clock_says_so_each_day(mosquitto):
    cfg = em.production_config("default", [*TINY[:2], "sim.days=1", *TINY[3:]])
    month_ago = sp.now_ms() - 30 * 86_400_000  # at real time, every day is long over: nothing waits
    said = []
    summary = em.emulate(cfg, mosquitto.url, speed=1, epoch_ms=month_ago, say=said.append)
    late = [line for line in said if "after a shadow closes the day (1,500): a lower --speed keeps up" in line]
    assert len(late) == 1 and late[0].startswith("emulate: day 0's events reached the broker at community minute ")
    assert summary.refused == Counter() and summary.epoch_ms == month_ago


# ------------------------------------------------------------------------------------ the command
def test_the_command_plays_production_on_its_own_broker(capsys):
    from twin.cli import main

    rc = main(["emulate", "--speed", "0", "--days", "1", "--protocol", "json", "--slower-technicians", "1.3",
               *[o for o in TINY if not o.startswith("sim.days")]])
    out = capsys.readouterr()
    assert rc == 0, out.err
    lines = out.out.splitlines()
    assert lines[0].startswith("emulate: production server http://127.0.0.1:")
    assert "(embedded broker); devices as json" in lines[1]
    assert lines[2].startswith("emulate: day 1/1: ")
    assert lines[-1].startswith("emulate: 1 day(s) in ") and ", 0 refused;" in lines[-1]
    assert "technicians x1.3" in out.err


@pytest.mark.parametrize("argv,message", [
    (["--slower-technicians", "0"], "slower_technicians 0.0: allowed values are a positive factor"),
    (["--production", "community.households=5"], "--production 'community.households=5': allowed are"),
    (["--production", "a='b"], "--production \"a='b\": No closing quotation"),
    (["--production", "staff.technicianz=3"], "configuration error"),
    (["--speed", "-1"], "--speed -1: allowed values are 0 (as fast as possible) or more"),
    (["--days", "0"], "--days 0: allowed values are 1 or more"),
    (["--port", "70000"], "--port 70000: allowed values are 1 to 65535"),
    (["--broker", "mqtts://127.0.0.1:1"], "connects to plain mqtt://host:port only"),
])
def test_bad_input_ends_in_one_line_naming_it(capsys, argv, message):
    from twin.cli import EXIT_USAGE, main

    rc = main(["emulate", *argv])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_an_existing_store_is_refused(tmp_path, capsys):
    from twin.cli import EXIT_USAGE, main

    store = tmp_path / "production.db"
    store.write_bytes(b"")
    rc = main(["emulate", "--store", str(store)])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE and f"--store {store} exists; allowed: a new path" in err
