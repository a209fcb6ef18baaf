"""The bridge over a real Mosquitto: devices in, recorded before acknowledged, bad input counted,
a broker restart and a SIGKILLed bridge lose nothing, and a replay reproduces the session.

Time runs at ``SPEED`` community minutes per real minute (a day in 12 s), the same convention
for the devices and the shadow (minute m happens at ``epoch + m / SPEED``).
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from live_bridge import mqtt
from live_bridge.commands import replay, run_shadow
from live_bridge.devices import publish_devices
from live_bridge.recorder import open_recording
from live_bridge.sparkplug import now_ms
from twin import load_scenario

pytestmark = pytest.mark.slow
SPEED = 7200.0
TINY = ["community.households=40", "community.buildings=2", "sim.days=2"]


@pytest.fixture(scope="module", autouse=True)
def compiled():
    """Kernels compiled (or loaded) before any clock starts: a day must not go by while numba works."""
    from twin.engine.twin import Twin

    Twin(load_scenario("default", [*TINY, "progress=false"])).run()  # both days: day 1 runs code day 0 does not


def settings(epoch_ms, **more):
    return {"scenario": "default", "overrides": TINY, "community": "c1", "epoch_ms": epoch_ms, "speed": SPEED,
            "fill": "simulated", "stale_after_minutes": 180.0, "registry": None, **more}


def devices_thread(url, epoch_ms, readings, layout="device"):
    """The scenario's devices publishing as hardware, on the shared clock; their readings kept."""
    cfg = load_scenario("default", [*TINY, "seed=77", "progress=false"])

    def run():
        publish_devices(cfg, url, speed=SPEED, epoch_ms=epoch_ms, community="c1", progress=False,
                        on_day=lambda r: readings.append(r), layout=layout)

    thread = threading.Thread(target=run, daemon=True)
    return thread


def published(readings):
    """Readings the devices sent: every non-NaN meter, main and bin value, and every alarm."""
    return sum(int(np.isfinite(getattr(r, a)).sum()) for r in readings
               for a in ("water", "power", "main_lph", "bin_fill")) + sum(int((r.smoke_t >= 0).sum())
                                                                        for r in readings)


def log_hash(shadow):
    return hashlib.sha256(shadow.twin.log.events.tobytes()).hexdigest()


def junk(url):
    """Bad messages of several kinds, from a client of their own."""
    client = mqtt.connect(url, "junk", clean_start=True)
    client.wait_ready()
    pub = mqtt.Publisher(client)
    for topic, payload in [("spBv1.0/c1/DDATA/bldg-000/hh-00000-water", b"\x01\x02garbage"),
                           ("spBv1.0/c1/DDATA/bldg-009/hh-09999-water", b""),
                           ("community/c1/events/repair", b"{\"seq\": 0}"),
                           ("spBv1.0/c1/DDATA/bldg-000/main", b"x" * 100_000)]:
        pub.publish(topic, payload, qos=1)
    pub.flush(10)
    mqtt.close(client)


def test_a_live_session_is_recorded_before_acknowledged_and_replays_exactly(mosquitto, tmp_path):
    record = tmp_path / "session.db"
    epoch = now_ms() + 1500  # both sides start their clocks at the same instant
    readings = []
    letters = []
    watcher = mqtt.connect(mosquitto.url, "watcher", clean_start=True, subscriptions=["community/c1/deadletter/#"],
                           on_message=lambda _c, _u, m: letters.append((m.topic, json.loads(m.payload))))
    watcher.wait_ready()
    devices = devices_thread(mosquitto.url, epoch, readings)

    def start(_bridge):
        junk(mosquitto.url)
        devices.start()

    shadow = run_shadow(settings(epoch), mosquitto.url, record=str(record), quiet=True, ready=start)
    devices.join(30)
    mqtt.close(watcher)
    sent = published(readings)
    assert shadow.ingest.counts["readings"] == sent, dict(shadow.ingest.counts)  # every reading, once
    assert shadow.windows[0]["devices"]["counts"]["water"]["live"] == 40
    counts = shadow.ingest.counts
    assert counts["malformed"] == 2 and counts["unknown_edge_node"] + counts["unknown_device"] >= 1
    assert counts["oversized"] == 1
    reasons = sorted(topic.rsplit("/", 1)[1] for topic, _ in letters)
    assert "oversized" in reasons and reasons.count("malformed") == 2
    assert all(body["topic"] and body["reason"] for _, body in letters)
    # everything that reached the shadow is in the recording, and a replay gives the same session
    _, db = open_recording(record)
    assert db.execute("SELECT count(*) FROM messages WHERE topic != '$advance'").fetchone()[0] == counts["messages"]
    db.close()
    again, stats = replay(str(record))
    assert log_hash(again) == log_hash(shadow)
    assert [w["twin"] for w in again.windows] == [w["twin"] for w in shadow.windows]
    assert again.ingest.counts == shadow.ingest.counts
    assert stats["times_real_time"] > 1


def test_gateways_reporting_for_their_devices_feed_the_shadow_alike(mosquitto):
    """``--layout gateway``: one NDATA per gateway and tick; every reading in once, the same days closed."""
    epoch = now_ms() + 1500
    readings = []
    devices = devices_thread(mosquitto.url, epoch, readings, layout="gateway")
    shadow = run_shadow(settings(epoch), mosquitto.url, quiet=True, ready=lambda _bridge: devices.start())
    devices.join(30)
    counts = shadow.ingest.counts
    assert counts["readings"] == published(readings), dict(counts)
    assert counts["messages"] < counts["readings"] / 10  # two buildings' worth of readings a message
    assert counts["unknown_device"] == counts["malformed"] == counts["too_old"] == 0
    assert [w["devices"]["counts"]["water"]["live"] for w in shadow.windows] == [40, 40]
    assert shadow.twin.day == 2


def test_a_broker_restart_mid_stream_loses_nothing_it_acknowledged(mosquitto, tmp_path):
    """Mosquitto stopped and started mid-day: every reading the broker took is applied or refused with a reason.

    What the broker took is what an independent subscriber (plain paho, its own persistent
    session) receives. After the restart a gateway's paho resends what it had not got
    acknowledged, and may do so after its new NBIRTH but before a device's DBIRTH: Sparkplug
    has the host refuse such data (counted, dead-lettered) and ask for a rebirth. Nothing
    may vanish and nothing be applied twice: what the broker took is applied once or refused,
    so applied <= taken <= applied + refused (not as duplicates). A resent copy of a reading
    applied before the restart can be refused too, as data of a node not yet reborn (whose
    duplicates the host cannot tell): so the right-hand side is not an equality.
    """
    epoch = now_ms() + 1500
    readings = []
    devices = devices_thread(mosquitto.url, epoch, readings)
    seen, refused = set(), []
    witness = mqtt.connect(mosquitto.url, "witness", subscriptions=["spBv1.0/c1/DDATA/#", "community/c1/deadletter/#"],
                           on_message=lambda _c, _u, m: (seen.add((m.topic, bytes(m.payload))) if "DDATA" in m.topic
                                                         else refused.append(json.loads(m.payload))))
    witness.wait_ready()

    def restart_later():
        time.sleep(8)  # mid-way through the first day
        mosquitto.stop()
        time.sleep(1.5)
        mosquitto.start()

    restarter = threading.Thread(target=restart_later, daemon=True)

    def start(_bridge):
        devices.start()
        restarter.start()

    shadow = run_shadow(settings(epoch, stale_after_minutes=720.0), mosquitto.url, quiet=True, ready=start,
                        until_day=2)
    devices.join(30)
    restarter.join(10)
    time.sleep(1.0)
    mqtt.close(witness)
    counts = dict(shadow.ingest.counts)
    refused_data = [r for r in refused if "/DDATA/" in r["topic"] and r["reason"] != "duplicate"]
    # one DDATA carries one reading
    assert shadow.ingest.counts["readings"] <= len(seen) <= shadow.ingest.counts["readings"] + len(refused_data), \
        (len(seen), len(refused_data), json.dumps(counts))
    assert len(seen) > 0.5 * published(readings), counts  # the stream went on after the restart
    assert counts.get("too_old", 0) == 0 and counts.get("malformed", 0) == 0, counts


def test_a_sigkilled_bridge_resumes_from_its_recording_and_its_session(mosquitto, tmp_path):
    """The shadow runs as `twin shadow` in its own process; SIGKILL it mid-stream and start it again."""
    record = tmp_path / "session.db"
    epoch = now_ms() + 8000  # the shadow process starts, loads its kernels and subscribes first
    readings = []
    devices = devices_thread(mosquitto.url, epoch, readings)
    cmd = [sys.executable, "-m", "twin.cli", "shadow", "--broker", mosquitto.url, "--epoch", str(epoch),
           "--speed", str(SPEED), "--record", str(record), "--out", str(tmp_path / "out"), *TINY]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in first.stdout:  # subscribed: nothing the gateways publish from now on can be missed
        if line.startswith("shadow: listening"):
            break
    devices.start()
    time.sleep(max(1.0, (epoch - now_ms()) / 1000.0 + 6.0))  # half-way through the first day
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(1)
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    devices.join(30)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "resumed from" in second.stdout
    shadow, _ = replay(str(record))
    # at least once on the wire, exactly once in the shadow: redeliveries are told apart
    assert shadow.ingest.counts["readings"] == published(readings), dict(shadow.ingest.counts)
    assert (tmp_path / "out" / "shadow.html").exists()


def test_eclipse_tahus_edge_node_feeds_the_shadow_through_the_bridge(mosquitto, require_tool, tmp_path):
    """An edge node we did not write, named as the community's gateway and meter, reaches the detectors' arrays.

    Its data is stamped from 2023-11-14 22:13 UTC a minute apart; the bridge's clock is held
    there, so the readings are neither too old nor from the future.
    """
    from live_bridge.bridge import Bridge, Clock
    from live_bridge.commands import build_shadow
    from test_sparkplug import EDGE_NODE_JS, _tahu_missing

    require_tool("sparkplug-client (npm)", _tahu_missing())
    t0 = 1_700_000_000_000
    count = 30
    shadow = build_shadow(settings(t0))
    bridge = Bridge(mosquitto.url, shadow, clock=Clock(t0, 1.0, wall=lambda: (t0 + 60_000 * count) / 1000.0))
    try:
        bridge.wait_ready()
        node = subprocess.Popen(["node", str(EDGE_NODE_JS / "edge_node.js"), mosquitto.url, "c1", "bldg-000",
                                 "hh-00000-water", str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert node.stdout.readline().strip() == f"published {count}"
        deadline = time.monotonic() + 20
        while shadow.ingest.counts["readings"] < count and time.monotonic() < deadline:
            time.sleep(0.05)
        node.stdin.write("stop\n")
        node.stdin.flush()
        node.wait(30)
    finally:
        bridge.close()
    # litres = 1.5 * i at minute i: minute 0 is tick -1 (clamped to 0), minutes 1..29 fall in tick 0,
    # the last of them, 43.5 litres at minute 29, is the tick's reading
    assert shadow.ingest.counts["readings"] == count, dict(shadow.ingest.counts)
    assert shadow.ingest.day(0).water[0, 0] == 1.5 * (count - 1)
    assert shadow.ingest.counts["other_metrics"] == count  # "level" is not what a water meter reports
    assert not any(shadow.ingest.counts[r] for r in ("malformed", "unknown_device", "sequence_gap"))


def test_plain_json_devices_come_in_through_the_registry(mosquitto, tmp_path):
    """zigbee2mqtt-style devices: every reading arrives through the registry, once."""
    from live_bridge.bridge import Bridge, Clock
    from live_bridge.devices import register_json_devices
    from live_bridge.registry import Registry
    from live_bridge.shadow import Shadow
    from twin.engine.twin import Twin

    cfg = load_scenario("default", [*TINY, "progress=false"])
    c = Twin(cfg).community
    registry = Registry.for_community(c.hh_building, c.n_buildings)
    register_json_devices(registry)  # the same devices, as zigbee2mqtt would name them
    epoch = now_ms() + 1500
    shadow = Shadow(cfg, epoch_ms=epoch, registry=registry)
    bridge = Bridge(mosquitto.url, shadow, clock=Clock(epoch, SPEED))
    readings = []
    try:
        bridge.wait_ready()
        publish_devices(load_scenario("default", [*TINY, "sim.days=1", "seed=77", "progress=false"]), mosquitto.url,
                        protocol="json", speed=SPEED, epoch_ms=epoch, community="c1", progress=False,
                        on_day=readings.append)
        deadline = time.monotonic() + 20
        while shadow.ingest.counts["readings"] < published(readings) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        bridge.close()
    assert shadow.ingest.counts["readings"] == published(readings), dict(shadow.ingest.counts)
    assert not any(shadow.ingest.counts[r] for r in ("malformed", "unknown_device", "duplicate", "too_old"))
    np.testing.assert_array_equal(shadow.ingest.day(0).main_lph, readings[0].main_lph)


def test_production_events_from_the_servers_http_feed(mosquitto, tmp_path):
    """A server with no MQTT: the shadow follows its event feed over HTTP, as it would the broker's."""
    from live_bridge.bridge import Bridge, Clock
    from live_bridge.commands import build_shadow
    from live_bridge.feed import FeedError, ServerFeed, wait_for
    from live_helpers import Server
    from twin.services.events import FIELDS

    with Server(tmp_path / "production.db", clock=lambda: 30.0) as server:
        coordinator = server.account("coordinator", 900)
        resident = server.account("resident", 7)
        with server.client(resident) as c:
            for building in (1, 2, 3):
                assert c.post("/repair/tickets", json={"category": "plumbing", "description": "leak",
                                                       "building": building, "unit": 101}).status_code == 201
        with pytest.raises(FeedError, match="refused the feed"):
            ServerFeed(server.root, resident, lambda *_: None).check()  # a resident may not read the log
        shadow = build_shadow(settings(now_ms()))
        bridge = Bridge(mosquitto.url, shadow, clock=Clock(now_ms(), 1.0))
        feed = ServerFeed(server.root, coordinator, bridge.inject)
        try:
            bridge.wait_ready()
            feed.check()
            feed.start()
            n = len(server.services.log)
            assert wait_for(feed, n)
            deadline = time.monotonic() + 10
            while shadow.ingest.counts["events"] < n and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            feed.close()
            bridge.close()
        logged = server.services.log.events
        got = shadow.ingest.production_events()
        assert [tuple(r[f] for f in FIELDS) for r in got] == [tuple(r[f] for f in FIELDS) for r in logged]
