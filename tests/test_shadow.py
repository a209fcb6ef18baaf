"""Shadow mode without a network: live readings replace simulated ones, refusals are counted,
and the comparator flags a real difference but not chance.

Messages are the exact bytes devices put on the wire (Sparkplug B from
``EdgeNode``, zigbee2mqtt JSON, production's event JSON); the bridge's network
part is tested in test_bridge.py.
"""
import json
import math
import re

import numpy as np
import pytest

from agents.sensors import DayReadings
from live_bridge import compare, ingest
from live_bridge.devices import gateway_devices, tick_publications
from live_bridge.registry import Registry, RegistryError, gateway_name
from live_bridge.shadow import Shadow
from live_bridge.sparkplug import EdgeNode
from twin import load_scenario
from twin.engine.twin import Twin
from twin.services.events import EVENT_DTYPE, EventKind, as_json

EPOCH_MS = 1_790_000_000_000
SMALL = ["community.households=120", "community.buildings=4", "progress=false"]


def cfg_of(days=2, seed=1, extra=()):
    return load_scenario("default", [f"sim.days={days}", f"seed={seed}", *SMALL, *extra])


def gateways(twin, community="c1"):
    """One Sparkplug edge node per building of ``twin``, born, with the births' messages."""
    nodes, births = {}, []
    for b in range(twin.community.n_buildings):
        node = EdgeNode(community, gateway_name(b), gateway_devices(b, twin.hh_start, twin.hh_end),
                        clock=lambda: EPOCH_MS)
        node.connection_will()
        births += node.births()
        nodes[node.edge_node] = node
    return nodes, births


def day_messages(nodes, twin):
    """Every device report of the twin's last day, in tick order, as (topic, payload, minute of the tick's end)."""
    out = []
    readings = twin.readings
    for k in range(readings.water.shape[1]):
        end = readings.day * 1440.0 + (k + 1) * readings.tick_minutes
        for p in tick_publications(readings, twin.hh_start, twin.hh_end, k, EPOCH_MS):
            m = nodes[p.gateway].device_data(p.device, p.values, p.timestamp_ms)
            out.append((m.topic, m.payload, end))
    return out


@pytest.fixture(scope="module")
def production():
    """A production stand-in: a twin whose every device report of two days is on the wire."""
    prod = Twin(cfg_of(days=2, seed=11))
    nodes, births = gateways(prod)
    days = []
    for _ in range(2):
        prod.step()
        days.append((prod.readings, day_messages(nodes, prod)))
    return prod, births, days


def feed(shadow, births, messages):
    for topic, payload in births:
        shadow.handle(topic, payload, 0.0)
    for topic, payload, arrival in messages:
        shadow.handle(topic, payload, arrival)


def test_live_readings_replace_the_twins_own_and_the_same_detectors_see_them(production):
    prod, births, days = production
    shadow = Shadow(cfg_of(days=2, seed=99), epoch_ms=EPOCH_MS)
    feed(shadow, [(m.topic, m.payload) for m in births], days[0][1])
    shadow.advance(1440.0 + 60.0)
    assert shadow.twin.day == 1
    live, mine = days[0][0], shadow.twin.readings
    heard = np.isfinite(shadow.ingest.heard["water"])
    assert heard.sum() >= 100  # nearly every meter spoke
    np.testing.assert_array_equal(mine.water[heard], live.water[heard])  # NaN where the meter was silent
    np.testing.assert_array_equal(mine.main_lph, live.main_lph)
    np.testing.assert_array_equal(mine.bin_fill, live.bin_fill)
    # the twin's own (seed 99) readings differ: the replacement is what made them equal
    own = Twin(cfg_of(days=1, seed=99))
    own.step()
    assert not np.array_equal(own.readings.main_lph, live.main_lph)
    # one logic: on the same readings the shadow's detectors alert exactly where production's did
    def alerts(log):
        e = log.events[log.events["kind"] == EventKind.AlertRaised]
        e = e[e["t"] < 1440.0]
        return sorted(zip(e["actor"].tolist(), e["t"].tolist(), e["code"].tolist()))
    prod_alerts = [a for a in alerts(prod.log) if heard[a[0]]]
    assert alerts(shadow.twin.log) == prod_alerts
    assert shadow.windows[0]["devices"]["counts"]["water"]["live"] == heard.sum()


def test_a_device_that_falls_silent_is_stale_and_filled_by_policy(production):
    _, births, days = production
    silent = {"bldg-000/main"}
    second_day = [(t, p, a) for t, p, a in days[1][1] if not any(s in t for s in silent)]
    for fill, expect_nan in (("simulated", False), ("none", True)):
        shadow = Shadow(cfg_of(days=2, seed=5), epoch_ms=EPOCH_MS, fill=fill, stale_after_minutes=60.0)
        feed(shadow, [(m.topic, m.payload) for m in births], days[0][1] + second_day)
        shadow.advance(2 * 1440.0 + 60.0)
        counts = shadow.windows[1]["devices"]["counts"]["main"]
        assert counts["stale"] == 1 and counts["live"] == 3
        # last heard at 00:00 (day 0's last reading): stale from 01:00, so the ticks from 01:00 on are filled
        assert counts["filled_ticks"] == (0 if expect_nan else 23)
        row = shadow.twin.readings.main_lph[0]
        assert np.isnan(row[1:]).all() == expect_nan and np.isnan(row[0])
        np.testing.assert_array_equal(shadow.twin.readings.main_lph[1:], days[1][0].main_lph[1:])


def test_every_bad_message_is_counted_dead_lettered_and_skipped(production):
    _, births, days = production
    letters = []
    shadow = Shadow(cfg_of(days=2, seed=5), epoch_ms=EPOCH_MS,
                    dead_letter=lambda reason, topic, payload, detail: letters.append((reason, topic, detail)))
    feed(shadow, [(m.topic, m.payload) for m in births], days[0][1][:500])
    good_topic, good_payload, at = days[0][1][10]
    before = shadow.ingest.counts["readings"]
    bad = [
        ("spBv1.0/c1/DDATA/bldg-000/hh-00000-water", b"\xff\x00not protobuf", ingest.MALFORMED),
        (good_topic, good_payload, "duplicate"),                                  # a QoS 1 redelivery
        ("zigbee2mqtt/nobody", b'{"water": 1}', ingest.UNKNOWN_DEVICE),
        ("spBv1.0/c1/DDATA/bldg-000/hh-00000-water", b"x" * 70_000, ingest.OVERSIZED),
        ("community/c1/events/repair", b'{"seq": "one"}', ingest.MALFORMED),
        ("community/c1/events/repair", b"{not json", ingest.MALFORMED),
    ]
    for topic, payload, _ in bad:
        shadow.handle(topic, payload, at)
    reasons = [r for r, _, _ in letters]
    assert reasons == [r for _, _, r in bad]
    assert shadow.ingest.counts["readings"] == before
    # readings judged by time: too old, ahead of the bridge's clock, out of order
    reg = Registry(households=2, buildings=1).load_json_devices(_registry_file())
    ing = ingest.Ingest(reg, epoch_ms=EPOCH_MS, tick_minutes=60, horizon_minutes=120, max_skew_minutes=5)
    def send(minute, arrival, value=1.0):
        body = json.dumps({"water": value, "last_seen": EPOCH_MS + int(minute * 60_000)}).encode()
        ing.handle("zigbee2mqtt/meter-1", body, arrival)
    send(600, 600)
    send(300, 600)     # five hours old, horizon two
    send(620, 600)     # twenty minutes ahead
    send(540, 601)     # before the last one applied
    send(600, 601)     # the same again
    send(660, 661, value=float("nan"))  # Python's json reads NaN; a reading must be a finite number
    assert ing.counts[ingest.TOO_OLD] == 1 and ing.counts[ingest.FUTURE] == 1
    assert ing.counts[ingest.OUT_OF_ORDER] == 1 and ing.counts[ingest.DUPLICATE] == 1
    assert ing.counts[ingest.MALFORMED] == 1
    assert ing.counts["readings"] == 1
    assert ing.day(0).water[1, 9] == 1000.0  # m3 -> litres; stamped at 10:00, the end of tick 9


def _registry_file():
    import tempfile

    path = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"devices": [{"topic": "zigbee2mqtt/meter-1", "field": "water", "kind": "water", "household": 1,
                            "unit": "m3"}]}, path)
    path.close()
    return path.name


@pytest.mark.parametrize("entry, words", [
    ({"topic": "t", "field": "f", "kind": "gas", "household": 0}, "kind 'gas' is not one of water"),
    ({"topic": "t", "field": "f", "kind": "water", "household": 7}, "household 7 is not in 0..1"),
    ({"topic": "t", "field": "f", "kind": "water", "household": 0, "unit": "gallons"}, "unit 'gallons'"),
    ({"topic": "t", "field": "f", "kind": "water", "houshold": 0}, "unknown key 'houshold'"),
    ({"topic": "t", "field": "f", "kind": "main", "household": 0}, "a main device needs 'building'"),
])
def test_a_registry_typo_names_the_entry_and_the_allowed_values(tmp_path, entry, words):
    path = tmp_path / "devices.json"
    path.write_text(json.dumps({"devices": [entry]}))
    with pytest.raises(RegistryError, match=words) as err:
        Registry(households=2, buildings=1).load_json_devices(path)
    assert "devices[0]" in str(err.value)


def test_production_events_are_kept_by_seq_whatever_order_they_come_in():
    reg = Registry(households=1, buildings=1)
    ing = ingest.Ingest(reg, epoch_ms=EPOCH_MS, tick_minutes=60)
    events = Twin(cfg_of(days=3)).run(progress=False).event_log[:50]
    payloads = [json.dumps(as_json(i + 1, row)).encode() for i, row in enumerate(events)]
    order = list(range(50))
    order[10], order[11] = order[11], order[10]
    for i in order + [5, 6]:  # two redeliveries
        ing.handle("community/c1/events/repair", payloads[i], 0.0)
    np.testing.assert_array_equal(ing.production_events(), events)
    assert ing.counts[ingest.DUPLICATE] == 2 and ing.counts[ingest.REORDERED] == 1


# ---------------------------------------------------------------- the comparator
def _windows(seed, slower=1.0, days=60):
    minutes = {"plumbing": 90.0, "electrical": 75.0, "elevator": 180.0, "public_area": 60.0, "other": 60.0}
    extra = [f"staff.service_minutes.{k}={v * slower}" for k, v in minutes.items()]
    cfg = load_scenario("default", [f"sim.days={days}", f"seed={seed}", "progress=false",
                                    *extra])
    twin = Twin(cfg)
    twin.run(progress=False)
    return [compare.window_metrics(twin.log.events, d * 1440.0, (d + 1) * 1440.0) for d in range(days)]


@pytest.mark.slow
def test_the_comparator_flags_slower_technicians_and_not_chance():
    """Twin and production as two independent runs; production's technicians 30% slower or not.

    With no difference, any flag is a false alarm: its rate is at most alpha = 5% by
    construction (Bonferroni over the metrics); eight null pairs with more than two flags would
    happen with probability < 1% if that held. With technicians 30% slower, repair time is flagged
    with an interval above zero in every pair (the default community over 60 days: about 700
    repairs a side, enough to see a 25-minute difference in work times of about 100 minutes'
    spread).
    """
    null_flags = 0
    for pair in range(8):
        d = {x.metric: x for x in compare.differences(_windows(100 + pair), _windows(200 + pair))}
        null_flags += any(x.flagged for x in d.values())
    assert null_flags <= 2
    for pair in range(3):
        d = {x.metric: x for x in compare.differences(_windows(300 + pair), _windows(400 + pair, slower=1.3))}
        assert d["repair_minutes"].flagged and d["repair_minutes"].low > 0, d["repair_minutes"]
        assert not d["tickets_raised"].flagged


def test_window_metrics_count_what_the_log_says():
    rows = np.zeros(6, dtype=EVENT_DTYPE)
    rows["kind"] = [EventKind.TicketSubmitted, EventKind.TicketSubmitted, EventKind.TicketStarted,
                    EventKind.TicketCompleted, EventKind.AlertRaised, EventKind.AlertAttended]
    rows["subject"] = [1, 2, 1, 1, 0, 0]
    rows["t"] = [10.0, 20.0, 25.0, 70.0, 30.0, 42.0]
    rows["amount"] = [0, 0, 0, 0, 0, 12]
    m = compare.window_metrics(rows, 0.0, 1440.0)
    assert m == {"tickets_raised": 2.0, "tickets_completed": 1.0, "response_minutes": 15.0, "repair_minutes": 45.0,
                 "backlog": 1.0, "alerts_raised": 1.0, "alert_response_minutes": 12.0}
    assert math.isnan(compare.window_metrics(rows, 2000.0, 3000.0)["repair_minutes"])
    assert DayReadings.empty(0, 60, 2, 1).water.shape == (2, 24)


def test_the_dashboard_shows_the_days_the_devices_and_the_refusals(production, tmp_path):
    from live_bridge.dashboard import write_dashboard

    _, births, days = production
    shadow = Shadow(cfg_of(days=2, seed=5), epoch_ms=EPOCH_MS)
    feed(shadow, [(m.topic, m.payload) for m in births], days[0][1] + [("zigbee2mqtt/x", b"{}", 100.0)])
    shadow.advance(1500.0)
    page = write_dashboard(tmp_path / "shadow.html", shadow, refresh_s=5, plotly="cdn").read_text()
    assert "http-equiv='refresh'" in page and "mean repair time" in page
    for figure in ("metrics", "devices", "ingest"):
        assert re.search(rf"id=[\"']{figure}[\"']", page), figure
    assert "<td>water</td>" in page  # the drift table
    final = write_dashboard(tmp_path / "final.html", shadow, refresh_s=None, plotly="cdn").read_text()
    assert "refresh" not in final
