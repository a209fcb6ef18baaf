"""``twin devices``: the twin's sensors published as hardware, counted against the twin's own
readings on the far side of a real Mosquitto (Sparkplug B and zigbee2mqtt-style JSON)."""
import json
import queue
import threading
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from live_bridge import devices as dv
from live_bridge import mqtt
from live_bridge import sparkplug as sp
from live_bridge.registry import Registry

EPOCH_MS = 1_700_000_000_000
WAIT_S = 120  # how long the far side waits for the end of the stream before it says what it got
# a small community with dropouts and smoke alarms, so that silence and alarms are on the wire too
TINY = ["community.households=40", "sim.days=1", "sensors.dropout_per_device_day=0.3",
        "sensors.smoke_per_household_year=150", "progress=false"]


# ----------------------------------------------------------------------------------- pure parts
def test_wire_time_is_epoch_plus_community_minutes():
    assert dv.wire_ms(EPOCH_MS, 0) == EPOCH_MS
    assert dv.wire_ms(EPOCH_MS, 1440 + 60) == EPOCH_MS + 1500 * 60_000
    assert dv.community_minutes(EPOCH_MS, dv.wire_ms(EPOCH_MS, 123.5)) == 123.5


def test_the_pacer_holds_publishing_to_real_time_times_speed():
    now = [100.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    pacer = dv.Pacer(60.0, start_minute=1440.0, clock=lambda: now[0], sleep=sleep)
    pacer.wait_for(1440.0 + 60)  # an hour of community time at 60x: a minute
    assert slept == [60.0]
    now[0] += 100.0  # publishing fell behind: no waiting until it catches up
    pacer.wait_for(1440.0 + 120)
    assert slept == [60.0]
    pacer.wait_for(1440.0 + 240)
    assert slept == [60.0, pytest.approx(80.0)]
    fast = dv.Pacer(0, start_minute=0.0, clock=lambda: now[0], sleep=sleep)
    fast.wait_for(10_000)
    assert len(slept) == 2
    for bad in (-1, float("inf"), float("nan"), "fast"):
        with pytest.raises(ValueError, match="speed .*allowed values are 0"):
            dv.Pacer(bad, 0.0)


def test_a_tick_publishes_every_heard_device_and_nothing_for_a_silent_one():
    nan = np.nan
    readings = SimpleNamespace(
        day=2, tick_minutes=60.0,
        water=np.array([[1.5, nan], [nan, 0.0], [2.0, 3.0]]), power=np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]),
        smoke_t=np.array([-1.0, 2 * 1440 + 75.5, 2 * 1440 + 10.0]),
        main_lph=np.array([[10.0, 20.0], [nan, 30.0]]), bin_fill=np.array([[0.1, 0.2], [0.3, 0.4]]))
    hh_start, hh_end = np.array([0, 2]), np.array([2, 3])
    tick1 = list(dv.tick_publications(readings, hh_start, hh_end, 1, EPOCH_MS))
    end = EPOCH_MS + (2 * 1440 + 120) * 60_000
    assert tick1 == [
        dv.Publication("bldg-000", "hh-00000-power", {"kWh": 0.2}, end),
        dv.Publication("bldg-000", "hh-00001-water", {"litres": 0.0}, end),  # zero is a reading; NaN is not
        dv.Publication("bldg-000", "hh-00001-power", {"kWh": 0.4}, end),
        dv.Publication("bldg-000", "hh-00001-smoke", {"alarm": True}, EPOCH_MS + int((2 * 1440 + 75.5) * 60_000)),
        dv.Publication("bldg-000", "main", {"flow_lph": 20.0}, end),
        dv.Publication("bldg-000", "bin", {"fill": 0.2}, end),
        dv.Publication("bldg-001", "hh-00002-water", {"litres": 3.0}, end),
        dv.Publication("bldg-001", "hh-00002-power", {"kWh": 0.6}, end),
        dv.Publication("bldg-001", "main", {"flow_lph": 30.0}, end),
        dv.Publication("bldg-001", "bin", {"fill": 0.4}, end),
    ]
    tick0 = list(dv.tick_publications(readings, hh_start, hh_end, 0, EPOCH_MS))
    assert [p.device for p in tick0 if p.gateway == "bldg-001"] == [
        "hh-00002-water", "hh-00002-power", "hh-00002-smoke", "bin"]  # the alarm at minute 10; the main silent


def test_unknown_protocol_is_refused_by_name():
    with pytest.raises(ValueError, match="protocol 'modbus': allowed values are sparkplug, json"):
        dv.publish_devices(None, "mqtt://127.0.0.1:1", protocol="modbus")


# ---------------------------------------------------------------------------------- end to end
def expected_readings(days):
    """(gateway, device, metric, wire ms, value) for every reading the twin's arrays hold, once."""
    out = Counter()
    for r in days:
        H, K = r.water.shape
        building = np.repeat(np.arange(len(r.hh_start)), r.hh_end - r.hh_start)
        for k in range(K):
            stamp = EPOCH_MS + int((r.day * 1440 + (k + 1) * r.tick_minutes) * 60_000)
            for h in range(H):
                gw = f"bldg-{building[h]:03d}"
                for kind, metric, value in (("water", "litres", r.water[h, k]), ("power", "kWh", r.power[h, k])):
                    if not np.isnan(value):
                        out[gw, f"hh-{h:05d}-{kind}", metric, stamp, float(value)] += 1
            for b in range(r.main_lph.shape[0]):
                for device, metric, value in (("main", "flow_lph", r.main_lph[b, k]), ("bin", "fill", r.bin_fill[b, k])):
                    if not np.isnan(value):
                        out[f"bldg-{b:03d}", device, metric, stamp, float(value)] += 1
        for h in np.flatnonzero(r.smoke_t >= 0):
            gw = f"bldg-{building[h]:03d}"
            out[gw, f"hh-{h:05d}-smoke", "alarm", EPOCH_MS + int(round(r.smoke_t[h] * 60_000)), True] += 1
    return out


class FarSide:
    """A subscriber on the broker that keeps every message in arrival order."""

    def __init__(self, url, topic_filter):
        self.messages = queue.Queue()
        self.client = mqtt.connect(url, "", subscriptions=[topic_filter],
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


def run_devices(url, protocol, layout=dv.DEVICE):
    from twin.config import load_scenario

    cfg = load_scenario("default", TINY)
    days = []

    def keep(readings):
        days.append(SimpleNamespace(**vars(readings), hh_start=twin_ranges[0], hh_end=twin_ranges[1]))

    # the households' buildings, as the community assigns them (the twin's own hh_start/hh_end)
    from agents.community import build_community

    c = build_community(cfg.community, int(cfg.seed), cfg.facilities.elevator_share)
    twin_ranges = (np.searchsorted(c.hh_building, np.arange(c.n_buildings)),
                   np.searchsorted(c.hh_building, np.arange(c.n_buildings), side="right"))
    summary = dv.publish_devices(cfg, url, protocol=protocol, speed=0, epoch_ms=EPOCH_MS, on_day=keep,
                                 progress=False, layout=layout)
    return cfg, days, summary


def host_readings(messages):
    """A Sparkplug host's view of ``messages``: the session, every reading as (gateway, device, metric,
    wire ms, value) counted, and the refusals. A gateway's own metric named ``{device}/{metric}``
    counts as that device's reading."""
    from live_bridge.registry import split_gateway_metric

    host = sp.HostSession("c1")
    received, refused = Counter(), []
    for topic, payload in messages:
        readings, reason = host.accept(topic, payload)
        if reason is not None:
            refused.append((topic, reason))
        gateway = sp.parse_topic(topic).edge_node
        for r in readings or []:
            where = (r.device, r.metric) if r.device is not None else split_gateway_metric(r.metric)
            if where is not None:  # (a gateway's own bdSeq or controls are nobody's readings)
                received[gateway, *where, r.timestamp_ms, r.value] += 1
    return host, received, refused


def test_every_reading_arrives_once_as_sparkplug_with_its_ticks_time(mosquitto):
    far = FarSide(mosquitto.url, "spBv1.0/c1/#")
    cfg, days, summary = run_devices(mosquitto.url, dv.SPARKPLUG)
    n_gateways = cfg.community.buildings
    got = far.until(lambda got: sum("/NDEATH/" in t for t, _ in got) == n_gateways)

    host, received, refused = host_readings(got)
    assert refused == []  # births first, every seq in order, every alias and type as born, deaths current
    expected = expected_readings(days)
    water = days[0].water
    assert np.isnan(water).any() and (~np.isnan(water)).any() and (days[0].smoke_t >= 0).any()
    assert received == expected, (f"missing {sum((expected - received).values())}, "
                                  f"extra {sum((received - expected).values())}")
    assert summary.messages == sum(expected.values())
    assert [host.online(f"bldg-{b:03d}") for b in range(n_gateways)] == [False] * n_gateways  # switched off
    # each metered reading's time is the end of a tick of the day it belongs to
    tick = cfg.sim.tick_minutes
    minutes = {dv.community_minutes(EPOCH_MS, t) for (_, d, _, t, _) in received if not d.endswith("smoke")}
    assert minutes == {tick * (k + 1) for k in range(1440 // tick)}


def test_every_reading_arrives_once_as_zigbee2mqtt_json(mosquitto):
    far = FarSide(mosquitto.url, "zigbee2mqtt/#")
    _, days, summary = run_devices(mosquitto.url, dv.JSON)
    got = far.until(lambda got: bool(got) and got[-1] == (dv.BRIDGE_STATE_TOPIC, b'{"state": "offline"}'))
    assert got[0] == (dv.BRIDGE_STATE_TOPIC, b'{"state": "online"}')
    received = Counter()
    for topic, payload in got[1:-1]:
        base, gateway, device = topic.split("/")
        assert base == "zigbee2mqtt"
        body = json.loads(payload)
        stamp = body.pop("last_seen")
        ((metric, value),) = body.items()
        received[gateway, device, metric, stamp, value] += 1
    expected = expected_readings(days)
    assert received == expected, (f"missing {sum((expected - received).values())}, "
                                  f"extra {sum((received - expected).values())}")
    assert summary.messages == sum(expected.values())
    # the registry knows every topic and field, and to which household or building each belongs
    registry = Registry.for_community(np.repeat(np.arange(len(days[0].hh_start)), days[0].hh_end - days[0].hh_start),
                                      len(days[0].hh_start))
    dv.register_json_devices(registry)
    for gateway, device, metric, _, _ in received:
        ((field, dev),) = registry.json[dv.json_topic(gateway, device)]
        assert field == metric and registry.sparkplug[gateway, device] == dev.__class__(
            f"{gateway}/{device}", dev.kind, dev.index, dev.scale)


# ------------------------------------------------------------------------------------ the command
def test_the_command_publishes_and_reports(mosquitto, capsys):
    from twin.cli import main

    seen = []
    far = mqtt.connect(mosquitto.url, "", subscriptions=["spBv1.0/c9/DDATA/#"],
                       on_message=lambda c, u, m: seen.append(m.topic))
    far.wait_ready(30)
    try:
        rc = main(["devices", "--broker", mosquitto.url, "--speed", "0", "--days", "1", "--community", "c9",
                   "--epoch", str(EPOCH_MS), "community.households=8", "community.buildings=2", "progress=false"])
    finally:
        mqtt.close(far)
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert out.out.startswith("devices: published ") and "water" in out.out
    assert "8 households in 2 buildings, 1 day(s), as sparkplug" in out.err
    assert {t.split("/")[3] for t in seen} <= {"bldg-000", "bldg-001"}


def test_the_command_runs_its_own_broker_without_one(capsys):
    from twin.cli import main

    rc = main(["devices", "--speed", "0", "--days", "1", "--protocol", "json", "community.households=4",
               "community.buildings=1", "progress=false"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "(embedded broker)" in out.err and out.out.startswith("devices: published ")


@pytest.mark.parametrize("argv,message", [
    (["--speed", "-1"], "--speed -1: allowed values are 0 (as fast as possible) or more"),
    (["--days", "0"], "--days 0: allowed values are 1 or more"),
    (["community.househols=4"], "configuration error"),
    (["--broker", "http://127.0.0.1:1"], "broker URL 'http://127.0.0.1:1' has scheme 'http'"),
])
def test_bad_input_ends_in_one_line_naming_it(capsys, argv, message):
    from twin.cli import EXIT_USAGE, main

    rc = main(["devices", *argv])
    err = capsys.readouterr().err
    assert rc == EXIT_USAGE and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_an_unknown_protocol_is_refused_by_the_parser(capsys):
    from twin.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["devices", "--protocol", "modbus"])
    assert exit_.value.code == 2 and "invalid choice: 'modbus'" in capsys.readouterr().err


def test_no_thread_outlives_a_run(mosquitto):
    before = threading.active_count()
    run_devices(mosquitto.url, dv.SPARKPLUG)
    assert threading.active_count() == before
