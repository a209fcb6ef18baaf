"""A whole production community on one machine (``twin emulate``): the stand-in the shadow is tested against.

Production is played by a :class:`~twin.engine.twin.Twin` of the scenario with production's
differences from the twin applied (:func:`production_config`: technicians slower than the twin
assumes, device faults, any override). It runs all its days first, fast, for two things it keeps:
its event log and each day's :class:`~agents.sensors.DayReadings`. Then, day by day:

1. **People act through the production server.** A real ``twin serve`` app (a fresh store, the
   community's roster, an account per person who acts) runs in this process, served by uvicorn on
   127.0.0.1. Residents and staff replay the production twin's repair life cycle over HTTP, one
   request at a time in time order: the reporter submits, the coordinator dispatches to the
   technician, that technician starts and completes, the reporter rates. The server's clock is
   the emulator's (:class:`EmulatedClock`), set to each action's community minute before its
   request, so production's events carry the twin's times; its
   :class:`~twin.live.publisher.EventPublisher` puts every committed event on
   ``community/{cid}/events/{service}``. All of a day's actions go first, and their events are
   acknowledged by the broker before the day's readings start, so they are on the broker before
   a shadow closes the day.
2. **Devices report** the day's readings tick by tick, as ``twin devices`` publishes them
   (:mod:`live_bridge.devices`: Sparkplug B gateways or zigbee2mqtt-style JSON), paced by the
   shared time convention: community minute ``m`` is due at wall time ``epoch_ms + m * 60000 /
   speed`` and is stamped ``epoch_ms + m * 60000`` on the wire.

Every day's readings are kept from the run ahead (about 0.8 MB a day for 2,000 households at hourly
ticks), so what is published is exactly what production's twin simulated.

Left out: points, time bank and voting (residents' earnings, help and ballots stay in the production
twin's log, not on the server), cancellations, reopenings and escalations (the engine makes none),
and the engine's alerts (production has no alert service). Each event not replayed is counted by
kind in the summary. A refused request should not happen (the twin's log is what the same services
accepted); one is counted, printed and skipped, and the ticket's later steps are refused with it.
"""
from __future__ import annotations

import math
import shlex
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from live_bridge.devices import (DEVICE, LAYOUTS, PROTOCOLS, SPARKPLUG, DevicesSummary, Pacer, check_layout,
                                 check_pace_options, device_sink, publish_day)
from twin.live.publisher import EventPublisher
from twin.services.events import Channel, EventKind
from twin.services.repair import LOCATION_BASE, Category

#: The repair life cycle the emulator replays: event kind -> the API operation that makes it.
REPLAYED = {EventKind.TicketSubmitted: "submit", EventKind.TicketDispatched: "dispatch",
            EventKind.TicketStarted: "start", EventKind.TicketCompleted: "complete",
            EventKind.TicketRated: "rate"}
#: Keys ``--production`` may not change: production differs from the twin in how it behaves, not in
#: who lives there, how long it runs or its random draws (the shadow's twin must be the same community).
SHARED_PREFIXES = ("community.", "sim.", "seed")
SERVER_START_S = 60.0  # a limit that only stops a server that will never come up
ACK_TIMEOUT_S = 60.0   # the broker's acknowledgements of a day's events


# ------------------------------------------------------------------------- production's config
def production_config(scenario: str = "default", overrides=(), slower_technicians: float = 1.0,
                      production=()):
    """The scenario with ``overrides`` (shared with the twin) and production's differences.

    ``slower_technicians`` multiplies every ``staff.service_minutes.<category>``; ``production``
    is more ``key=value`` overrides (device faults, say) that only production gets.
    """
    from twin.config import load_scenario

    if isinstance(slower_technicians, bool) or not isinstance(slower_technicians, (int, float)) or not (
            math.isfinite(slower_technicians) and slower_technicians > 0):
        raise ValueError(f"slower_technicians {slower_technicians!r}: allowed values are a positive factor "
                         "(1.3: technicians take 30% longer than the twin assumes)")
    production = list(production)
    for item in production:
        key = item.split("=", 1)[0].lstrip("+~")
        if key.startswith(SHARED_PREFIXES) or "=" not in item:
            raise ValueError(f"--production {item!r}: allowed are key=value overrides of anything but "
                             f"{', '.join(p.rstrip('.') for p in SHARED_PREFIXES)} (production is the twin's "
                             "community; give those as plain overrides, which both get)")
    chosen = [*overrides, *production]
    cfg = load_scenario(scenario, chosen)
    if slower_technicians != 1.0:
        cfg = load_scenario(scenario, chosen + [f"staff.service_minutes.{k}={float(v) * slower_technicians!r}"
                                                for k, v in cfg.staff.service_minutes.items()])
    return cfg


# --------------------------------------------------------------------- the production twin, run ahead
class Act(NamedTuple):
    """One request a person makes: the repair operation, at community minute ``t``, on the twin's ticket."""

    t: float
    operation: str
    ticket: int        # the production twin's ticket id
    actor: int         # the reporter (submit, rate) or the technician (dispatch, start, complete)
    arg: int           # the rating, or -1
    row: np.void       # the log's event (a submission's location, category, priority, channel)


@dataclass
class ProductionRun:
    """The production twin after all its days: its log, its days' readings and who acted, day by day."""

    cfg: object
    n_residents: int
    household: np.ndarray     # each resident's household
    hh_building: np.ndarray   # each household's building
    adult: np.ndarray         # bool, per resident
    hh_start: np.ndarray      # each building's first household
    hh_end: np.ndarray
    technicians: int
    events: np.ndarray
    readings: list            # DayReadings, one per day
    acts: list                # list of Act, per day, in time order
    left_out: Counter         # events not replayed, by kind name


def run_production(cfg) -> ProductionRun:
    """Run production's twin for all of ``cfg.sim.days``, keeping each day's readings and its log."""
    from twin.engine.twin import Twin
    from twin.warmup import compile_notice

    twin = Twin(cfg)
    days = int(cfg.sim.days)
    readings = []
    for _ in range(days):
        with compile_notice():  # the first day compiles what the cache lacks
            twin.step()
        readings.append(twin.readings)  # a fresh DayReadings each day
    events = twin.log.events.copy()
    acts, left_out = repair_acts(events, days)
    c = twin.community
    return ProductionRun(cfg=cfg, n_residents=c.n_residents, household=c.household.copy(),
                         hh_building=c.hh_building.copy(), adult=c.adults(), hh_start=twin.hh_start,
                         hh_end=twin.hh_end, technicians=int(cfg.staff.technicians), events=events,
                         readings=readings, acts=acts, left_out=left_out)


def repair_acts(events: np.ndarray, days: int) -> tuple[list, Counter]:
    """The log's repair life cycle as requests, per day, in time order; the rest counted by kind.

    At one minute a ticket's earlier step goes first (a technician dispatched at 8:00 starts at
    8:00): requests are ordered by time, then by life-cycle stage, then as logged.
    """
    kinds = events["kind"]
    replayed = np.isin(kinds, [int(k) for k in REPLAYED])
    left_out = Counter(EventKind(int(k)).name for k in kinds[~replayed])
    rows = events[replayed]
    stage = np.array([list(REPLAYED).index(EventKind(int(k))) for k in rows["kind"]], np.int64)
    order = np.lexsort((np.arange(len(rows)), stage, rows["t"]))
    acts: list[list[Act]] = [[] for _ in range(days)]
    for row in rows[order]:
        kind, ticket, t = EventKind(int(row["kind"])), int(row["subject"]), float(row["t"])
        # a dispatch's technician is its target; the other events' actor is who acts (reporter or worker)
        actor = int(row["target"]) if kind == EventKind.TicketDispatched else int(row["actor"])
        arg = int(row["amount"]) if kind == EventKind.TicketRated else -1
        day = min(int(t // 1440), days - 1)
        acts[day].append(Act(t, REPLAYED[kind], ticket, actor, arg, row))
    return acts, left_out


# ---------------------------------------------------------------------------- the production server
class EmulatedClock:
    """The production server's clock: the community minute the emulator is acting at.

    Requests are sequential, so setting :attr:`minute` before each one stamps its event.
    """

    def __init__(self, minute: float = 0.0):
        self.minute = float(minute)

    def __call__(self) -> float:
        return self.minute


class AcknowledgedPublisher(EventPublisher):
    """The server's event publisher, counting the broker's acknowledgements (QoS 1 PUBACKs).

    :meth:`wait_acknowledged` lets the emulator hold the readings back until production's
    events of the day are on the broker.
    """

    def __init__(self, url: str, community: str, by_kind: dict):
        super().__init__(url, community, by_kind, client_id=f"twin-emulate-{community}-events")
        self.acknowledged = 0
        self._acks = threading.Condition()
        self.client.on_publish = self._on_publish

    def _on_publish(self, _client, _userdata, _mid, _reason_code, _properties) -> None:
        with self._acks:
            self.acknowledged += 1
            self._acks.notify_all()

    def wait_acknowledged(self, timeout: float) -> bool:
        with self._acks:
            return self._acks.wait_for(lambda: self.acknowledged >= self.published, timeout)


def plain_mqtt_url(url) -> str:
    """The ``mqtt://host:port`` the server's event publisher takes (it speaks neither TLS nor passwords)."""
    if url.tls or url.username is not None:
        raise ValueError(f"broker {url}: the production server's event publisher connects to plain "
                         "mqtt://host:port only (no TLS, no user); allowed: such a broker, or none (embedded)")
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"mqtt://{host}:{url.port}"


def write_roster(run: ProductionRun, path: Path) -> Path:
    """The production twin's residents as the roster CSV ``twin serve --roster`` reads."""
    building = run.hh_building[run.household]
    lines = ["id,household,building,unit,adult"]
    lines += [f"{r},{int(run.household[r])},{int(building[r])},{int(run.household[r])},{int(run.adult[r])}"
              for r in range(run.n_residents)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class ProductionServer:
    """``twin serve``'s app over a fresh store, with the community's roster and accounts, in a thread.

    Its events go to the broker at ``mqtt_url`` (:class:`AcknowledgedPublisher`).
    ``tokens[(role, id)]``: the coordinator's (id ``coordinator_id``), each technician's and each
    resident's who reports or rates in ``run``'s log.
    """

    def __init__(self, run: ProductionRun, store, clock: EmulatedClock, mqtt_url: str, community: str,
                 port: int | None = None):
        from twin.live.serve import load_roster
        from twin.services.community import open_services

        self.store, self.clock = Path(store), clock
        self.coordinator_id = run.n_residents  # a person beyond the residents
        self.services = open_services(self.store, n_workers=run.technicians)
        self.publisher = None
        try:
            if len(self.services.log):
                raise ValueError(f"store {self.store} already holds {len(self.services.log):,} events; "
                                 "allowed: a new path (the emulator replays production from its first day)")
            with tempfile.TemporaryDirectory(prefix="twin-roster-") as folder:
                load_roster(self.services, write_roster(run, Path(folder) / "roster.csv"))
            self.tokens = self._accounts(run)
            self.publisher = AcknowledgedPublisher(mqtt_url, community, self.services.service_of)
            self._start(port)
        except BaseException:
            self._close_parts()
            raise

    def _accounts(self, run: ProductionRun) -> dict:
        from twin.live.accounts import add_account

        people = sorted({act.actor for day in run.acts for act in day if act.operation in ("submit", "rate")})
        with self.services.unit():  # every account in one transaction
            tokens = {("coordinator", self.coordinator_id): add_account(self.services, "coordinator",
                                                                         self.coordinator_id, "coordinator")}
            tokens.update({("technician", w): add_account(self.services, "technician", w, f"technician {w}")
                           for w in range(run.technicians)})
            tokens.update({("resident", r): add_account(self.services, "resident", r, f"resident {r}")
                           for r in people})
        return tokens

    def _start(self, port: int | None) -> None:
        import uvicorn

        from live_bridge.brokers import free_port
        from twin.live.app import create_app

        self.port = free_port() if port is None else int(port)
        app = create_app(self.services, clock=self.clock, publisher=self.publisher)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, name="production-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + SERVER_START_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConnectionError(f"the production server could not listen on 127.0.0.1:{self.port} "
                                      "(is the port taken? allowed: a free port, or none for any free one)")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self._close_parts()

    def _close_parts(self) -> None:
        if self.publisher is not None:
            self.publisher.close()
        self.services.close()


# ------------------------------------------------------------------------------ people at work
@dataclass
class EmulateSummary:
    """What an emulation did: requests and refusals by operation, production's events and the devices'
    messages published, the events left out by kind, and each twin ticket's id on the server."""

    days: int = 0
    requests: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)
    left_out: Counter = field(default_factory=Counter)
    events_published: int = 0
    devices: DevicesSummary = field(default_factory=DevicesSummary)
    tickets: dict = field(default_factory=dict)
    server_url: str = ""
    broker_url: str = ""
    epoch_ms: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        ops = ", ".join(f"{op} {n:,}" for op, n in self.requests.items())
        return (f"{self.days} day(s) in {self.seconds:.1f} s: {sum(self.requests.values()):,} requests ({ops}), "
                f"{sum(self.refused.values()):,} refused; {self.events_published:,} production events and "
                f"{self.devices.readings:,} device readings in {self.devices.messages:,} messages published")


class People:
    """Residents and staff at the production server's API, one request at a time."""

    def __init__(self, server: ProductionServer, summary: EmulateSummary, say: Callable[[str], None]):
        import httpx

        self.server, self.summary, self.say = server, summary, say
        self.http = httpx.Client(base_url=server.url + "/api/v1", timeout=60.0)

    def act(self, act: Act) -> None:
        """Make ``act``'s request at its minute; a refusal is counted and said, never raised."""
        s = self.summary
        s.requests[act.operation] += 1
        ticket = s.tickets.get(act.ticket)
        if act.operation != "submit" and ticket is None:
            return self._refused(act, "its ticket was never submitted on the server")
        role, who, path, body = self._request(act, ticket)
        self.server.clock.minute = act.t
        try:
            answer = self.http.post(path, json=body,
                                    headers={"Authorization": f"Bearer {self.server.tokens[role, who]}"})
        except Exception as exc:  # noqa: BLE001 - a failed request is counted, not a crash
            return self._refused(act, f"{type(exc).__name__}: {exc}")
        if answer.status_code >= 400:
            try:
                why = answer.json().get("detail") or answer.json().get("title")
            except ValueError:
                why = answer.text[:200]
            return self._refused(act, f"{answer.status_code} {why}")
        if act.operation == "submit":
            s.tickets[act.ticket] = int(answer.json()["id"])

    def _request(self, act: Act, ticket: int | None) -> tuple[str, int, str, dict]:
        """(role, id, path, body) of ``act``'s request."""
        if act.operation == "submit":
            building, unit = divmod(int(act.row["target"]), LOCATION_BASE)
            category = Category(int(act.row["code"])).name
            channel = Channel(int(act.row["channel"])).name
            return ("resident", act.actor, "/repair/tickets",
                    {"category": category, "building": building, "unit": unit, "channel": channel,
                     "priority": int(act.row["amount"]),
                     "description": f"{category.replace('_', ' ')} fault in building {building} "
                                    f"(reported by {channel})"})
        path = f"/repair/tickets/{ticket}/{act.operation}"
        if act.operation == "dispatch":
            return "coordinator", self.server.coordinator_id, path, {"worker": act.actor}
        if act.operation == "rate":
            return "resident", act.actor, path, {"rating": act.arg}
        return "technician", act.actor, path, {}

    def _refused(self, act: Act, why: str) -> None:
        self.summary.refused[act.operation] += 1
        self.say(f"emulate: {act.operation} of ticket {act.ticket} at minute {act.t:.1f} refused: {why}")

    def close(self) -> None:
        self.http.close()


# ----------------------------------------------------------------------------------- the whole loop
@contextmanager
def _devices(url, protocol: str, community: str, hh_start, hh_end, layout: str = DEVICE):
    sink = device_sink(url, protocol, community, hh_start, hh_end, layout)
    try:
        yield sink
    finally:
        sink.close()


def emulate(cfg, broker: str | None = None, *, protocol: str = SPARKPLUG, speed: float = 1.0,
            epoch_ms: int | None = None, community: str = "c1", store=None, port: int | None = None,
            say: Callable[[str], None] = print, on_ready: Callable[[EmulateSummary], None] | None = None,
            run: ProductionRun | None = None, layout: str = DEVICE) -> EmulateSummary:
    """Play production for ``cfg`` (see :func:`production_config`) on the broker at ``broker`` (None: embedded).

    ``epoch_ms``: the Unix milliseconds of community minute 0 (default: now, once everything is up);
    ``speed``: community time per real time (0: as fast as possible); ``store``: the server's SQLite
    file (default: one in a temporary folder). ``say`` gets the addresses and a line per day;
    ``on_ready(summary)`` is called once the server and the broker are up, before the first day.
    ``run``: production's twin already run (:func:`run_production`), else it is run here.
    ``layout``: how Sparkplug gateways report (see :mod:`live_bridge.devices`).
    """
    from live_bridge.brokers import broker as broker_for
    from live_bridge.brokers import parse_broker_url
    from live_bridge.sparkplug import now_ms

    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r}: allowed values are {', '.join(PROTOCOLS)}")
    check_layout(layout)
    Pacer(speed, 0.0)  # refuses a bad speed before anything starts
    if broker is not None:
        plain_mqtt_url(parse_broker_url(broker))  # refuses a broker the server cannot publish to, early
    started = time.perf_counter()
    if run is None:
        run = run_production(cfg)
    summary = EmulateSummary(left_out=run.left_out)
    with ExitStack() as stack:
        url = stack.enter_context(broker_for(broker))
        summary.broker_url = str(url) + (" (embedded broker)" if broker is None else "")
        if store is None:
            store = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="twin-emulate-"))) / "production.db"
        server = ProductionServer(run, store, EmulatedClock(), plain_mqtt_url(url), community, port)
        stack.callback(server.close)
        publisher = server.publisher
        people = People(server, summary, say)
        stack.callback(people.close)
        sink = stack.enter_context(_devices(url, protocol, community, run.hh_start, run.hh_end, layout))
        summary.server_url = server.url
        say(f"emulate: production server {server.url}/ (API {server.url}/api/v1), store {store}")
        say(f"emulate: broker {summary.broker_url}; devices as {protocol}, community {community!r}")
        if on_ready is not None:
            on_ready(summary)
        summary.epoch_ms = epoch_ms = now_ms() if epoch_ms is None else int(epoch_ms)
        # community minute m is due at wall time epoch + m / speed: the pacer's minute 0 is the epoch
        pacer = Pacer(speed, 0.0, start=time.monotonic() + (epoch_ms / 1000.0 - time.time()))
        for d, readings in enumerate(run.readings):
            _play_day(d, readings, run, pacer, people, publisher, sink, epoch_ms, summary, say)
            say(f"emulate: day {d + 1}/{len(run.readings)}: {len(run.acts[d])} requests, "
                f"{sum(summary.refused.values())} refused so far, {summary.devices.readings:,} device readings")
        summary.events_published = publisher.published
    summary.seconds = time.perf_counter() - started
    return summary


def _minute_now(pacer: Pacer) -> float:
    """The community minute it is now by ``pacer``'s clock."""
    return pacer.start_minute + (pacer.clock() - pacer.start) * pacer.speed / 60.0


def _play_day(d, readings, run, pacer, people, publisher, sink, epoch_ms, summary, say) -> None:
    """The day's requests (their events acknowledged by the broker), then its readings tick by tick."""
    pacer.wait_for(d * 1440.0)
    for act in run.acts[d]:
        people.act(act)
    if not publisher.wait_acknowledged(ACK_TIMEOUT_S):
        raise ConnectionError(f"the broker did not acknowledge production's events of day {d} within "
                              f"{ACK_TIMEOUT_S:g} s ({publisher.acknowledged:,} of {publisher.published:,})")
    closes = (d + 1) * 1440.0 + readings.tick_minutes  # when a shadow closes the day
    if pacer.speed > 0 and _minute_now(pacer) > closes:
        say(f"emulate: day {d}'s events reached the broker at community minute {_minute_now(pacer):,.0f}, after "
            f"a shadow closes the day ({closes:,.0f}): a lower --speed keeps up")
    publish_day(readings, run.hh_start, run.hh_end, pacer, sink, epoch_ms, summary.devices)
    summary.days += 1


# ----------------------------------------------------------------------------------- command line
def add_command(sub) -> None:
    """``twin emulate``, registered on the CLI's subparsers."""
    p = sub.add_parser("emulate", help="a whole production community on this machine: devices on MQTT, people "
                                       "at a production server's API",
                       description="Run the scenario's production twin (with production's differences: "
                                   "--slower-technicians, --production), then play it day by day: residents and "
                                   "staff replay its repair tickets through a production server's HTTP API (its "
                                   "events go to the broker), and its devices publish the day's readings, paced "
                                   "at real time times --speed. Without --broker an embedded broker runs for as "
                                   "long as the command does.")
    p.add_argument("-s", "--scenario", default="default", help="a shipped scenario (see `twin scenarios`)")
    p.add_argument("--broker", default=None, metavar="URL",
                   help="mqtt://host[:port] (default: an embedded broker)")
    p.add_argument("--protocol", choices=PROTOCOLS, default=SPARKPLUG, help="how the devices speak")
    p.add_argument("--layout", choices=LAYOUTS, default=DEVICE,
                   help="Sparkplug: a DDATA per device and tick, or one NDATA per gateway and tick")
    p.add_argument("--speed", type=float, default=1.0,
                   help="community time per real time (60: an hour a minute; 0: as fast as possible)")
    p.add_argument("--days", type=int, default=None, help="days to play (default: the scenario's sim.days)")
    p.add_argument("--slower-technicians", type=float, default=1.0, metavar="F",
                   help="production's repairs take F times the twin's service minutes (1.3: 30%% slower)")
    p.add_argument("--production", default="", metavar='"k=v ..."',
                   help="overrides only production gets, e.g. \"sensors.dropout_per_device_day=0.02\"")
    p.add_argument("--port", type=int, default=None, help="the production server's port (default: a free one)")
    p.add_argument("--epoch", type=int, default=None, metavar="MS",
                   help="Unix milliseconds of community minute 0 (default: now, once everything is up)")
    p.add_argument("--store", default=None, metavar="PATH",
                   help="the production server's new SQLite store (default: a temporary one)")
    p.add_argument("--community", default="c1", help="community id: the Sparkplug group and the events' topic")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="overrides both the twin and production get, e.g. community.households=500 seed=7")
    p.set_defaults(func=cmd_emulate)


def cmd_emulate(args) -> int:
    check_pace_options(args.speed, args.days)
    if args.port is not None and not 0 < args.port < 65536:
        raise ValueError(f"--port {args.port}: allowed values are 1 to 65535")
    if args.broker is not None:
        from live_bridge.brokers import parse_broker_url

        plain_mqtt_url(parse_broker_url(args.broker))  # before a minute of simulation, not after
    if args.store is not None and Path(args.store).exists():
        raise ValueError(f"--store {args.store} exists; allowed: a new path (the emulator starts production afresh)")
    try:
        production = shlex.split(args.production)
    except ValueError as exc:
        raise ValueError(f"--production {args.production!r}: {exc}; allowed: \"key=value key=value ...\"") from None
    overrides = list(args.overrides) + ([f"sim.days={args.days}"] if args.days is not None else [])
    cfg = production_config(args.scenario, overrides, args.slower_technicians, production)
    print(f"emulate: scenario {cfg.name!r}, {cfg.community.households:,} households in "
          f"{cfg.community.buildings:,} buildings, {cfg.sim.days} day(s), technicians x{args.slower_technicians:g}"
          f"{', production: ' + ' '.join(production) if production else ''}; running production's twin first",
          file=sys.stderr, flush=True)
    try:
        summary = emulate(cfg, args.broker, protocol=args.protocol, speed=args.speed, epoch_ms=args.epoch,
                          community=args.community, store=args.store, port=args.port,
                          say=lambda line: print(line, flush=True), layout=args.layout)
    except TimeoutError as e:  # a broker that never answered: a network error, not a bug
        raise ConnectionError(str(e)) from None
    print(f"emulate: {summary.line()}")
    return 0
