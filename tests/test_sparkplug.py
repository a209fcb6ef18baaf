"""Sparkplug B: the compiled payload definition, topics, the codec, an edge node's session, the
host's view with every refusal reason, and interop with Eclipse Tahu's own edge node on Mosquitto.
"""
import queue
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from live_bridge import sparkplug as sp
from live_bridge import sparkplug_b_pb2 as pb
from live_bridge.sparkplug import DataType as T
from live_bridge.sparkplug import Metric, MetricSpec

ROOT = Path(__file__).resolve().parent.parent
EDGE_NODE_JS = ROOT / "live_bridge" / "edge_node"
WAIT_S = 60  # how long a test waits for a message before it says which one never came


# ------------------------------------------------------------------------- the generated module
def test_committed_module_is_what_protoc_makes_of_the_definition(tmp_path):
    from grpc_tools import protoc

    rc = protoc.main(["protoc", f"--proto_path={ROOT}", f"--python_out={tmp_path}",
                      str(ROOT / "live_bridge" / "sparkplug_b.proto")])
    assert rc == 0
    fresh = (tmp_path / "live_bridge" / "sparkplug_b_pb2.py").read_text()
    committed = (ROOT / "live_bridge" / "sparkplug_b_pb2.py").read_text()
    assert fresh == committed, ("live_bridge/sparkplug_b_pb2.py is not what grpcio-tools makes of sparkplug_b.proto: "
                                "regenerate it (see the command at the top of the .proto), never edit it")


def _version(text):
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def test_gencode_fits_the_installed_runtime_and_the_declared_lower_bound():
    import google.protobuf

    source = (ROOT / "live_bridge" / "sparkplug_b_pb2.py").read_text()
    call = re.search(r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+)",
                     source)
    assert call, "the generated module no longer checks its runtime: look at the gencode again"
    gencode = tuple(int(x) for x in call.groups())
    assert _version(google.protobuf.__version__) >= gencode  # it imported above, so this holds; said for the record
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    bound = next(d for d in dependencies if re.match(r"protobuf\b", d))
    lower = _version(bound.split(">=")[1])
    # the runtime refuses gencode newer than itself, so the least version pip may pick must be new enough
    assert lower >= gencode, f"pyproject says {bound!r}, but the committed gencode needs protobuf>={'.'.join(map(str, gencode))}"
    assert lower[0] == gencode[0], f"{bound!r}: a runtime of another major version than the gencode's"
    assert pb.Payload.DESCRIPTOR.full_name == "org.eclipse.tahu.protobuf.Payload"


def test_the_datatypes_are_the_specifications():
    assert (T.Int8, T.UInt64, T.Double, T.Boolean, T.String, T.DateTime, T.Template, T.DateTimeArray) == \
        (1, 8, 10, 11, 12, 13, 19, 34)
    assert len(T) == 35


# ----------------------------------------------------------------------------------------- topics
def test_topics_round_trip():
    assert sp.topic("c1", "NBIRTH", "bldg-000") == "spBv1.0/c1/NBIRTH/bldg-000"
    assert sp.topic("c1", "DDATA", "bldg-001", "main") == "spBv1.0/c1/DDATA/bldg-001/main"
    for kind in sp.MESSAGE_TYPES:
        device = "hh-00007-water" if kind in sp.DEVICE_MESSAGES else None
        text = sp.topic("c1", kind, "bldg-002", device)
        assert sp.parse_topic(text) == sp.SparkplugTopic(kind, "c1", "bldg-002", device)
    assert sp.parse_topic(sp.state_topic("bridge-1")) == sp.SparkplugTopic("STATE", host_id="bridge-1")


@pytest.mark.parametrize("text", ["", "spBv1.0", "spBv1.0/c1/NBIRTH", "spBv1.0/c1/NBIRTH/a/b", "spBv1.0/c1/DDATA/a",
                                  "spAv1.0/c1/NDATA/a", "spBv1.0/c1/XDATA/a", "spBv1.0/c1//a", "zigbee2mqtt/x",
                                  "spBv1.0/STATE/a/b"])
def test_parse_topic_refuses_what_is_not_sparkplug(text):
    assert sp.parse_topic(text) is None


def test_topic_errors_name_the_key_and_the_allowed_values():
    with pytest.raises(ValueError, match="message_type 'NFOO'.*NBIRTH, NDATA"):
        sp.topic("c1", "NFOO", "n")
    with pytest.raises(ValueError, match="device"):
        sp.topic("c1", "DDATA", "n")
    with pytest.raises(ValueError, match="device"):
        sp.topic("c1", "NDATA", "n", "d")
    with pytest.raises(ValueError, match="edge_node 'a/b'"):
        sp.topic("c1", "NDATA", "a/b")


# ------------------------------------------------------------------------------------------ codec
INT_TYPES = [(T.Int8, -128, 127), (T.Int16, -2**15, 2**15 - 1), (T.Int32, -2**31, 2**31 - 1),
             (T.Int64, -2**63, 2**63 - 1), (T.UInt8, 0, 255), (T.UInt16, 0, 2**16 - 1),
             (T.UInt32, 0, 2**32 - 1), (T.UInt64, 0, 2**64 - 1), (T.DateTime, 0, 2**64 - 1)]


@pytest.mark.parametrize("datatype,low,high", INT_TYPES)
@given(data=st.data())
def test_integers_round_trip_across_their_whole_range(datatype, low, high, data):
    value = data.draw(st.one_of(st.sampled_from([low, high, 0, -1 if low < 0 else 1]), st.integers(low, high)))
    decoded = sp.decode(sp.encode([Metric("x", value, datatype)]))
    assert decoded.metrics[0].value == value and decoded.metrics[0].datatype == datatype


@pytest.mark.parametrize("datatype,value", [(T.Double, 0.1), (T.Double, -1e300), (T.Float, 0.5), (T.Boolean, True),
                                            (T.Boolean, False), (T.String, "héllo"), (T.Text, ""),
                                            (T.UUID, "0b6e4c52-1f1a-4b8e-9f10-5d0b0a4f2e11"), (T.Bytes, b"\x00\xff")])
def test_other_values_round_trip(datatype, value):
    payload = sp.decode(sp.encode([Metric("x", value, datatype, alias=7, timestamp_ms=1234)], seq=9,
                                  timestamp_ms=99))
    assert (payload.seq, payload.timestamp_ms) == (9, 99)
    assert payload.metrics[0] == Metric("x", value, datatype, 7, 1234)


def test_null_is_null_and_absent_fields_are_none():
    payload = sp.decode(sp.encode([Metric("x", None, T.Double)]))
    assert payload.metrics[0].value is None and payload.seq is None and payload.timestamp_ms is None


def _raw_metric(**fields):
    payload = pb.Payload()
    payload.metrics.add(name="x", **fields)
    return payload.SerializeToString()


@pytest.mark.parametrize("datatype,raw,value", [(T.Int8, 0xFFFFFFFF, -1), (T.Int8, 0xFF, -1), (T.Int8, 0x80, -128),
                                                (T.Int16, 0xFFFF8000, -32768), (T.Int16, 0x8000, -32768),
                                                (T.Int32, 0x80000000, -2**31)])
def test_negative_small_integers_decode_from_either_form(datatype, raw, value):
    # Eclipse Tahu sign-extends to 32 bits, others send the datatype's own width: the spec allows both
    assert sp.decode(_raw_metric(datatype=datatype, int_value=raw)).metrics[0].value == value


@pytest.mark.parametrize("fields", [dict(datatype=T.Int8, int_value=0x100), dict(datatype=T.UInt8, int_value=256),
                                    dict(datatype=T.Int16, int_value=0xFFFF0000),
                                    dict(datatype=T.Double, int_value=3), dict(datatype=T.Boolean, string_value="1")])
def test_a_value_that_contradicts_its_datatype_is_malformed(fields):
    with pytest.raises(sp.MalformedPayload, match="metric 'x'"):
        sp.decode(_raw_metric(**fields))


@pytest.mark.parametrize("data", [b"\xff\xff\xff", b"\x12\x05\x0a\x01", b"\x08", bytes(range(256))])
def test_bytes_that_are_no_payload_are_malformed(data):
    with pytest.raises(sp.MalformedPayload):
        sp.decode(data)


@pytest.mark.parametrize("metric,message", [
    (Metric("level", 128, T.Int8), r"'level': 128 is outside Int8's range -128..127"),
    (Metric("level", -1, T.UInt32), r"outside UInt32's range"),
    (Metric("level", 1.5, T.Int32), r"'level': Int32 needs an integer"),
    (Metric("level", "x", T.Double), r"'level': 'x' is not a Double"),
    (Metric("level", 1, 99), r"datatype 99 is not a Sparkplug B datatype"),
    (Metric("level", 1, T.DataSet), r"DataSet cannot be encoded here; allowed: Int8"),
    (Metric("level", 1, None), r"datatype is required"),
    (Metric(None, 1, T.Int8), r"a name or an alias"),
])
def test_encoding_errors_name_the_metric_and_what_is_allowed(metric, message):
    with pytest.raises(ValueError, match=message):
        sp.encode([metric])


def test_encode_refuses_a_seq_outside_a_byte():
    with pytest.raises(ValueError, match="seq 256: allowed values are 0..255"):
        sp.encode([], seq=256)


# -------------------------------------------------------------------------------------- edge node
def _node(**kwargs):
    devices = {"main": [MetricSpec("flow_lph", T.Double)],
               "hh-00001-smoke": [MetricSpec("alarm", T.Boolean, False), MetricSpec("battery", T.UInt8, 90)]}
    return sp.EdgeNode("c1", "bldg-000", devices, node_metrics=[MetricSpec("uptime_s", T.UInt64, 0)],
                       clock=lambda: 1_000, **kwargs)


def test_births_declare_bdseq_names_aliases_and_datatypes():
    node = _node()
    with pytest.raises(RuntimeError, match="connection_will"):
        node.births()
    will = node.connection_will()
    assert will.topic == "spBv1.0/c1/NDEATH/bldg-000" and will.qos == 1
    nbirth, *dbirths = node.births()
    assert nbirth.topic == "spBv1.0/c1/NBIRTH/bldg-000"
    born = sp.decode(nbirth.payload)
    assert born.seq == 0
    assert {m.name: (m.value, m.datatype) for m in born.metrics} == {
        "bdSeq": (0, T.UInt64), "Node Control/Rebirth": (False, T.Boolean), "uptime_s": (0, T.UInt64)}
    assert [d.topic.rsplit("/", 1)[1] for d in dbirths] == ["main", "hh-00001-smoke"]
    smoke = sp.decode(dbirths[1].payload)
    assert smoke.seq == 2
    assert [(m.name, m.alias, m.datatype, m.value) for m in smoke.metrics] == [
        ("alarm", 3, T.Boolean, False), ("battery", 4, T.UInt8, 90)]
    assert sp.decode(will.payload).metrics[0] == Metric("bdSeq", 0, T.UInt64)


def test_data_goes_by_alias_and_seq_wraps_after_255():
    node = _node()
    node.connection_will()
    node.births()  # seq 0, 1, 2
    seqs = []
    for i in range(300):
        message = node.device_data("main", {"flow_lph": float(i)}, timestamp_ms=5_000 + i)
        payload = sp.decode(message.payload)
        seqs.append(payload.seq)
        (metric,) = payload.metrics
        assert (metric.name, metric.alias, metric.value, metric.timestamp_ms) == (None, 2, float(i), 5_000 + i)
    assert seqs == [(3 + i) % 256 for i in range(300)]
    assert seqs[253:255] == [0, 1]


def test_each_connection_has_the_next_bdseq_and_its_death_carries_it():
    node = _node()
    deaths = [sp.decode(node.connection_will().payload).metrics[0].value for _ in range(3)]
    assert deaths == [0, 1, 2]
    births = sp.decode(node.births()[0].payload)
    assert next(m.value for m in births.metrics if m.name == "bdSeq") == 2
    assert sp.decode(node.death().payload).metrics[0].value == 2


def test_a_rebirth_command_republishes_the_births_with_seq_from_zero():
    node = _node()
    node.connection_will()
    node.births()
    node.device_data("main", {"flow_lph": 1.0})
    command = sp.rebirth_command("c1", "bldg-000")
    again = node.command(command.topic, command.payload)
    assert [m.topic.split("/")[2] for m in again] == ["NBIRTH", "DBIRTH", "DBIRTH"]
    assert [sp.decode(m.payload).seq for m in again] == [0, 1, 2]
    # anything else is not a rebirth
    other = sp.encode([Metric("Node Control/Reboot", True, T.Boolean)])
    assert node.command(command.topic, other) == []
    assert node.command("spBv1.0/c1/NCMD/bldg-001", command.payload) == []
    assert node.command(command.topic, b"\xff") == []


def test_an_edge_node_refuses_undeclared_metrics_and_devices():
    node = _node()
    node.connection_will()
    with pytest.raises(ValueError, match="metric 'litres' of main: not declared; declared: \\['flow_lph'\\]"):
        node.device_data("main", {"litres": 1.0})
    with pytest.raises(ValueError, match="device 'bin': not one of bldg-000's devices"):
        node.device_data("bin", {"fill": 0.5})
    with pytest.raises(ValueError, match="qos 2: allowed values are 0, 1"):
        _node(qos=2)


# ----------------------------------------------------------------------------------- host session
class Wire:
    """An edge node's messages fed to a host session, one by one, as they would arrive."""

    def __init__(self, required=None):
        self.node = _node()
        self.host = sp.HostSession("c1", required=required)
        self.will = self.node.connection_will()

    def feed(self, message):
        return self.host.accept(message.topic, message.payload)

    def born(self):
        for message in self.node.births():
            assert self.feed(message) == ([], None)
        return self

    def data(self, value=1.0, t=5_000):
        return self.node.device_data("main", {"flow_lph": value}, timestamp_ms=t)


def test_births_then_data_become_readings():
    wire = Wire().born()
    assert wire.host.online("bldg-000") and wire.host.online("bldg-000", "main")
    assert wire.feed(wire.data(12.5, 7_000)) == ([sp.Reading("main", "flow_lph", 7_000, 12.5)], None)
    smoke = wire.node.device_data("hh-00001-smoke", {"alarm": True, "battery": 80}, timestamp_ms=8_000)
    assert wire.feed(smoke) == ([sp.Reading("hh-00001-smoke", "alarm", 8_000, True),
                                 sp.Reading("hh-00001-smoke", "battery", 8_000, 80)], None)
    assert wire.feed(wire.node.node_data({"uptime_s": 60}, 9_000)) == ([sp.Reading(None, "uptime_s", 9_000, 60)], None)
    assert wire.host.take_rebirths() == []


def test_data_before_any_birth_is_from_an_unknown_edge_node_and_asks_for_a_rebirth():
    wire = Wire()
    wire.node.births()  # published before the host listened
    assert wire.feed(wire.data()) == (None, sp.UNKNOWN_EDGE_NODE)
    assert wire.feed(wire.data()) == (None, sp.UNKNOWN_EDGE_NODE)
    (request,) = wire.host.take_rebirths()  # one request, not one per message
    assert request.topic == "spBv1.0/c1/NCMD/bldg-000"
    for message in wire.node.command(request.topic, request.payload):
        assert wire.feed(message) == ([], None)
    assert wire.feed(wire.data(3.0))[1] is None


def test_a_lost_message_is_a_sequence_gap_whose_data_still_applies():
    wire = Wire().born()
    wire.data()  # lost on the way
    readings, reason = wire.feed(wire.data(2.0, 6_000))
    assert reason == sp.SEQUENCE_GAP and readings == [sp.Reading("main", "flow_lph", 6_000, 2.0)]
    assert len(wire.host.take_rebirths()) == 1
    assert wire.feed(wire.data(3.0)) == ([sp.Reading("main", "flow_lph", 5_000, 3.0)], None)  # in step again


def test_a_redelivered_message_is_a_duplicate():
    wire = Wire().born()
    message = wire.data()
    assert wire.feed(message)[1] is None
    assert wire.feed(message) == (None, sp.DUPLICATE)
    assert wire.feed(wire.data())[1] is None


def test_a_stale_death_is_ignored_and_the_current_one_takes_the_node_offline():
    wire = Wire().born()
    old_will = wire.will
    new_will = wire.node.connection_will()  # the gateway reconnected: a new session, bdSeq 1
    wire.born()
    assert wire.feed(old_will) == (None, sp.STALE_DEATH)  # the broker's late will of the old session
    assert wire.host.online("bldg-000", "main")
    assert wire.feed(new_will) == ([], None)
    assert not wire.host.online("bldg-000") and wire.host.devices("bldg-000") == {
        "main": False, "hh-00001-smoke": False}
    assert wire.feed(new_will) == (None, sp.DUPLICATE)
    assert wire.feed(wire.data()) == (None, sp.UNKNOWN_EDGE_NODE)  # a dead node's data is not applied


def test_a_device_death_takes_only_that_device_offline():
    wire = Wire().born()
    assert wire.feed(wire.node.device_death("main")) == ([], None)
    assert wire.host.devices("bldg-000") == {"main": False, "hh-00001-smoke": True}
    assert wire.feed(wire.data()) == (None, sp.UNKNOWN_DEVICE)
    stray = sp.Message(sp.topic("c1", "DDATA", "bldg-000", "bin"),
                       sp.encode([Metric("fill", 0.5, T.Double)], seq=5, timestamp_ms=1))
    assert wire.feed(stray) == (None, sp.UNKNOWN_DEVICE)


def _ddata(device, metrics, seq):
    return sp.Message(sp.topic("c1", "DDATA", "bldg-000", device), sp.encode(metrics, seq=seq, timestamp_ms=42))


def test_an_alias_no_birth_declared_is_unknown():
    wire = Wire().born()
    assert wire.feed(_ddata("main", [Metric(None, 1.0, T.Double, alias=99)], 3)) == (None, sp.UNKNOWN_ALIAS)
    # an alias of another device of the same node is no better
    assert wire.feed(_ddata("main", [Metric(None, True, T.Boolean, alias=3)], 4)) == (None, sp.UNKNOWN_ALIAS)
    assert wire.feed(_ddata("main", [Metric("pressure", 1.0, T.Double)], 5)) == (None, sp.UNKNOWN_ALIAS)
    assert wire.feed(_ddata("main", [Metric("flow_lph", 1.0, T.Double)], 6)) == (
        [sp.Reading("main", "flow_lph", 42, 1.0)], None)  # by name is fine


def test_a_metric_whose_datatype_differs_from_its_birth_is_the_wrong_type():
    wire = Wire().born()
    assert wire.feed(_ddata("main", [Metric(None, 1, T.Int32, alias=2)], 3)) == (None, sp.WRONG_TYPE)
    # without a datatype (data may leave it out) the value's field must still be the birth's
    raw = pb.Payload(seq=4, timestamp=42)
    raw.metrics.add(alias=2, int_value=5)
    assert wire.host.accept(sp.topic("c1", "DDATA", "bldg-000", "main"), raw.SerializeToString()) == (
        None, sp.WRONG_TYPE)
    good = pb.Payload(seq=5, timestamp=42)
    good.metrics.add(alias=2, double_value=5.5)
    assert wire.host.accept(sp.topic("c1", "DDATA", "bldg-000", "main"), good.SerializeToString()) == (
        [sp.Reading("main", "flow_lph", 42, 5.5)], None)


def test_births_and_deaths_without_what_they_must_carry_are_missing_a_metric():
    host = sp.HostSession("c1")
    no_bdseq = sp.encode([Metric("Node Control/Rebirth", False, T.Boolean)], seq=0, timestamp_ms=1)
    assert host.accept("spBv1.0/c1/NBIRTH/n", no_bdseq) == (None, sp.MISSING_METRIC)
    assert host.accept("spBv1.0/c1/NDEATH/n", sp.encode([], timestamp_ms=1)) == (None, sp.MISSING_METRIC)
    wire = Wire(required=lambda device: ["flow_lph", "pressure"] if device == "main" else [])
    nbirth, main_birth, smoke_birth = wire.node.births()
    assert wire.feed(nbirth) == ([], None)
    assert wire.feed(main_birth) == (None, sp.MISSING_METRIC)
    assert wire.feed(smoke_birth) == ([], None)
    assert not wire.host.online("bldg-000", "main") and wire.host.online("bldg-000", "hh-00001-smoke")


@pytest.mark.parametrize("topic_text,data", [
    ("spBv1.0/c1/DDATA/bldg-000/main", b"\xff\x01"),
    ("not/sparkplug", b""),
    ("spBv1.0/c2/DDATA/bldg-000/main", b""),  # another community's group
    ("spBv1.0/c1/DDATA/bldg-000/main", sp.encode([Metric(None, 1.0, T.Double, alias=2)], timestamp_ms=1)),  # no seq
    ("spBv1.0/c1/DDATA/bldg-000/main", sp.encode([Metric(None, 1.0, T.Double, alias=2)], seq=3)),  # no timestamp
])
def test_malformed_messages_are_refused_and_the_node_stays_as_it_was(topic_text, data):
    wire = Wire().born()
    assert wire.host.accept(topic_text, data) == (None, sp.MALFORMED)
    assert wire.host.online("bldg-000", "main")


def test_every_reason_is_one_constant():
    assert len(set(sp.REASONS)) == len(sp.REASONS) == 9
    assert all(re.fullmatch(r"[a-z_]+", r) for r in sp.REASONS)


# ----------------------------------------------------------------------------------- on the wire
@pytest.fixture(scope="module")
def broker(require_tool):
    from live_bridge.brokers import Mosquitto, mosquitto_missing

    require_tool("mosquitto", mosquitto_missing())
    with Mosquitto() as running:
        yield running


class Listener:
    """A host on the broker: every Sparkplug message of group c1 into a HostSession, in arrival order."""

    def __init__(self, url, client_id=""):
        from live_bridge import mqtt

        self.host = sp.HostSession("c1")
        self.seen = queue.Queue()
        self.client = mqtt.connect(url, client_id, subscriptions=["spBv1.0/c1/#"], on_message=self._on_message)
        self.client.wait_ready(WAIT_S)

    def _on_message(self, client, userdata, msg):
        self.seen.put((msg.topic, *self.host.accept(msg.topic, msg.payload)))

    def until(self, kind, count=1):
        """Messages up to and including the ``count``-th of ``kind``."""
        got = []
        while sum(t.split("/")[2] == kind for t, *_ in got) < count:
            try:
                got.append(self.seen.get(timeout=WAIT_S))
            except queue.Empty:
                pytest.fail(f"no {kind} #{count} within {WAIT_S} s; got {[t for t, *_ in got]}")
        return got

    def close(self):
        from live_bridge import mqtt

        mqtt.close(self.client)


def test_our_edge_node_on_mosquitto_births_publishes_and_dies_with_its_will(broker):
    listener = Listener(broker.url)
    link = sp.EdgeNodeLink(_node(), broker.url, client_id="edge-test-1")
    try:
        for i in range(5):
            link.send(lambda node, i=i: node.device_data("main", {"flow_lph": float(i)}, timestamp_ms=10_000 + i))
        assert link.flush(WAIT_S)
        got = listener.until("DDATA", 5)
        assert [t.split("/")[2] for t, *_ in got] == ["NBIRTH", "DBIRTH", "DBIRTH"] + ["DDATA"] * 5
        assert all(reason is None for _, _, reason in got)
        assert [r for _, readings, _ in got for r in readings] == [
            sp.Reading("main", "flow_lph", 10_000 + i, float(i)) for i in range(5)]
        link.close(clean=False)  # the power goes: the broker publishes the will
        (death,) = listener.until("NDEATH")
        assert death[1:] == ([], None) and not listener.host.online("bldg-000")
    finally:
        listener.close()


def test_after_a_broker_restart_the_edge_node_is_born_again_with_the_next_bdseq(broker):
    # a persistent session, kept by the broker across its restart: the births wait for the listener
    listener = Listener(broker.url, client_id="host-test-2")
    node = _node()
    link = sp.EdgeNodeLink(node, broker.url, client_id="edge-test-2")
    try:
        listener.until("DBIRTH", 2)
        assert listener.host.nodes["c1", "bldg-000"].bd_seq == node.bd_seq
        first = node.bd_seq
        broker.stop()
        broker.start()
        listener.until("DBIRTH", 2)  # both clients reconnect on their own
        assert node.bd_seq > first
        assert listener.host.nodes["c1", "bldg-000"].bd_seq == node.bd_seq and listener.host.online("bldg-000")
        link.close()
        deaths = [m for m in listener.until("NDEATH") if m[0].endswith("NDEATH/bldg-000")]
        # the new session's death is taken: by this message, or by a copy of it that came first (a QoS 1
        # redelivery across the restart, or the will after the node's own NDEATH), which makes this one a
        # duplicate; never stale (an old bdSeq), and the node ends offline
        assert deaths and all(d[1:] in (([], None), (None, sp.DUPLICATE)) for d in deaths), deaths
        assert not listener.host.online("bldg-000")
    finally:
        listener.close()


def _tahu_missing():
    if shutil.which("node") is None:
        return "node is not installed (Node.js 18 or later)"
    if not (EDGE_NODE_JS / "node_modules" / "sparkplug-client").is_dir():
        return "live_bridge/edge_node/node_modules is missing: npm ci --prefix live_bridge/edge_node"
    return None


@pytest.mark.parametrize("ending", ["stop", "kill"])
def test_eclipse_tahus_edge_node_is_understood(broker, ending, require_tool):
    """Births, data by alias and by name, seq, a rebirth and the death, from a client we did not write."""
    require_tool("sparkplug-client (npm)", _tahu_missing())
    listener = Listener(broker.url)
    count = 6
    node = subprocess.Popen(["node", str(EDGE_NODE_JS / "edge_node.js"), broker.url, "c1", "tahu-gw", "meter-1",
                             str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert node.stdout.readline().strip() == f"published {count}"
        got = listener.until("DDATA", count)
        assert [t.split("/")[2] for t, *_ in got] == ["NBIRTH", "DBIRTH"] + ["DDATA"] * count
        assert all(reason is None for _, _, reason in got), got  # so every seq was the one expected
        readings = [r for _, rs, _ in got for r in rs]
        t0 = 1_700_000_000_000
        assert readings == [r for i in range(count) for r in (sp.Reading("meter-1", "litres", t0 + 60_000 * i, 1.5 * i),
                                                              sp.Reading("meter-1", "level", t0 + 60_000 * i, 2 - i))]
        bd_seq = listener.host.nodes["c1", "tahu-gw"].bd_seq
        assert listener.host.devices("tahu-gw") == {"meter-1": True}

        request = sp.rebirth_command("c1", "tahu-gw")
        listener.client.publish(request.topic, request.payload, qos=0)
        assert node.stdout.readline().strip() == "reborn"
        reborn = listener.until("DBIRTH")
        assert [(t.split("/")[2], reason) for t, _, reason in reborn if "NCMD" not in t] == [
            ("NBIRTH", None), ("DBIRTH", None)]

        if ending == "stop":
            node.stdin.write("stop\n")
            node.stdin.flush()
        else:
            node.kill()  # the broker publishes its last will
        (death,) = [m for m in listener.until("NDEATH")]
        assert death[1:] == ([], None), "the death's bdSeq must be the birth's"
        assert listener.host.nodes["c1", "tahu-gw"].bd_seq == bd_seq
        assert not listener.host.online("tahu-gw") and listener.host.devices("tahu-gw") == {"meter-1": False}
    finally:
        if node.poll() is None:
            node.kill()
        node.wait()
        listener.close()

