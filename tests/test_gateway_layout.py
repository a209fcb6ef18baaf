"""Sparkplug gateways that carry their devices' readings in one NDATA a tick (``--layout gateway``):
the same readings as one DDATA per device, into the same arrays, through a real Mosquitto too."""
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from live_bridge import devices as dv
from live_bridge import sparkplug as sp
from live_bridge.registry import gateway_metric_name, split_gateway_metric
from live_bridge.shadow import Shadow
from twin import load_scenario
from twin.engine.twin import Twin

EPOCH_MS = 1_790_000_000_000
SMALL = ["community.households=120", "community.buildings=4", "progress=false", "sim.days=1",
         "sensors.dropout_per_device_day=0.3", "sensors.smoke_per_household_year=150"]


def example_readings():
    nan = np.nan
    return SimpleNamespace(
        day=2, tick_minutes=60.0,
        water=np.array([[1.5, nan], [nan, 0.0], [2.0, 3.0]]), power=np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]),
        smoke_t=np.array([-1.0, 2 * 1440 + 75.5, 2 * 1440 + 10.0]),
        main_lph=np.array([[10.0, 20.0], [nan, 30.0]]), bin_fill=np.array([[0.1, 0.2], [0.3, 0.4]]))


def as_readings(publications):
    """(gateway, device, metric, wire ms, value) of every reading the publications carry."""
    out = Counter()
    for p in publications:
        for name, value in p.values.items():
            device, metric = (p.device, name) if p.device is not None else split_gateway_metric(name)
            out[p.gateway, device, metric, p.timestamp_ms, value] += 1
    return out


def test_gateway_metric_names_round_trip_and_others_are_not_devices():
    assert gateway_metric_name("hh-00007-water", "litres") == "hh-00007-water/litres"
    assert split_gateway_metric("hh-00007-water/litres") == ("hh-00007-water", "litres")
    assert split_gateway_metric("bdSeq") is None
    assert split_gateway_metric("/litres") is None and split_gateway_metric("main/") is None


def test_a_gateway_tick_is_one_message_with_every_reading_and_alarms_go_at_their_minute():
    r = example_readings()
    hh_start, hh_end = np.array([0, 2]), np.array([2, 3])
    per_device = list(dv.tick_publications(r, hh_start, hh_end, 1, EPOCH_MS))
    per_gateway = list(dv.gateway_publications(r, hh_start, hh_end, 1, EPOCH_MS))
    assert as_readings(per_gateway) == as_readings(per_device)
    end = EPOCH_MS + (2 * 1440 + 120) * 60_000
    alarm = EPOCH_MS + int((2 * 1440 + 75.5) * 60_000)
    assert [(p.gateway, p.device, len(p.values), p.timestamp_ms) for p in per_gateway] == [
        ("bldg-000", None, 1, alarm),  # the smoke alarm, alone at its minute
        ("bldg-000", None, 5, end),    # the rest of the building's tick in one message
        ("bldg-001", None, 4, end)]
    assert per_gateway[1].kinds() == ["power", "water", "power", "main", "bin"]


def test_an_unknown_layout_is_refused_by_name():
    with pytest.raises(ValueError, match="layout 'bus': allowed values are device, gateway"):
        dv.edge_node("c1", 0, np.array([0]), np.array([1]), "bus")


def messages_of(twin, layout):
    """The births and every message of the twin's day, as gateways of ``layout`` send them."""
    nodes, births, data = {}, [], []
    for b in range(twin.community.n_buildings):
        node = dv.edge_node("c1", b, twin.hh_start, twin.hh_end, layout, clock=lambda: EPOCH_MS)
        node.connection_will()
        births += [(m.topic, m.payload) for m in node.births()]
        nodes[node.edge_node] = node
    publications = dv.publications_of(layout)
    for k in range(twin.readings.water.shape[1]):
        end = twin.readings.day * 1440.0 + (k + 1) * twin.readings.tick_minutes
        for p in publications(twin.readings, twin.hh_start, twin.hh_end, k, EPOCH_MS):
            m = dv.publication_message(nodes[p.gateway], p)
            data.append((m.topic, m.payload, end))
    return births, data


@pytest.fixture(scope="module")
def production():
    prod = Twin(load_scenario("default", [*SMALL, "seed=11"]))
    prod.step()
    return prod


def shadow_fed(layout, prod):
    shadow = Shadow(load_scenario("default", [*SMALL, "seed=99"]), epoch_ms=EPOCH_MS)
    births, data = messages_of(prod, layout)
    for topic, payload in births:
        shadow.handle(topic, payload, 0.0)
    for topic, payload, arrival in data:
        shadow.handle(topic, payload, arrival)
    return shadow, len(data)


def test_both_layouts_fill_the_same_arrays_with_far_fewer_messages_from_gateways(production):
    by_device, n_device = shadow_fed(dv.DEVICE, production)
    by_gateway, n_gateway = shadow_fed(dv.GATEWAY, production)
    a, b = by_device.ingest.day(0), by_gateway.ingest.day(0)
    live = production.readings
    assert (~np.isnan(live.water)).any() and np.isnan(live.water).any() and (live.smoke_t >= 0).any()
    for name in ("water", "power", "main_lph", "bin_fill", "smoke_t"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.water, live.water)  # and they are production's (NaN where silent)
    counts = by_gateway.ingest.counts
    assert counts["readings"] == by_device.ingest.counts["readings"] > 5000
    assert counts["malformed"] == counts["unknown_device"] == 0
    # one message per building and tick (and one per alarm) instead of one per reading
    alarms = int((live.smoke_t >= 0).sum())
    assert n_gateway == production.community.n_buildings * live.water.shape[1] + alarms < n_device / 20


def test_a_gateways_own_metrics_are_not_readings_of_any_device(production):
    births, data = messages_of(production, dv.GATEWAY)
    shadow = Shadow(load_scenario("default", [*SMALL, "seed=99"]), epoch_ms=EPOCH_MS)
    # the gateway also declares its own health and a metric in a folder that names no device it has
    node = dv.edge_node("c1", 0, production.hh_start, production.hh_end, dv.GATEWAY, clock=lambda: EPOCH_MS)
    extra = [sp.MetricSpec("Properties/firmware", sp.DataType.String),
             sp.MetricSpec(gateway_metric_name("hh-99999-water", "litres"), sp.DataType.Double)]
    node = sp.EdgeNode("c1", node.edge_node, {}, node_metrics=[*node.node_metrics, *extra], clock=lambda: EPOCH_MS)
    node.connection_will()
    for m in node.births():
        shadow.handle(m.topic, m.payload, 0.0)
    msg = node.node_data({"Properties/firmware": "1.2", gateway_metric_name("hh-99999-water", "litres"): 5.0,
                          gateway_metric_name("main", "flow_lph"): 123.0}, EPOCH_MS + 60 * 60_000)
    shadow.handle(msg.topic, msg.payload, 60.0)
    counts = shadow.ingest.counts
    assert counts["gateway_metrics"] == 2 and counts["readings"] == 1
    assert shadow.ingest.day(0).main_lph[0, 0] == 123.0


def test_every_reading_arrives_once_from_gateways_through_mosquitto(mosquitto):
    from test_devices import TINY, FarSide, expected_readings, host_readings, run_devices

    far = FarSide(mosquitto.url, "spBv1.0/c1/#")
    cfg, days, summary = run_devices(mosquitto.url, dv.SPARKPLUG, layout=dv.GATEWAY)
    n_gateways = cfg.community.buildings
    got = far.until(lambda got: sum("/NDEATH/" in t for t, _ in got) == n_gateways)
    _, received, refused = host_readings(got)
    assert refused == []
    assert not any("/DDATA/" in t or "/DBIRTH/" in t for t, _ in got)  # the gateways speak for their devices
    expected = expected_readings(days)
    assert "sensors.dropout_per_device_day=0.3" in TINY and (days[0].smoke_t >= 0).any()
    assert received == expected, (f"missing {sum((expected - received).values())}, "
                                  f"extra {sum((received - expected).values())}")
    assert summary.readings == sum(expected.values())
    # one message per gateway and tick, one per alarm (every gateway hears its bin each tick)
    ticks = 1440 // cfg.sim.tick_minutes
    assert summary.messages == n_gateways * ticks + int((days[0].smoke_t >= 0).sum())
    assert summary.by_kind["water"] == sum(n for key, n in expected.items() if key[1].endswith("-water"))
