"""The twin's own sensors published as hardware (``twin devices``).

Every household's water and power meter and smoke alarm, every building's water main and bin,
as the devices of a real community would report them, computed by the same sensor kernels the
twin runs. A day is simulated, then its readings go out tick by tick, paced at real time times
``speed``. A silent meter (NaN) publishes nothing: that is what a dropout looks like on the wire.

Two protocols:

- **sparkplug** (default): each building's gateway ``bldg-{b:03d}`` is a Sparkplug B edge node on
  its own MQTT connection (its own will, ``bdSeq`` and ``seq``). Two layouts:

  - ``device`` (default): each meter, alarm, main and bin is one of the gateway's devices and
    sends its own DDATA per tick, as Sparkplug gateways do (Ignition Edge, Cirrus Link's MQTT
    Transmission): a device is the unit the protocol births, kills and reports by exception, so
    the host can tell one silent meter from a silent gateway.
  - ``gateway``: the gateway reports all its devices' readings of a tick in one NDATA, each a
    gateway metric named ``{device}/{metric}`` (Sparkplug's folder convention). One message
    carries a building's hundred-odd readings, so the per-message cost (a publish and its
    acknowledgement each way) is paid once per building and tick instead of once per reading;
    a silent meter is simply absent from its gateway's message. A smoke alarm still goes out
    at its own minute.
- **json**: zigbee2mqtt's convention, one topic per device, ``zigbee2mqtt/{gateway}/{device}``
  (a friendly name with a slash, as zigbee2mqtt allows), a JSON object of readings plus
  ``last_seen`` (Unix ms, as zigbee2mqtt's epoch ``last_seen`` option writes it).

Wire time is Unix milliseconds: ``epoch_ms`` plus community minutes (:func:`wire_ms`). A reading
is stamped at its tick's end; a smoke alarm at its minute.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from live_bridge.registry import (BUILDING_KINDS, HOUSEHOLD_KINDS, METRIC_OF, device_name, gateway_metric_name,
                                  gateway_name, split_gateway_metric)
from live_bridge.sparkplug import DataType, EdgeNode, EdgeNodeLink, MetricSpec, now_ms

SPARKPLUG, JSON = "sparkplug", "json"
PROTOCOLS = (SPARKPLUG, JSON)
DEVICE, GATEWAY = "device", "gateway"
LAYOUTS = (DEVICE, GATEWAY)  # Sparkplug: a DDATA per device, or one NDATA per gateway and tick
JSON_BASE_TOPIC = "zigbee2mqtt"
BRIDGE_STATE_TOPIC = f"{JSON_BASE_TOPIC}/bridge/state"


# the Sparkplug datatype of each kind's one metric (names, metrics and units are the registry's)
DATATYPE_OF = {"water": DataType.Double, "power": DataType.Double, "smoke": DataType.Boolean,
               "main": DataType.Double, "bin": DataType.Double}


def wire_ms(epoch_ms: int, minutes: float) -> int:
    """The Unix milliseconds of a community minute."""
    return int(epoch_ms) + int(round(minutes * 60_000))


def community_minutes(epoch_ms: int, timestamp_ms: int) -> float:
    """The community minute of a wire timestamp (the inverse of :func:`wire_ms`)."""
    return (int(timestamp_ms) - int(epoch_ms)) / 60_000


def json_topic(gateway: str, device: str) -> str:
    return f"{JSON_BASE_TOPIC}/{gateway}/{device}"


def register_json_devices(registry) -> None:
    """Add the JSON twins of a registry's Sparkplug devices (what ``--protocol json`` publishes)."""
    for (gateway, device), dev in list(registry.sparkplug.items()):
        registry.add_json(json_topic(gateway, device), METRIC_OF[dev.kind], dev.kind, dev.index,
                          time_field="last_seen")


class Publication(NamedTuple):
    """One message in wire terms: a device's readings of one tick (or an alarm), or, with ``device``
    None, a gateway's message carrying its devices' readings as ``{device}/{metric}`` values."""

    gateway: str
    device: str | None
    values: dict
    timestamp_ms: int

    def kinds(self):
        """The kind of each reading it carries (water, power, smoke, main, bin)."""
        if self.device is not None:
            return [_kind_of(self.device)] * len(self.values)
        return [_kind_of(split_gateway_metric(name)[0]) for name in self.values]


def tick_publications(readings, hh_start: np.ndarray, hh_end: np.ndarray, k: int, epoch_ms: int):
    """Every device's report for tick ``k`` of a day's readings, gateway by gateway.

    Meters and buildings report at the tick's end, NaN (silent) reports nothing; a smoke
    alarm that goes off within the tick reports at its minute.
    """
    tick = float(readings.tick_minutes)
    t0 = readings.day * 1440.0 + k * tick
    t1 = t0 + tick
    stamp = wire_ms(epoch_ms, t1)
    for b in range(len(hh_start)):
        gateway = gateway_name(b)
        for h in range(int(hh_start[b]), int(hh_end[b])):
            for kind, value in (("water", readings.water[h, k]), ("power", readings.power[h, k])):
                if not math.isnan(value):
                    yield Publication(gateway, device_name(kind, h), {METRIC_OF[kind]: float(value)}, stamp)
            alarm = readings.smoke_t[h]
            if alarm >= 0 and t0 <= alarm < t1:
                yield Publication(gateway, device_name("smoke", h), {METRIC_OF["smoke"]: True},
                                  wire_ms(epoch_ms, alarm))
        for kind, array in (("main", readings.main_lph), ("bin", readings.bin_fill)):
            value = array[b, k]
            if not math.isnan(value):
                yield Publication(gateway, device_name(kind, b), {METRIC_OF[kind]: float(value)}, stamp)


def gateway_publications(readings, hh_start: np.ndarray, hh_end: np.ndarray, k: int, epoch_ms: int):
    """Tick ``k`` as gateways that carry their devices' readings in one message each (layout ``gateway``).

    The same readings as :func:`tick_publications`: the ones stamped at the tick's end go into
    their gateway's one message; a smoke alarm, stamped at its minute, goes alone.
    """
    values, gateway, stamp = {}, None, None
    for p in tick_publications(readings, hh_start, hh_end, k, epoch_ms):
        if p.gateway != gateway and values:
            yield Publication(gateway, None, values, stamp)
            values = {}
        gateway = p.gateway
        folded = {gateway_metric_name(p.device, metric): value for metric, value in p.values.items()}
        if _kind_of(p.device) == "smoke":
            yield Publication(gateway, None, folded, p.timestamp_ms)
        else:
            values.update(folded)
            stamp = p.timestamp_ms
    if values:
        yield Publication(gateway, None, values, stamp)


@dataclass
class Pacer:
    """Holds publishing to real time times ``speed`` (0: as fast as possible).

    Community minute ``start_minute`` is now; minute ``m`` is due ``(m - start_minute) * 60 / speed``
    seconds later. ``clock`` and ``sleep`` are time.monotonic and time.sleep but for tests.
    """

    speed: float
    start_minute: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    start: float = field(default=None)

    def __post_init__(self):
        if not (isinstance(self.speed, (int, float)) and self.speed >= 0 and math.isfinite(self.speed)):
            raise ValueError(f"speed {self.speed!r}: allowed values are 0 (as fast as possible) or a positive "
                             "multiple of real time")
        if self.start is None:
            self.start = self.clock()

    def wait_for(self, minute: float) -> None:
        if self.speed == 0:
            return
        due = self.start + (minute - self.start_minute) * 60.0 / self.speed
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)


def gateway_devices(building: int, hh_start, hh_end) -> dict[str, list[MetricSpec]]:
    """What a building's gateway births: each household's meters and alarm, the main and the bin."""
    devices = {device_name(kind, h): [MetricSpec(METRIC_OF[kind], DATATYPE_OF[kind])]
               for h in range(int(hh_start[building]), int(hh_end[building])) for kind in HOUSEHOLD_KINDS}
    devices.update({device_name(kind, building): [MetricSpec(METRIC_OF[kind], DATATYPE_OF[kind])]
                    for kind in BUILDING_KINDS})
    return devices


def gateway_metrics(building: int, hh_start, hh_end) -> list[MetricSpec]:
    """What a gateway of layout ``gateway`` births: its devices' metrics as its own, ``{device}/{metric}``."""
    return [MetricSpec(gateway_metric_name(device, spec.name), spec.datatype)
            for device, specs in gateway_devices(building, hh_start, hh_end).items() for spec in specs]


def check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: allowed values are {', '.join(LAYOUTS)}")


def edge_node(community: str, building: int, hh_start, hh_end, layout: str = DEVICE, **kwargs) -> EdgeNode:
    """A building's gateway as a Sparkplug B edge node of ``layout`` (see the module's docstring)."""
    check_layout(layout)
    if layout == DEVICE:
        return EdgeNode(community, gateway_name(building), gateway_devices(building, hh_start, hh_end), **kwargs)
    return EdgeNode(community, gateway_name(building), {}, node_metrics=gateway_metrics(building, hh_start, hh_end),
                    **kwargs)


def publications_of(layout: str):
    """How a tick's readings become messages for gateways of ``layout``: :func:`tick_publications`
    (a message per device) or :func:`gateway_publications` (a message per gateway)."""
    check_layout(layout)
    return gateway_publications if layout == GATEWAY else tick_publications


def publication_message(node: EdgeNode, p: Publication):
    """The Sparkplug message of a publication: its device's DDATA, or its gateway's NDATA."""
    if p.device is None:
        return node.node_data(p.values, p.timestamp_ms)
    return node.device_data(p.device, p.values, p.timestamp_ms)


class SparkplugGateways:
    """One Sparkplug B edge node per building, each on its own connection."""

    def __init__(self, url, community: str, hh_start: np.ndarray, hh_end: np.ndarray, qos: int = 1,
                 layout: str = DEVICE):
        self.links: dict[str, EdgeNodeLink] = {}
        self.publications = publications_of(layout)
        try:
            for b in range(len(hh_start)):
                node = edge_node(community, b, hh_start, hh_end, layout, qos=qos)
                self.links[node.edge_node] = EdgeNodeLink(node, url, client_id=f"twin-{community}-{node.edge_node}")
        except BaseException:
            self.close()
            raise

    def publish(self, p: Publication) -> None:
        self.links[p.gateway].send(lambda node: publication_message(node, p))

    def close(self) -> None:
        for link in self.links.values():
            link.close(clean=True)  # flushes, then the NDEATH: the gateways are switched off, not lost
        self.links = {}


class JsonDevices:
    """zigbee2mqtt-style devices: one client (a zigbee2mqtt bridge), a topic per device.

    Like zigbee2mqtt, the bridge says ``{"state":"online"}`` on ``zigbee2mqtt/bridge/state``
    (retained) when it starts and ``offline`` when it stops, or as its will when it is lost; the
    offline state comes after every device message on the same connection.
    """

    publications = staticmethod(tick_publications)  # a topic per device: one reading set per message

    def __init__(self, url, community: str):
        from live_bridge import mqtt

        offline = json.dumps({"state": "offline"})
        self.client = mqtt.connect(url, f"twin-{community}-zigbee2mqtt", clean_start=True,
                                   will=mqtt.Will(BRIDGE_STATE_TOPIC, offline, 1, True))
        self.client.wait_ready(30.0)
        self.publisher = mqtt.Publisher(self.client)
        self.publisher.publish(BRIDGE_STATE_TOPIC, json.dumps({"state": "online"}), qos=1, retain=True)

    def publish(self, p: Publication) -> None:
        body = {**p.values, "last_seen": p.timestamp_ms}
        self.publisher.publish(json_topic(p.gateway, p.device), json.dumps(body, separators=(",", ":")), qos=1)

    def close(self) -> None:
        from live_bridge import mqtt

        self.publisher.publish(BRIDGE_STATE_TOPIC, json.dumps({"state": "offline"}), qos=1, retain=True)
        self.publisher.flush(60.0)
        mqtt.close(self.client)


def device_sink(url, protocol: str, community: str, hh_start, hh_end, layout: str = DEVICE):
    """The devices of a community on the broker at ``url``, speaking ``protocol`` (Sparkplug gateways of
    ``layout``, or zigbee2mqtt JSON); close it when done."""
    if protocol == SPARKPLUG:
        return SparkplugGateways(url, community, hh_start, hh_end, layout=layout)
    return JsonDevices(url, community)


@dataclass
class DevicesSummary:
    """What a run published: messages, readings in all and per device kind; seconds in all
    (simulation and connections included) and spent publishing (pacing included)."""

    days: int = 0
    messages: int = 0
    readings: int = 0
    by_kind: dict = field(default_factory=dict)  # readings
    seconds: float = 0.0
    publish_seconds: float = 0.0

    def line(self) -> str:
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(self.by_kind.items()))
        rate = self.messages / self.publish_seconds if self.publish_seconds > 0 else 0.0
        return (f"published {self.readings:,} readings in {self.messages:,} messages over {self.days} day(s) in "
                f"{self.seconds:.1f} s ({rate:,.0f} messages/s while publishing): {kinds}")


def _kind_of(device: str) -> str:
    return device.rsplit("-", 1)[-1]


def publish_day(readings, hh_start, hh_end, pacer: Pacer, sink, epoch_ms: int, summary: DevicesSummary,
                bar=None) -> None:
    """Publish one day's readings through ``sink`` tick by tick, paced, counting into ``summary``."""
    publishing = time.perf_counter()
    for k in range(readings.water.shape[1]):
        pacer.wait_for(readings.day * 1440.0 + (k + 1) * readings.tick_minutes)
        for p in sink.publications(readings, hh_start, hh_end, k, epoch_ms):
            sink.publish(p)
            summary.messages += 1
            for kind in p.kinds():
                summary.by_kind[kind] = summary.by_kind.get(kind, 0) + 1
            summary.readings += len(p.values)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(day=readings.day, messages=summary.messages, refresh=False)
    summary.publish_seconds += time.perf_counter() - publishing
    summary.days += 1


def publish_devices(cfg, url, protocol: str = SPARKPLUG, speed: float = 1.0, epoch_ms: int | None = None,
                    community: str = "c1", progress: bool = True,
                    on_day: Callable | None = None, layout: str = DEVICE) -> DevicesSummary:
    """Run the twin of ``cfg`` day by day and publish every device's readings to the broker at ``url``.

    ``on_day(readings)`` sees each day's :class:`agents.sensors.DayReadings` before it is published.
    """
    from twin.engine.twin import Twin
    from twin.warmup import compile_notice

    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r}: allowed values are {', '.join(PROTOCOLS)}")
    check_layout(layout)
    epoch_ms = now_ms() if epoch_ms is None else int(epoch_ms)
    twin = Twin(cfg)
    days = int(cfg.sim.days)
    sink = device_sink(url, protocol, community, twin.hh_start, twin.hh_end, layout)
    summary = DevicesSummary()
    bar = None
    started = time.perf_counter()
    try:
        # the community's clock: minute m is due at epoch + m / speed (the shadow keeps the same time)
        pacer = Pacer(speed, 0.0, start=time.monotonic() + (epoch_ms - now_ms()) / 1000.0)
        for _ in range(days):
            with compile_notice():  # the first day compiles what the cache lacks
                twin.step()
            readings = twin.readings
            if on_day is not None:
                on_day(readings)
            n_ticks = readings.water.shape[1]
            if bar is None and progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=days * n_ticks, desc=f"devices ({protocol})", unit="tick", file=sys.stderr,
                           leave=False)
            publish_day(readings, twin.hh_start, twin.hh_end, pacer, sink, epoch_ms, summary, bar)
    finally:
        if bar is not None:
            bar.close()
        sink.close()
    summary.seconds = time.perf_counter() - started
    return summary


# ----------------------------------------------------------------------------------- command line
def add_command(sub) -> None:
    """``twin devices``, registered on the CLI's subparsers."""
    p = sub.add_parser("devices", help="publish the twin's sensors as hardware on MQTT (Sparkplug B or JSON)",
                       description="Simulate the scenario day by day and publish every household meter, smoke "
                                   "alarm, building main and bin as devices would: Sparkplug B edge nodes (one per "
                                   "building) or zigbee2mqtt-style JSON, paced at real time times --speed. Without "
                                   "--broker an embedded broker runs for as long as the command does.")
    p.add_argument("-s", "--scenario", default="default", help="a shipped scenario (see `twin scenarios`)")
    p.add_argument("--broker", default=None, metavar="URL",
                   help="mqtt://[user:pass@]host[:port] or mqtts://... (default: an embedded broker)")
    p.add_argument("--ca", default=None, help="CA file for an mqtts:// broker")
    p.add_argument("--cert", default=None, help="client certificate for an mqtts:// broker")
    p.add_argument("--key", default=None, help="the client certificate's key")
    p.add_argument("--protocol", choices=PROTOCOLS, default=SPARKPLUG, help="how the devices speak")
    p.add_argument("--layout", choices=LAYOUTS, default=DEVICE,
                   help="Sparkplug: a DDATA per device and tick, or one NDATA per gateway and tick carrying "
                        "its devices' readings as device/metric")
    p.add_argument("--speed", type=float, default=1.0,
                   help="community time per real time (60: an hour a minute; 0: as fast as possible)")
    p.add_argument("--days", type=int, default=None, help="days to publish (default: the scenario's sim.days)")
    p.add_argument("--epoch", type=int, default=None, metavar="MS",
                   help="Unix milliseconds of community minute 0 (default: now, at the start)")
    p.add_argument("--community", default="c1", help="community id: the Sparkplug group")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="overrides, e.g. community.households=500 seed=7")
    p.set_defaults(func=cmd_devices)


def check_pace_options(speed: float, days: int | None) -> None:
    """``--speed`` and ``--days`` as ``twin devices`` and ``twin emulate`` take them; ValueError naming the bad one."""
    if speed < 0 or not math.isfinite(speed):
        raise ValueError(f"--speed {speed:g}: allowed values are 0 (as fast as possible) or more")
    if days is not None and days < 1:
        raise ValueError(f"--days {days}: allowed values are 1 or more")


def cmd_devices(args) -> int:
    from twin.config import load_scenario

    check_pace_options(args.speed, args.days)
    overrides = list(args.overrides) + ([f"sim.days={args.days}"] if args.days is not None else [])
    cfg = load_scenario(args.scenario, overrides)
    try:
        summary = _publish_on_broker(args, cfg)
    except TimeoutError as e:  # a broker that never answered: a network error, not a bug
        raise ConnectionError(str(e)) from None
    print(f"devices: {summary.line()}")
    return 0


def _publish_on_broker(args, cfg) -> DevicesSummary:
    from live_bridge.brokers import broker

    with broker(args.broker, ca=args.ca, cert=args.cert, key=args.key) as url:
        where = f"{url} (embedded broker)" if args.broker is None else str(url)
        print(f"devices: scenario {cfg.name!r}, {cfg.community.households:,} households in "
              f"{cfg.community.buildings:,} buildings, {cfg.sim.days} day(s), as {args.protocol} on {where}, "
              f"speed {'as fast as possible' if args.speed == 0 else f'{args.speed:g}x'}", file=sys.stderr)
        return publish_devices(cfg, url, protocol=args.protocol, speed=args.speed, epoch_ms=args.epoch,
                               community=args.community, progress=bool(cfg.progress), layout=args.layout)
