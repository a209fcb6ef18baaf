"""Ingest: every live message validated, deduplicated, ordered and put into the detectors' arrays.

One :class:`Ingest` takes raw MQTT messages (topic, payload bytes, arrival
time) from three sources:

- Sparkplug B devices (``spBv1.0/...``), decoded and sequence-checked by a
  :class:`live_bridge.sparkplug.HostSession`: each device's DDATA, or a
  gateway's NDATA carrying its devices' readings as metrics named
  ``{device}/{metric}`` (:func:`live_bridge.registry.gateway_metric_name`);
- plain JSON devices (topics listed in the :class:`~live_bridge.registry.Registry`),
  each payload checked against its JSON Schema by a compiled validator;
- production's event feed (``community/{cid}/events/{service}``), checked
  against the event schema.

Readings land in :class:`agents.sensors.DayReadings`, one per community day,
the very arrays the twin's detectors read (a device not heard from stays NaN,
which the detectors treat as silence).  Nothing a device can send stops the
ingest: a message refused for a reason (see :data:`SKIPPED`) is counted,
copied to the dead-letter callback with the reason, and skipped; notes that do
not stop a message from applying (a Sparkplug sequence gap, an event arriving
after a later one) are counted too.
"""
from __future__ import annotations

import base64
import json
import math
from collections import Counter, deque
from datetime import datetime, timezone

import fastjsonschema
import numpy as np

from agents.sensors import DayReadings
from live_bridge.registry import ARRAY_OF, HOUSEHOLD_KINDS, KINDS, METRIC_OF, Registry, split_gateway_metric
from live_bridge.sparkplug import HostSession
from twin.services.events import EVENT_DTYPE, FIELDS, EventKind

# reasons a message (or one reading in it) is skipped and dead-lettered
MALFORMED = "malformed"            # not JSON / not a Sparkplug payload / fails its schema
OVERSIZED = "oversized"            # larger than max_bytes
UNKNOWN_DEVICE = "unknown_device"  # a topic or device the registry does not know
DUPLICATE = "duplicate"            # the same reading again (a QoS 1 redelivery)
OUT_OF_ORDER = "out_of_order"      # older than a reading already applied from that device
TOO_OLD = "too_old"                # older than the horizon, or its day already closed
FUTURE = "future"                  # device clock ahead of the bridge's by more than the skew allowed
SKIPPED = (MALFORMED, OVERSIZED, UNKNOWN_DEVICE, DUPLICATE, OUT_OF_ORDER, TOO_OLD, FUTURE)
# counted, but the message still applies
SEQUENCE_GAP = "sequence_gap"      # messages went missing before this one
REORDERED = "reordered"            # a production event after a later one (the log is kept by seq)

EVENT_KIND_NAMES = [k.name for k in EventKind]
EVENT_SCHEMA = {
    "type": "object",
    "required": ["seq", *FIELDS],
    "properties": {
        "seq": {"type": "integer", "minimum": 1},
        "kind": {"enum": EVENT_KIND_NAMES},
        **{f: {"type": "number"} for f in FIELDS if f != "kind"},
    },
}


def _device_schema(fields, time_field: str) -> dict:
    """A JSON device's payload: an object carrying at least one of its registered readings."""
    return {
        "type": "object",
        "properties": {**{f: {"type": ["number", "boolean"]} for f in fields},
                       time_field: {"type": ["string", "number"]}},
        "anyOf": [{"required": [f]} for f in fields],
    }


class Ingest:
    """Live messages in; :class:`DayReadings` per day and production's events out.

    ``epoch_ms`` is the community's epoch in Unix milliseconds (wire
    timestamps are Unix ms; the detectors count minutes from the epoch).
    ``horizon_minutes``: a reading older than this on arrival is counted and
    not applied; ``max_skew_minutes``: how far a device's clock may run ahead.
    """

    def __init__(self, registry: Registry, *, epoch_ms: int, tick_minutes: float, community: str = "c1",
                 horizon_minutes: float = 1440.0, max_skew_minutes: float = 5.0, max_bytes: int = 64 * 1024,
                 dead_letter=None):
        self.registry = registry
        self.epoch_ms = int(epoch_ms)
        self.tick = float(tick_minutes)
        self.ticks_per_day = int(round(1440 / self.tick))
        self.community = community
        self.horizon = float(horizon_minutes)
        self.max_skew = float(max_skew_minutes)
        self.max_bytes = int(max_bytes)
        self.dead_letter = dead_letter  # callable(reason, topic, payload, detail) or None
        self.counts: Counter = Counter()  # by reason, plus "messages" and "readings"
        self.applied: Counter = Counter()  # readings applied, by kind
        self.days: dict[int, DayReadings] = {}
        self.closed_before = 0  # days before this one are closed (handed to the detectors)
        # per kind and device index: the device time of its latest applied reading, the arrival of its latest message
        sizes = {k: registry.households if k in HOUSEHOLD_KINDS else registry.buildings for k in KINDS}
        self.last_t = {k: np.full(n, -np.inf) for k, n in sizes.items()}
        self.heard = {k: np.full(n, -np.inf) for k, n in sizes.items()}
        self.lags: deque = deque(maxlen=100_000)  # arrival minus device time of recent readings, minutes
        self.events: dict[int, dict] = {}  # production's events by seq
        self._max_seq = 0
        self._event_prefix = f"community/{community}/events/"
        self._validate_event = fastjsonschema.compile(EVENT_SCHEMA)
        self._validate_device = {topic: fastjsonschema.compile(_device_schema([f for f, _ in entries],
                                                                              registry.time_field[topic]))
                                 for topic, entries in registry.json.items()}
        self.sparkplug = HostSession(group=community)

    # --------------------------------------------------------------- intake
    def handle(self, topic: str, payload: bytes, arrival: float) -> None:
        """Take one message that arrived at community minute ``arrival``."""
        self.counts["messages"] += 1
        if len(payload) > self.max_bytes:
            return self._skip(OVERSIZED, topic, payload, f"{len(payload)} bytes > {self.max_bytes}")
        if topic.startswith("spBv1.0/"):
            return self._sparkplug_message(topic, payload, arrival)
        if topic.startswith(self._event_prefix):
            return self._event(topic, payload)
        if topic in self.registry.json:
            return self._json_device(topic, payload, arrival)
        if "/bridge/" in topic:  # a JSON network's own status (zigbee2mqtt/bridge/state, ...): not a device
            self.counts["network_status"] += 1
            return None
        return self._skip(UNKNOWN_DEVICE, topic, payload, "no device is registered on this topic")

    def _skip(self, reason: str, topic: str, payload: bytes, detail: str) -> None:
        self.counts[reason] += 1
        if self.dead_letter is not None:
            self.dead_letter(reason, topic, payload, detail)

    def _sparkplug_message(self, topic, payload, arrival):
        readings, reason = self.sparkplug.accept(topic, payload)
        if readings is None:
            return self._skip(reason or MALFORMED, topic, payload, "refused by the Sparkplug session")
        if reason is not None:  # a gap: the data still applies
            self.counts[reason] += 1
        edge = topic.split("/")[3]
        for device, metric, ts_ms, value in readings:
            if device is None:  # the gateway's own metric: a device's reading if named device/metric
                folder = split_gateway_metric(metric)
                dev = None if folder is None else self.registry.sparkplug.get((edge, folder[0]))
                if dev is None:  # bdSeq, Node Control/..., the gateway's own health: not readings
                    self.counts["gateway_metrics"] += 1
                    continue
                device, metric = folder
            else:
                dev = self.registry.sparkplug.get((edge, device))
            if dev is None:
                self._skip(UNKNOWN_DEVICE, topic, payload, f"device {edge}/{device} is not in the registry")
                continue
            if metric != METRIC_OF[dev.kind]:
                self.counts["other_metrics"] += 1  # battery, signal, ...: not what the detectors read
                continue
            self._reading(dev, (ts_ms - self.epoch_ms) / 60000.0 if ts_ms else arrival, value, arrival,
                          topic, payload)

    def _json_device(self, topic, payload, arrival):
        try:
            data = json.loads(payload)
            self._validate_device[topic](data)
        except (ValueError, fastjsonschema.JsonSchemaException) as e:
            return self._skip(MALFORMED, topic, payload, str(e)[:200])
        stamp = data.get(self.registry.time_field[topic])
        t = arrival if stamp is None else self._minutes_of(stamp)
        if t is None:
            return self._skip(MALFORMED, topic, payload, f"timestamp {stamp!r} is neither ISO 8601 nor Unix ms")
        for field, dev in self.registry.json[topic]:
            if field in data:
                self._reading(dev, t, float(data[field]), arrival, topic, payload)

    def _minutes_of(self, stamp) -> float | None:
        if isinstance(stamp, (int, float)):
            return (stamp - self.epoch_ms) / 60000.0
        try:
            when = datetime.fromisoformat(stamp)
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return (when.timestamp() * 1000.0 - self.epoch_ms) / 60000.0

    # ------------------------------------------------------------- readings
    def _reading(self, dev, t, value, arrival, topic, payload) -> None:
        self.heard[dev.kind][dev.index] = arrival
        if not math.isfinite(t) or not math.isfinite(value):
            return self._skip(MALFORMED, topic, payload, f"{dev.name}: reading {value!r} at {t!r} is not a number")
        if arrival - t > self.horizon:
            return self._skip(TOO_OLD, topic, payload, f"{dev.name}: {arrival - t:.0f} min old")
        if t - arrival > self.max_skew:
            return self._skip(FUTURE, topic, payload, f"{dev.name}: {t - arrival:.1f} min ahead of the bridge")
        slot = max(0, math.ceil(t / self.tick) - 1)  # a reading is stamped at its tick's end
        day, k = divmod(slot, self.ticks_per_day)
        value *= dev.scale
        last = self.last_t[dev.kind][dev.index]
        if t <= last:  # the same reading again (a redelivery), or an older one after a newer
            again = t == last or (day >= self.closed_before and self._stored(dev, day, k, t) == value)
            return self._skip(DUPLICATE if again else OUT_OF_ORDER, topic, payload,
                              f"{dev.name}: reading at {t:.2f} after one at {last:.2f}")
        if day < self.closed_before:
            return self._skip(TOO_OLD, topic, payload, f"{dev.name}: day {day} is already closed")
        r = self.day(day)
        i = dev.index
        if dev.kind != "smoke":
            getattr(r, ARRAY_OF[dev.kind])[i, k] = value
        elif value > 0 and r.smoke_t[i] < 0:  # smoke: the first alarm of the day counts
            r.smoke_t[i] = t
        self.last_t[dev.kind][dev.index] = t
        self.lags.append(arrival - t)
        self.counts["readings"] += 1
        self.applied[dev.kind] += 1

    def _stored(self, dev, day: int, k: int, t: float) -> float:
        """What the day's arrays hold for this device's slot (for telling a redelivery)."""
        r = self.day(day)
        if dev.kind == "smoke":
            return 1.0 if r.smoke_t[dev.index] == t else math.nan
        return getattr(r, ARRAY_OF[dev.kind])[dev.index, k]

    def day(self, d: int) -> DayReadings:
        """The live readings of day ``d`` so far (NaN where nothing was heard)."""
        r = self.days.get(d)
        if r is None:
            r = self.days[d] = DayReadings.empty(d, self.tick, self.registry.households, self.registry.buildings)
        return r

    def close_day(self, d: int) -> DayReadings:
        """Hand day ``d``'s readings over; later readings of it count as too old."""
        r = self.day(d)
        for old in [x for x in self.days if x <= d]:
            del self.days[old]
        self.closed_before = max(self.closed_before, d + 1)
        return r

    def live(self, kind: str, since: float) -> np.ndarray:
        """Which devices of ``kind`` (by household or building) were heard from at or after minute ``since``."""
        return self.heard[kind] >= since

    # --------------------------------------------------------------- events
    def _event(self, topic, payload):
        try:
            data = json.loads(payload)
            self._validate_event(data)
        except (ValueError, fastjsonschema.JsonSchemaException) as e:
            return self._skip(MALFORMED, topic, payload, str(e)[:200])
        seq = data["seq"]
        if seq in self.events:
            return self._skip(DUPLICATE, topic, payload, f"event {seq} again")
        if seq < self._max_seq:
            self.counts[REORDERED] += 1
        elif seq > self._max_seq + 1 and self._max_seq:
            self.counts[SEQUENCE_GAP] += 1
        self._max_seq = max(self._max_seq, seq)
        self.events[seq] = data
        self.counts["events"] += 1

    def production_events(self) -> np.ndarray:
        """Production's events received so far, in log order, as the event log's rows."""
        out = np.zeros(len(self.events), EVENT_DTYPE)
        for i, seq in enumerate(sorted(self.events)):
            e = self.events[seq]
            for f in FIELDS:
                out[f][i] = EventKind[e[f]] if f == "kind" else e[f]
        return out


def dead_letter_message(reason: str, topic: str, payload: bytes, detail: str, keep_bytes: int = 4096) -> bytes:
    """The dead-letter copy of a refused message: the reason, the detail, the topic and the payload (base64)."""
    return json.dumps({"reason": reason, "detail": detail, "topic": topic, "size": len(payload),
                       "payload_b64": base64.b64encode(payload[:keep_bytes]).decode()}).encode()


__all__ = ["Ingest", "SKIPPED", "dead_letter_message"]
