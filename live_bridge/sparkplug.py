"""Sparkplug B: topics, payloads, an edge node's life on the wire, and the host's view of it.

Real building gateways speak Sparkplug B, so the bridge does too. The parts, in order:

- **Topics**: ``spBv1.0/{group}/{message type}/{edge node}[/{device}]`` (and the host's
  ``spBv1.0/STATE/{host}``), built by :func:`topic` and read back by :func:`parse_topic`.
- **Payloads**: :func:`encode` and :func:`decode` over the protobuf classes compiled from
  ``sparkplug_b.proto``. A value travels in the protobuf field its datatype prescribes (signed
  integers as two's complement); anything that does not decode is :class:`MalformedPayload`.
- **EdgeNode**: what a gateway publishes: NBIRTH (with ``bdSeq``) and DBIRTHs declaring every
  metric's name, alias and datatype, then data by alias with a ``seq`` that wraps at 256, and
  an NDEATH as the MQTT last will carrying the same ``bdSeq``. It is a pure state machine that
  returns :class:`Message` objects; :class:`EdgeNodeLink` puts one on a broker.
- **HostSession**: what the bridge knows of each edge node from its births (``bdSeq``, the next
  ``seq``, alias → device, metric and datatype), used to turn data into readings and to refuse,
  by one of the ``REASONS``, whatever does not fit.
"""
from __future__ import annotations

import contextlib
import enum
import functools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

from google.protobuf.message import DecodeError

from live_bridge import sparkplug_b_pb2 as pb

NAMESPACE = "spBv1.0"
NBIRTH, NDATA, NDEATH, NCMD = "NBIRTH", "NDATA", "NDEATH", "NCMD"
DBIRTH, DDATA, DDEATH, DCMD = "DBIRTH", "DDATA", "DDEATH", "DCMD"
STATE = "STATE"
NODE_MESSAGES = (NBIRTH, NDATA, NDEATH, NCMD)
DEVICE_MESSAGES = (DBIRTH, DDATA, DDEATH, DCMD)
MESSAGE_TYPES = NODE_MESSAGES + DEVICE_MESSAGES
BD_SEQ = "bdSeq"  # the birth/death sequence metric of NBIRTH and NDEATH
REBIRTH = "Node Control/Rebirth"  # the NCMD metric that asks an edge node to publish its births again
SEQ_MODULUS = 256

# Why the host refused (or flagged) a message. The ingest counts and dead-letters by these names.
MALFORMED = "malformed"                  # not a Sparkplug topic, not a payload, or a metric that makes no sense
UNKNOWN_EDGE_NODE = "unknown_edge_node"  # from an edge node with no current birth (never born, or dead since)
UNKNOWN_DEVICE = "unknown_device"        # device data or death with no current DBIRTH
SEQUENCE_GAP = "sequence_gap"            # seq is not the one expected: messages were lost (the data still applies)
DUPLICATE = "duplicate"                  # the same message again (a QoS 1 redelivery): nothing new
STALE_DEATH = "stale_death"              # an NDEATH whose bdSeq is not the current birth's: an old session's will
UNKNOWN_ALIAS = "unknown_alias"          # a metric alias or name that no birth declared
WRONG_TYPE = "wrong_type"                # a metric whose datatype or value does not match its birth
MISSING_METRIC = "missing_metric"        # a birth or death without a metric it must carry (bdSeq, a required one)
REASONS = (MALFORMED, UNKNOWN_EDGE_NODE, UNKNOWN_DEVICE, SEQUENCE_GAP, DUPLICATE, STALE_DEATH, UNKNOWN_ALIAS,
           WRONG_TYPE, MISSING_METRIC)

# The datatypes, with the specification's names and codes, taken from the compiled definition.
DataType = enum.IntEnum("DataType", {v.name: v.number for v in pb.DataType.DESCRIPTOR.values})


class MalformedPayload(ValueError):
    """Bytes that are not a Sparkplug B payload, or a metric whose value contradicts its datatype."""


# ---------------------------------------------------------------------------------------- topics
@dataclass(frozen=True)
class SparkplugTopic:
    """A parsed topic. ``group``, ``edge_node`` are None for STATE, whose ``host_id`` is set instead."""

    message_type: str
    group: str | None = None
    edge_node: str | None = None
    device: str | None = None
    host_id: str | None = None


def _check_id(what: str, value: str) -> None:
    if not isinstance(value, str) or not value or any(c in value for c in "/+#"):
        raise ValueError(f"Sparkplug {what} {value!r}: must be a non-empty string without '/', '+' or '#'")


def topic(group: str, message_type: str, edge_node: str, device: str | None = None) -> str:
    """The topic of a node message (``device`` None) or a device message (``device`` given)."""
    if message_type not in MESSAGE_TYPES:
        raise ValueError(f"Sparkplug message_type {message_type!r}: allowed values are {', '.join(MESSAGE_TYPES)}")
    _check_id("group", group)
    _check_id("edge_node", edge_node)
    if message_type in DEVICE_MESSAGES:
        if device is None:
            raise ValueError(f"Sparkplug device: a {message_type} topic names a device")
        _check_id("device", device)
        return f"{NAMESPACE}/{group}/{message_type}/{edge_node}/{device}"
    if device is not None:
        raise ValueError(f"Sparkplug device: a {message_type} topic names no device (got {device!r})")
    return f"{NAMESPACE}/{group}/{message_type}/{edge_node}"


def state_topic(host_id: str) -> str:
    """Where a host application announces itself online or offline (Sparkplug 3.0)."""
    _check_id("host_id", host_id)
    return f"{NAMESPACE}/{STATE}/{host_id}"


@functools.lru_cache(maxsize=1 << 16)
def parse_topic(text: str) -> SparkplugTopic | None:
    """The parts of a Sparkplug B topic, or None when the text is not one.

    Cached: a community's devices use the same few thousand topics over and over, and the
    answer is immutable.
    """
    parts = text.split("/") if isinstance(text, str) else []
    if len(parts) < 3 or parts[0] != NAMESPACE or not all(parts):
        return None
    if parts[1] == STATE:
        return SparkplugTopic(STATE, host_id=parts[2]) if len(parts) == 3 else None
    if len(parts) == 4 and parts[2] in NODE_MESSAGES:
        return SparkplugTopic(parts[2], parts[1], parts[3])
    if len(parts) == 5 and parts[2] in DEVICE_MESSAGES:
        return SparkplugTopic(parts[2], parts[1], parts[3], parts[4])
    return None


# -------------------------------------------------------------------------------------- payloads
@dataclass(frozen=True)
class Metric:
    """One metric. ``value`` None means null. ``datatype`` is None when the sender left it out (the
    specification lets data messages rely on the birth); then ``value`` is the raw protobuf value and
    ``wire_field`` says which field carried it, so the host can read it with the birth's datatype."""

    name: str | None = None
    value: Any = None
    datatype: int | None = None
    alias: int | None = None
    timestamp_ms: int | None = None
    wire_field: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Payload:
    """A decoded payload: the sender's timestamp and ``seq`` (None when absent) and its metrics."""

    timestamp_ms: int | None
    seq: int | None
    metrics: tuple[Metric, ...]
    uuid: str | None = None


_INT32_TYPES = {DataType.Int8: (8, True), DataType.Int16: (16, True), DataType.Int32: (32, True),
                DataType.UInt8: (8, False), DataType.UInt16: (16, False), DataType.UInt32: (32, False)}
_INT64_TYPES = {DataType.Int64: (64, True), DataType.UInt64: (64, False), DataType.DateTime: (64, False)}
# the protobuf field that carries each datatype's value
VALUE_FIELD = {**{t: "int_value" for t in _INT32_TYPES}, **{t: "long_value" for t in _INT64_TYPES},
               DataType.Float: "float_value", DataType.Double: "double_value", DataType.Boolean: "boolean_value",
               DataType.String: "string_value", DataType.Text: "string_value", DataType.UUID: "string_value",
               DataType.Bytes: "bytes_value", DataType.File: "bytes_value", DataType.DataSet: "dataset_value",
               DataType.Template: "template_value"}
# arrays travel packed in bytes (Sparkplug 3.0); the bridge passes them on as bytes
VALUE_FIELD.update({t: "bytes_value" for t in DataType if t.name.endswith("Array")})
ENCODABLE = tuple(t for t in VALUE_FIELD if VALUE_FIELD[t] not in ("dataset_value", "template_value", "bytes_value")
                  or t in (DataType.Bytes, DataType.File))


def _int_range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _to_wire(datatype: DataType, value: Any, name: str) -> Any:
    """The protobuf field value for ``value`` of ``datatype``; a clear ValueError when it cannot be one."""
    if datatype in _INT32_TYPES or datatype in _INT64_TYPES:
        bits, signed = _INT32_TYPES.get(datatype) or _INT64_TYPES[datatype]
        low, high = _int_range(bits, signed)
        try:
            whole = not isinstance(value, bool) and float(value).is_integer()
        except (TypeError, ValueError):
            whole = False
        if not whole:
            raise ValueError(f"metric {name!r}: {datatype.name} needs an integer, got {value!r}")
        value = int(value)
        if not low <= value <= high:
            raise ValueError(f"metric {name!r}: {value} is outside {datatype.name}'s range {low}..{high}")
        width = 32 if datatype in _INT32_TYPES else 64
        return value & ((1 << width) - 1)  # two's complement, sign-extended to the field (as Eclipse Tahu does)
    try:
        if datatype in (DataType.Float, DataType.Double):
            return float(value)
        if datatype == DataType.Boolean:
            return bool(value)
        if datatype in (DataType.String, DataType.Text, DataType.UUID):
            return str(value)
        return bytes(value)
    except (TypeError, ValueError):
        raise ValueError(f"metric {name!r}: {value!r} is not a {datatype.name}") from None


def _from_wire(datatype: int, wire_field: str | None, raw: Any) -> Any:
    """The value of ``datatype`` carried as ``raw`` in ``wire_field``; MalformedPayload when they disagree."""
    expected = VALUE_FIELD.get(datatype)
    if expected is None:
        return raw  # a datatype this side does not know: passed on as it came
    if wire_field != expected:
        raise MalformedPayload(f"a {DataType(datatype).name} value travels in {expected}, not {wire_field}")
    if datatype in _INT32_TYPES or datatype in _INT64_TYPES:
        bits, signed = _INT32_TYPES.get(datatype) or _INT64_TYPES[datatype]
        width = 32 if datatype in _INT32_TYPES else 64
        low, high = _int_range(bits, signed)
        value = raw
        if signed and raw >= (1 << width) - (1 << (bits - 1)):
            value = raw - (1 << width)  # negative, sign-extended to the field's width (Eclipse Tahu's form)
        elif signed and (1 << (bits - 1)) <= raw < (1 << bits):
            value = raw - (1 << bits)  # negative in the datatype's own width (the specification allows both)
        if not low <= value <= high:
            raise MalformedPayload(f"{raw} in {wire_field} is not a {DataType(datatype).name}")
        return value
    return raw


def encode(metrics: Iterable[Metric], seq: int | None = None, timestamp_ms: int | None = None) -> bytes:
    """A Sparkplug B payload of ``metrics`` (each with a name or an alias, and a datatype)."""
    payload = pb.Payload()
    if timestamp_ms is not None:
        payload.timestamp = int(timestamp_ms)
    if seq is not None:
        if not 0 <= seq < SEQ_MODULUS:
            raise ValueError(f"seq {seq}: allowed values are 0..{SEQ_MODULUS - 1}")
        payload.seq = seq
    for m in metrics:
        out = payload.metrics.add()
        label = m.name if m.name is not None else f"alias {m.alias}"
        if m.name is None and m.alias is None:
            raise ValueError("a metric needs a name or an alias")
        if m.name is not None:
            out.name = m.name
        if m.alias is not None:
            out.alias = m.alias
        if m.timestamp_ms is not None:
            out.timestamp = int(m.timestamp_ms)
        if m.datatype is None:
            raise ValueError(f"metric {label!r}: datatype is required to encode a value")
        try:
            datatype = DataType(m.datatype)
        except ValueError:
            raise ValueError(f"metric {label!r}: datatype {m.datatype!r} is not a Sparkplug B datatype") from None
        if datatype not in ENCODABLE:
            raise ValueError(f"metric {label!r}: datatype {datatype.name} cannot be encoded here; allowed: "
                             f"{', '.join(t.name for t in ENCODABLE)}")
        out.datatype = datatype
        if m.value is None:
            out.is_null = True
        else:
            setattr(out, VALUE_FIELD[datatype], _to_wire(datatype, m.value, label))
    return payload.SerializeToString()


def decode(data: bytes) -> Payload:
    """The payload in ``data``; :class:`MalformedPayload` when it is not one."""
    try:
        payload = pb.Payload.FromString(bytes(data))
    except (DecodeError, TypeError, ValueError) as e:
        raise MalformedPayload(f"not a Sparkplug B payload: {e}") from None
    metrics = []
    for m in payload.metrics:
        wire_field = m.WhichOneof("value")
        raw = getattr(m, wire_field) if wire_field else None
        datatype = m.datatype if m.HasField("datatype") else None
        label = m.name or f"alias {m.alias}"
        if m.is_null or wire_field is None:
            value = None
        elif datatype is not None:
            try:
                value = _from_wire(datatype, wire_field, raw)
            except MalformedPayload as e:
                raise MalformedPayload(f"metric {label!r}: {e}") from None
        else:
            value = raw
        metrics.append(Metric(m.name if m.HasField("name") else None, value, datatype,
                              m.alias if m.HasField("alias") else None,
                              m.timestamp if m.HasField("timestamp") else None, wire_field))
    return Payload(payload.timestamp if payload.HasField("timestamp") else None,
                   payload.seq if payload.HasField("seq") else None, tuple(metrics),
                   payload.uuid if payload.HasField("uuid") else None)


# ------------------------------------------------------------------------------------- edge node
class Message(NamedTuple):
    """One MQTT publish: what an edge node or the host hands to its connection."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


@dataclass(frozen=True)
class MetricSpec:
    """A metric a birth declares: its name, datatype and the value the birth reports (None: null)."""

    name: str
    datatype: DataType
    initial: Any = None


def now_ms() -> int:
    return int(time.time() * 1000)


def rebirth_command(group: str, edge_node: str) -> Message:
    """The NCMD a host sends to ask an edge node to publish its births again."""
    return Message(topic(group, NCMD, edge_node),
                   encode([Metric(REBIRTH, True, DataType.Boolean)], timestamp_ms=now_ms()), qos=0)


class EdgeNode:
    """A gateway's Sparkplug B session: births, data, deaths, the ``seq`` and ``bdSeq`` counters.

    Every method returns the :class:`Message` objects to publish, in order; nothing here touches
    a network, so the same object serves a real connection and a test. Aliases are numbered 1, 2, …
    over the node's metrics and then each device's, once, so they stay the same across rebirths.

    Sparkplug 3.0 publishes births and data with QoS 0; ``qos`` (default 1) lets a gateway publish
    them with QoS 1 instead, so that a bridge on a persistent session loses nothing while it is away
    (``seq`` still reveals anything lost). The death, being the last will, is always QoS 1.
    """

    def __init__(self, group: str, edge_node: str, devices: Mapping[str, Sequence[MetricSpec]],
                 node_metrics: Sequence[MetricSpec] = (), qos: int = 1, clock: Callable[[], int] = now_ms):
        if qos not in (0, 1):
            raise ValueError(f"qos {qos!r}: allowed values are 0, 1")
        _check_id("group", group)
        _check_id("edge_node", edge_node)
        for device in devices:
            _check_id("device", device)
        self.group, self.edge_node, self.qos, self.clock = group, edge_node, qos, clock
        self.node_metrics = tuple(node_metrics)
        self.devices = {d: tuple(specs) for d, specs in devices.items()}
        self.aliases: dict[tuple[str | None, str], int] = {}
        for device, specs in [(None, self.node_metrics), *self.devices.items()]:
            for spec in specs:
                if (device, spec.name) in self.aliases:
                    raise ValueError(f"metric {spec.name!r} is declared twice for {device or 'the node'}")
                self.aliases[device, spec.name] = len(self.aliases) + 1
        self._datatypes = {(d, s.name): s.datatype for d, specs in [(None, self.node_metrics), *self.devices.items()]
                           for s in specs}
        self.bd_seq = -1  # no connection yet; connection_will() makes it 0
        self._seq = 0

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (seq + 1) % SEQ_MODULUS
        return seq

    def _message(self, kind: str, metrics: list[Metric], device: str | None = None, seq: bool = True,
                 timestamp_ms: int | None = None, qos: int | None = None) -> Message:
        payload = encode(metrics, self._next_seq() if seq else None,
                         self.clock() if timestamp_ms is None else timestamp_ms)
        return Message(topic(self.group, kind, self.edge_node, device), payload, self.qos if qos is None else qos)

    def _death(self) -> Message:
        return self._message(NDEATH, [Metric(BD_SEQ, self.bd_seq, DataType.UInt64)], seq=False, qos=1)

    def connection_will(self) -> Message:
        """Start a new MQTT connection: the next ``bdSeq``, and the NDEATH to register as its last will."""
        self.bd_seq = (self.bd_seq + 1) % SEQ_MODULUS
        return self._death()

    def births(self) -> list[Message]:
        """NBIRTH (``seq`` 0, ``bdSeq``, the rebirth control, node metrics) and a DBIRTH per device."""
        if self.bd_seq < 0:
            raise RuntimeError("births come after connection_will(): the NBIRTH carries that connection's bdSeq")
        self._seq = 0
        t = self.clock()
        node = [Metric(BD_SEQ, self.bd_seq, DataType.UInt64, timestamp_ms=t),
                Metric(REBIRTH, False, DataType.Boolean, timestamp_ms=t)]
        node += [self._declared(None, s, t) for s in self.node_metrics]
        out = [self._message(NBIRTH, node, timestamp_ms=t)]
        for device, specs in self.devices.items():
            out.append(self._message(DBIRTH, [self._declared(device, s, t) for s in specs], device, timestamp_ms=t))
        return out

    def _declared(self, device: str | None, spec: MetricSpec, t: int) -> Metric:
        return Metric(spec.name, spec.initial, spec.datatype, self.aliases[device, spec.name], t)

    def _by_alias(self, device: str | None, values: Mapping[str, Any], timestamp_ms: int) -> list[Metric]:
        out = []
        for name, value in values.items():
            key = (device, name)
            if key not in self.aliases:
                declared = [n for d, n in self.aliases if d == device]
                raise ValueError(f"metric {name!r} of {device or 'the node'}: not declared; declared: {declared}")
            # data carries the alias only (the birth bound it to the name) and the datatype, which
            # encoding needs; Tahu's clients send it too
            out.append(Metric(None, value, self._datatypes[key], self.aliases[key], timestamp_ms))
        return out

    def device_data(self, device: str, values: Mapping[str, Any], timestamp_ms: int | None = None) -> Message:
        """DDATA: ``values`` (metric name → value) of one device, stamped ``timestamp_ms``."""
        if device not in self.devices:
            raise ValueError(f"device {device!r}: not one of {self.edge_node}'s devices")
        t = self.clock() if timestamp_ms is None else int(timestamp_ms)
        return self._message(DDATA, self._by_alias(device, values, t), device, timestamp_ms=t)

    def node_data(self, values: Mapping[str, Any], timestamp_ms: int | None = None) -> Message:
        """NDATA: values of the node's own metrics."""
        t = self.clock() if timestamp_ms is None else int(timestamp_ms)
        return self._message(NDATA, self._by_alias(None, values, t), timestamp_ms=t)

    def device_death(self, device: str) -> Message:
        """DDEATH: the device is gone (the node itself stays online)."""
        if device not in self.devices:
            raise ValueError(f"device {device!r}: not one of {self.edge_node}'s devices")
        return self._message(DDEATH, [], device)

    def death(self) -> Message:
        """The NDEATH to publish before a clean disconnect (the broker sends the will only on a failure)."""
        return self._death()

    def command(self, topic_text: str, data: bytes) -> list[Message]:
        """Answer an NCMD: a rebirth request gets the births again; anything else, nothing."""
        parsed = parse_topic(topic_text)
        if parsed is None or parsed.message_type != NCMD or parsed.edge_node != self.edge_node:
            return []
        try:
            metrics = decode(data).metrics
        except MalformedPayload:
            return []
        if any(m.name == REBIRTH and m.value is True for m in metrics):
            return self.births()
        return []


class EdgeNodeLink:
    """An :class:`EdgeNode` on a broker, through the bridge's one MQTT setup (:mod:`live_bridge.mqtt`).

    Before every connection attempt the will becomes the next session's NDEATH (a new ``bdSeq``);
    on every connection the births go out; rebirth commands are answered; data is published in
    ``seq`` order with at most ``bound`` QoS 1 messages unacknowledged. Sparkplug asks edge
    nodes for a clean session, so the link has one.
    """

    def __init__(self, node: EdgeNode, url, client_id: str | None = None, bound: int = 1000,
                 connect_timeout_s: float = 30.0):
        from live_bridge import mqtt

        self.node = node
        self.bound = bound
        self._order = threading.Lock()  # one message built and handed to paho at a time: seq order is wire order
        self._born_for = 0  # the connection whose births went out
        self.client = mqtt.connect(url, client_id or f"{node.group}-{node.edge_node}", clean_start=True,
                                   will=self._will, on_message=self._on_message,
                                   subscriptions=[(topic(node.group, NCMD, node.edge_node), 1)])
        self.publisher = mqtt.Publisher(self.client, bound)
        setup = self.client.on_connect  # subscribes and counts connections; births follow it

        def on_connect(client, userdata, flags, reason_code, properties):
            setup(client, userdata, flags, reason_code, properties)
            if not reason_code.is_failure:
                self._births()

        with self._order:
            self.client.on_connect = on_connect
        self._births()  # the first connection may have come before on_connect was wrapped
        try:
            self.client.wait_ready(connect_timeout_s)
        except TimeoutError:
            mqtt.close(self.client)
            raise
        self._births()

    def _will(self):
        from live_bridge.mqtt import Will

        with self._order:
            death = self.node.connection_will()
        return Will(death.topic, death.payload, death.qos, death.retain)

    def _births(self) -> None:
        with self._order:
            if self.client.connections > self._born_for:
                self._born_for = self.client.connections
                for message in self.node.births():
                    self.client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)

    def _on_message(self, client, userdata, msg):
        with self._order:
            for message in self.node.command(msg.topic, msg.payload):
                client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)

    def send(self, build: Callable[[EdgeNode], Message]) -> None:
        """Build a message from the node (``lambda node: node.device_data(...)``) and publish it.

        Waits for room among the unacknowledged first, then builds and publishes under one lock,
        so that every message's ``seq`` is its order on the wire. (Waiting under the lock could
        stall the network thread, which takes it for births, and so the acknowledgements.)
        """
        while self.publisher.unacknowledged() >= self.bound:
            time.sleep(0.002)
        with self._order:
            message = build(self.node)
            self.client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every QoS 1 publish is acknowledged; False if some are not within ``timeout_s``."""
        return self.publisher.flush(timeout_s)

    def close(self, clean: bool = True) -> None:
        """``clean``: flush, publish the NDEATH and disconnect. Otherwise drop the connection as a
        power cut would, so that the broker publishes the will."""
        from live_bridge import mqtt

        if clean:
            self.flush(60.0)
            with self._order:
                death = self.node.death()
                info = self.client.publish(death.topic, death.payload, qos=death.qos)
            with contextlib.suppress(RuntimeError, ValueError):  # disconnected: the broker sends the will instead
                info.wait_for_publish(10.0)
            mqtt.close(self.client)
        else:
            self.client.loop_stop()
            sock = self.client.socket()
            if sock is not None:
                sock.close()


# ---------------------------------------------------------------------------------- host session
class Reading(NamedTuple):
    """A value out of a data message. ``device`` is None for the edge node's own metrics; the edge
    node is the topic's."""

    device: str | None
    metric: str
    timestamp_ms: int
    value: Any


@dataclass
class _NodeState:
    bd_seq: int
    next_seq: int
    online: bool = True
    metrics: dict[tuple[str | None, str], int] = field(default_factory=dict)  # (device, name) -> datatype
    aliases: dict[int, tuple[str | None, str]] = field(default_factory=dict)  # alias -> (device, name)
    devices: dict[str, bool] = field(default_factory=dict)  # device -> online
    last: tuple[int, bytes] | None = None  # the last seq-bearing message, to know a redelivery


class HostSession:
    """The host application's view of every edge node of a group, built from their births.

    :meth:`accept` takes each message as it arrives and returns ``(readings, reason)``: readings to
    apply (None when the message is refused; [] when it carries none, such as a birth) and the
    reason it was refused or flagged (one of ``REASONS``; None when all is well). A sequence gap
    still applies its readings. Whenever the view of a node is in doubt (data before a birth, an
    unknown device or alias, a gap) a rebirth is requested: :meth:`take_rebirths` hands out the
    NCMDs to publish.

    ``required`` names, per device, the metrics its DBIRTH must declare (for the device registry);
    a birth without one is refused with ``missing_metric``.
    """

    def __init__(self, group: str | None = None, required: Callable[[str], Iterable[str]] | None = None):
        self.group = group
        self.required = required
        self.nodes: dict[tuple[str, str], _NodeState] = {}
        self._rebirth_wanted: list[tuple[str, str]] = []
        self._rebirth_pending: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ queries
    def online(self, edge_node: str, device: str | None = None, group: str | None = None) -> bool:
        """Whether an edge node (or one of its devices) is alive: born and not dead since."""
        node = self.nodes.get((group or self.group, edge_node))
        if node is None or not node.online:
            return False
        return True if device is None else node.devices.get(device, False)

    def devices(self, edge_node: str, group: str | None = None) -> dict[str, bool]:
        """Each device an edge node has declared, and whether it is online."""
        node = self.nodes.get((group or self.group, edge_node))
        return {d: node.online and up for d, up in node.devices.items()} if node else {}

    def take_rebirths(self) -> list[Message]:
        """The rebirth commands asked for since the last call (one per node until its next birth)."""
        wanted, self._rebirth_wanted = self._rebirth_wanted, []
        return [rebirth_command(g, e) for g, e in wanted]

    def _want_rebirth(self, key: tuple[str, str]) -> None:
        if key not in self._rebirth_pending:
            self._rebirth_pending.add(key)
            self._rebirth_wanted.append(key)

    # ------------------------------------------------------------------ messages
    def accept(self, topic_text: str, data: bytes) -> tuple[list[Reading] | None, str | None]:
        """Apply one message to the view; ``(readings, reason)`` as the class says."""
        where = parse_topic(topic_text)
        if where is None or where.message_type == STATE or (self.group is not None and where.group != self.group):
            return None, MALFORMED
        if where.message_type in (NCMD, DCMD):
            return [], None  # commands are the host's own (or another host's) words, not device data
        try:
            payload = decode(data)
        except MalformedPayload:
            return None, MALFORMED
        key = (where.group, where.edge_node)
        kind = where.message_type
        if kind == NBIRTH:
            return self._node_birth(key, payload)
        if kind == NDEATH:
            return self._node_death(key, payload)
        node = self.nodes.get(key)
        if node is None or not node.online:
            self._want_rebirth(key)
            return None, UNKNOWN_EDGE_NODE
        if payload.seq is None:
            return None, MALFORMED
        if node.last == (payload.seq, bytes(data)):
            return None, DUPLICATE
        gap = payload.seq != node.next_seq
        node.next_seq = (payload.seq + 1) % SEQ_MODULUS
        node.last = (payload.seq, bytes(data))
        if gap:
            self._want_rebirth(key)
        if kind == DBIRTH:
            readings, reason = self._device_birth(node, where.device, payload)
        elif kind == DDEATH:
            readings, reason = self._device_death(node, where.device)
        else:
            device = where.device if kind == DDATA else None
            if device is not None and not node.devices.get(device, False):
                self._want_rebirth(key)
                return None, UNKNOWN_DEVICE
            readings, reason = self._data(node, device, payload)
            if reason in (UNKNOWN_ALIAS, WRONG_TYPE):
                self._want_rebirth(key)  # the node's metrics are not what its birth said
        if reason is None and gap:
            reason = SEQUENCE_GAP
        return readings, reason

    def _node_birth(self, key, payload: Payload):
        bd_seq = _integer_metric(payload, BD_SEQ)
        if bd_seq is None:
            return None, MISSING_METRIC
        if payload.seq is None:
            return None, MALFORMED
        node = _NodeState(bd_seq, (payload.seq + 1) % SEQ_MODULUS)
        problem = _declare(node, None, payload.metrics)
        if problem:
            return None, problem
        self.nodes[key] = node
        self._rebirth_pending.discard(key)
        return [], None

    def _node_death(self, key, payload: Payload):
        bd_seq = _integer_metric(payload, BD_SEQ)
        if bd_seq is None:
            return None, MISSING_METRIC
        node = self.nodes.get(key)
        if node is None:
            return None, UNKNOWN_EDGE_NODE
        if bd_seq != node.bd_seq:
            return None, STALE_DEATH
        if not node.online:
            return None, DUPLICATE  # the death of this session again (its will after its own NDEATH)
        node.online = False
        return [], None

    def _device_birth(self, node: _NodeState, device: str, payload: Payload):
        declared = {m.name for m in payload.metrics}
        if self.required is not None and any(name not in declared for name in self.required(device)):
            return None, MISSING_METRIC
        # a rebirth of the device replaces what it declared before
        for alias in [a for a, (d, _) in node.aliases.items() if d == device]:
            del node.aliases[alias]
        for name in [k for k in node.metrics if k[0] == device]:
            del node.metrics[name]
        problem = _declare(node, device, payload.metrics)
        if problem:
            return None, problem
        node.devices[device] = True
        return [], None

    def _device_death(self, node: _NodeState, device: str):
        if device not in node.devices:
            return None, UNKNOWN_DEVICE
        node.devices[device] = False
        return [], None

    def _data(self, node: _NodeState, device: str | None, payload: Payload):
        readings = []
        for m in payload.metrics:
            if m.alias is not None:
                target = node.aliases.get(m.alias)
                if target is None or target[0] != device:
                    return None, UNKNOWN_ALIAS
                name = target[1]
                if m.name is not None and m.name != name:
                    return None, UNKNOWN_ALIAS
            elif m.name is not None:
                name = m.name
                if (device, name) not in node.metrics:
                    return None, UNKNOWN_ALIAS
            else:
                return None, MALFORMED
            datatype = node.metrics[device, name]
            if m.datatype is not None and m.datatype != datatype:
                return None, WRONG_TYPE
            value = m.value
            if m.datatype is None and value is not None:
                try:
                    value = _from_wire(datatype, m.wire_field, value)
                except MalformedPayload:
                    return None, WRONG_TYPE
            if value is None:
                continue  # a null says the device has no value now: nothing to apply
            stamp = m.timestamp_ms if m.timestamp_ms is not None else payload.timestamp_ms
            if stamp is None:
                return None, MALFORMED
            readings.append(Reading(device, name, stamp, value))
        return readings, None


def _integer_metric(payload: Payload, name: str) -> int | None:
    for m in payload.metrics:
        if m.name == name and isinstance(m.value, int) and not isinstance(m.value, bool):
            return m.value
    return None


def _declare(node: _NodeState, device: str | None, metrics: Sequence[Metric]) -> str | None:
    """Record a birth's metrics; a reason when one has no name or datatype, or reuses an alias."""
    for m in metrics:
        if m.name is None or m.datatype is None:
            return MALFORMED
        node.metrics[device, m.name] = m.datatype
        if m.alias is not None:
            if m.alias in node.aliases and node.aliases[m.alias] != (device, m.name):
                return MALFORMED  # two metrics of one edge node share an alias
            node.aliases[m.alias] = (device, m.name)
    return None
