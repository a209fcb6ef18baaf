"""The bridge's ingest: readings per second from the wire into the detectors' arrays.

The default community's readings (2,000 households, 40 buildings) are encoded
once as the gateways would send them (Sparkplug B, QoS 1), in both layouts
``twin devices`` offers:

- **gateway** (the headline): each building's gateway sends one NDATA a tick
  carrying its ~100 devices' readings (``{device}/{metric}``), a whole day
  (about 1,000 messages, 100,000 readings);
- **device**: one DDATA per device per tick, one reading each, a quarter of a
  day (about 25,000 messages);

then, side by side in one run:

- **in process**: the bytes straight into :class:`live_bridge.ingest.Ingest`
  (decode, Sparkplug session, registry, checks, arrays) — the ingest's own
  ceiling on one core;
- **through Mosquitto** (both layouts) and **through the embedded broker**
  (gateway layout): publisher processes send the messages as fast as QoS 1
  allows while the :class:`live_bridge.bridge.Bridge` takes them (acks,
  ingest, live detectors); readings/s from the first message to the last, the
  bridge's CPU time per reading (its process holds nothing else: the
  publishers are processes of their own), and the lag from the device's
  timestamp to ingest (p50/p99) with the detectors' time per batch added;
- **replay**: the gateway session from its recording (a day of the
  community's readings) as a multiple of real time (the day it spans), and
  against the time the bench's as-fast-as-possible live session took (about
  1: both are bound by the same ingest).

Keys: ``ingest_readings_per_s`` and ``ingest_messages_per_s`` (Mosquitto,
gateway layout), ``ingest_readings_per_s_device_layout``,
``ingest_readings_per_bridge_cpu_s`` (readings per CPU-second of the bridge:
what one core holds), ``ingest_readings_per_s_embedded``,
``ingest_readings_per_s_in_process``, ``ingest_latency_p99_ms``,
``replay_times_real_time``.
"""
from __future__ import annotations

import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from twin.bench.suite import meets

GOALS = {"ingest_readings_per_s": (">=", 20_000.0), "ingest_latency_p99_ms": ("<", 1000.0)}
DEVICE_TICKS = 6  # a quarter of a day as one DDATA per device: about 25,000 messages
PUBLISHERS = 2


def _messages(layout: str, days: int, ticks: int, epoch_ms: int):
    """(topic, payload) of the births and of ``ticks`` ticks of each of ``days`` days of the default
    community's gateways of ``layout``."""
    from live_bridge.devices import edge_node, publication_message, publications_of
    from twin.config import load_scenario
    from twin.engine.twin import Twin

    twin = Twin(load_scenario("default", [f"sim.days={days}", "progress=false", "sensors.faults=false"]))
    nodes, births = {}, []
    for b in range(twin.community.n_buildings):
        node = edge_node("c1", b, twin.hh_start, twin.hh_end, layout, clock=lambda: epoch_ms)
        node.connection_will()
        births += [(m.topic, m.payload) for m in node.births()]
        nodes[node.edge_node] = node
    publications = publications_of(layout)
    data, readings = [], 0
    for _ in range(days):
        twin.step()
        for k in range(ticks):
            for p in publications(twin.readings, twin.hh_start, twin.hh_end, k, epoch_ms):
                m = publication_message(nodes[p.gateway], p)
                data.append((m.topic, m.payload))
                readings += len(p.values)
    return births, data, readings


def _shadow(epoch_ms):
    from live_bridge.shadow import Shadow
    from twin.config import load_scenario

    return Shadow(load_scenario("default", ["sim.days=1", "progress=false"]), epoch_ms=epoch_ms)


def _arrival(data, epoch_ms) -> float:
    """A community minute just before the day's last tick ends: nothing is too old or too far ahead,
    and no day closes while the messages come in (the bench measures the ingest, not a day's end)."""
    from live_bridge.sparkplug import decode

    return (max(decode(payload).timestamp_ms for _, payload in data[-50:]) - epoch_ms) / 60_000.0 - 1.0


def in_process(births, data, epoch_ms) -> dict:
    shadow = _shadow(epoch_ms)
    for topic, payload in births:
        shadow.handle(topic, payload, 0.0)
    arrival = _arrival(data, epoch_ms)
    t0 = time.perf_counter()
    for topic, payload in data:
        shadow.handle(topic, payload, arrival)
    seconds = time.perf_counter() - t0
    n = shadow.ingest.counts["readings"]
    return {"messages": len(data), "readings": n, "seconds": seconds, "readings_per_s": n / seconds}


PUBLISHER = """
import pickle, sys
from live_bridge import mqtt
url, path, part, parts = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(path, "rb") as f:
    births, data = pickle.load(f)
mine = set(sorted({t.split("/")[3] for t, _ in births})[part::parts])  # whole gateways, so each keeps its order
client = mqtt.connect(url, f"bench-gw-{part}", clean_start=True)
client.wait_ready()
pub = mqtt.Publisher(client, bound=2000)
for topic, payload in births + data:
    if topic.split("/")[3] in mine:
        pub.publish(topic, payload, qos=1)
pub.flush(120)
mqtt.close(client)
"""


def through_broker(url, births, data, readings, epoch_ms, record: Path | None = None) -> dict:
    """Publisher processes against a live Bridge; readings/s, lag and the detectors' time."""
    from live_bridge.bridge import Bridge, Clock
    from live_bridge.recorder import Recorder

    shadow = _shadow(epoch_ms)
    now = _arrival(data, epoch_ms)
    clock = Clock(epoch_ms, 1.0, wall=lambda: (epoch_ms + now * 60_000) / 1000.0)
    detect_s = []
    original = shadow.detect_now

    def timed_detect(now):
        t = time.perf_counter()
        out = original(now)
        detect_s.append(time.perf_counter() - t)
        return out

    shadow.detect_now = timed_detect
    recorder = Recorder(record, meta={"bench": True}) if record else None
    bridge = Bridge(url, shadow, clock=clock, recorder=recorder, client_id=f"bench-bridge-{os.getpid()}")
    bridge.wait_ready()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "messages.pickle"
        path.write_bytes(pickle.dumps((births, data)))
        procs = [subprocess.Popen([sys.executable, "-c", PUBLISHER, url, str(path), str(i), str(PUBLISHERS)])
                 for i in range(PUBLISHERS)]
        deadline = time.monotonic() + 300
        while shadow.ingest.counts["readings"] == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        t0, cpu0 = time.perf_counter(), time.process_time()  # from the first reading in (not the publishers' start)
        first, first_messages = shadow.ingest.counts["readings"], bridge.counts["messages"]
        while shadow.ingest.counts["readings"] < readings and time.monotonic() < deadline:
            time.sleep(0.01)
        seconds, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        for p in procs:
            p.wait(60)
    bridge.close()
    n = shadow.ingest.counts["readings"] - first
    per_batch = np.array(detect_s) * 1000.0 if detect_s else np.array([0.0])
    return {"messages": len(data), "readings": shadow.ingest.counts["readings"], "seconds": seconds,
            "readings_per_s": n / seconds, "messages_per_s": (bridge.counts["messages"] - first_messages) / seconds,
            "batches": bridge.counts["batches"],
            "bridge_cpu_s": cpu_s, "readings_per_bridge_cpu_s": n / cpu_s if cpu_s > 0 else math.nan,
            "detect_ms_p99": float(np.percentile(per_batch, 99))}


def latency(url, births, data, epoch_ms, rate: float = 2000.0, seconds: float = 5.0) -> dict:
    """Publish-to-detector delay at a steady ``rate`` of messages/s on the real clock."""
    from live_bridge import mqtt
    from live_bridge.bridge import Bridge, Clock
    from live_bridge.sparkplug import decode, encode

    now_ms = int(time.time() * 1000)
    shadow = _shadow(now_ms - 30 * 60_000)  # a day that began half an hour ago
    bridge = Bridge(url, shadow, clock=Clock(shadow.ingest.epoch_ms, 1.0), client_id=f"bench-lat-{os.getpid()}")
    bridge.wait_ready()
    client = mqtt.connect(url, f"bench-lat-pub-{os.getpid()}", clean_start=True)
    client.wait_ready()
    pub = mqtt.Publisher(client, bound=2000)
    for topic, payload in births:
        pub.publish(topic, payload, qos=1)
    pub.flush(30)
    sent = 0
    t0 = time.monotonic()
    count = int(rate * seconds)
    for topic, payload in data[:count]:
        due = t0 + sent / rate
        while time.monotonic() < due:
            time.sleep(0.0005)
        msg = decode(payload)  # stamp it now: the lag is the wire's and the bridge's, not the data's age
        stamp = int(time.time() * 1000)
        metrics = [replace(m, timestamp_ms=stamp) for m in msg.metrics]
        pub.publish(topic, encode(metrics, msg.seq, stamp), qos=1)
        sent += 1
    pub.flush(30)
    time.sleep(0.5)
    mqtt.close(client)
    bridge.close()
    lags_ms = np.array(shadow.ingest.lags) * 60_000.0
    return {"rate_per_s": rate, "readings": int(len(lags_ms)),
            "lag_ms_p50": float(np.percentile(lags_ms, 50)) if len(lags_ms) else math.nan,
            "lag_ms_p99": float(np.percentile(lags_ms, 99)) if len(lags_ms) else math.nan}


EPOCH_MS = 1_790_000_000_000


def run() -> dict:
    from live_bridge.brokers import EmbeddedBroker, Mosquitto, mosquitto_missing
    from live_bridge.devices import DEVICE, GATEWAY

    epoch_ms = EPOCH_MS
    births, data, readings = _messages(GATEWAY, 1, 24, epoch_ms)
    d_births, d_data, d_readings = _messages(DEVICE, 1, DEVICE_TICKS, epoch_ms)
    out = {"publishers": PUBLISHERS,
           "gateway": {"ticks": 24, "messages": len(data), "readings": readings},
           "device": {"ticks": DEVICE_TICKS, "messages": len(d_data), "readings": d_readings}}
    out["in_process"] = in_process(births, data, epoch_ms)
    out["in_process_device_layout"] = in_process(d_births, d_data, epoch_ms)
    out["ingest_readings_per_s_in_process"] = out["in_process"]["readings_per_s"]
    if mosquitto_missing() is None:
        with tempfile.TemporaryDirectory() as tmp, Mosquitto() as broker:
            record = Path(tmp) / "session.db"
            out["mosquitto"] = through_broker(broker.url, births, data, readings, epoch_ms, record=record)
            out["ingest_readings_per_s"] = out["mosquitto"]["readings_per_s"]
            out["ingest_messages_per_s"] = out["mosquitto"]["messages_per_s"]
            out["ingest_readings_per_bridge_cpu_s"] = out["mosquitto"]["readings_per_bridge_cpu_s"]
            out["mosquitto_device_layout"] = through_broker(broker.url, d_births, d_data, d_readings, epoch_ms)
            out["ingest_readings_per_s_device_layout"] = out["mosquitto_device_layout"]["readings_per_s"]
            lat = latency(broker.url, d_births, d_data, epoch_ms)
            out["latency"] = lat
            detect_ms = max(out["mosquitto"]["detect_ms_p99"], out["mosquitto_device_layout"]["detect_ms_p99"])
            out["ingest_latency_p99_ms"] = lat["lag_ms_p99"] + detect_ms
            replay_s, recorded_s = _replay_plain(record, epoch_ms)
            out["replay_s"], out["recorded_s"] = replay_s, recorded_s
            # the recording holds a day of the community's readings: real time is that day
            out["replay_times_real_time"] = 86_400.0 / replay_s
            out["replay_vs_live_session"] = recorded_s / replay_s
    else:
        out["mosquitto"] = {"skipped": mosquitto_missing()}
    with EmbeddedBroker() as broker:
        out["embedded"] = through_broker(broker.url, births, data, readings, epoch_ms)
        out["ingest_readings_per_s_embedded"] = out["embedded"]["readings_per_s"]
    out["goals"] = {k: meets(out.get(k, math.nan), *g) for k, g in GOALS.items()}
    return out


def _replay_plain(record: Path, epoch_ms: int) -> tuple[float, float]:
    """The recorded bench session into a fresh shadow (the bench's recording has no scenario settings):
    seconds the replay took (the shadow built beforehand) and seconds the recording spans."""
    from live_bridge.commands import _replay_into
    from live_bridge.recorder import open_recording

    shadow = _shadow(epoch_ms)
    db = open_recording(record)[1]
    first, last = db.execute("SELECT min(wall_ms), max(wall_ms) FROM messages").fetchone()
    t0 = time.perf_counter()
    _replay_into(shadow, db)
    return time.perf_counter() - t0, (last - first) / 1000.0


def table_rows(r: dict) -> list[tuple[str, str]]:
    def f(x):
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.0f}"

    g, d = r["gateway"], r["device"]
    rows = [(f"bridge ingest, readings/s (gateways: {g['readings']:,} readings in {g['messages']:,} Sparkplug B "
             f"messages, 2,000 households)",
             f"in process {f(r.get('ingest_readings_per_s_in_process'))}; Mosquitto {f(r.get('ingest_readings_per_s'))}"
             f" ({f(r.get('ingest_messages_per_s'))} messages/s); embedded broker "
             f"{f(r.get('ingest_readings_per_s_embedded'))}"),
            ("  per CPU-second of the bridge (what one core holds)", f(r.get("ingest_readings_per_bridge_cpu_s"))),
            (f"  one DDATA per device ({d['messages']:,} messages)",
             f"Mosquitto {f(r.get('ingest_readings_per_s_device_layout'))}")]
    if "latency" in r:
        lat = r["latency"]
        rows.append((f"  publish-to-detector at {lat['rate_per_s']:,.0f} msg/s, p50 / p99",
                     f"{lat['lag_ms_p50']:.1f} / {r['ingest_latency_p99_ms']:.1f} ms"))
    if "replay_times_real_time" in r:
        rows.append(("  replay of the recorded day", f"{r['replay_times_real_time']:,.0f}x real time "
                     f"({r['replay_vs_live_session']:.1f}x the bench's live session)"))
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(), default=float))
