"""``twin shadow`` and ``twin replay``: the twin beside production, live or from a recording."""
from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from pathlib import Path

from live_bridge.recorder import ADVANCE, Recorder, RecordingError, messages, open_recording
from live_bridge.shadow import FILL_POLICIES, Shadow

SHADOW_HELP = ("Run the twin in real time on the live readings and production's event feed, and compare them "
               "day by day (tickets, response and repair times, backlog, alerts, sensor drift).")


def build_shadow(settings: dict, on_window=None) -> Shadow:
    """A Shadow from a session's settings (what a recording keeps under ``meta``)."""
    from live_bridge.registry import Registry
    from twin.config import load_scenario

    cfg = load_scenario(settings["scenario"], [*settings.get("overrides", []), "progress=false"])
    registry = None
    if settings.get("registry"):
        from agents.community import build_community  # the community's layout names the Sparkplug devices

        c = build_community(cfg.community, int(cfg.seed), cfg.facilities.elevator_share)
        registry = Registry.for_community(c.hh_building, c.n_buildings)
        registry.load_json_devices(Path(settings["registry"]))
    return Shadow(cfg, epoch_ms=settings["epoch_ms"], community=settings["community"], registry=registry,
                  fill=settings["fill"], stale_after_minutes=settings["stale_after_minutes"], on_window=on_window)


def run_shadow(settings: dict, broker_url: str, *, record: str | None = None, out: str | None = None,
               until_day: int | None = None, quiet: bool = False, ready=None, stop: threading.Event | None = None,
               server: str | None = None, token: str | None = None):
    """Shadow production through the broker until the scenario's days are done (or ``stop`` is set).

    With ``record``, every message is committed there before it is acknowledged, and a recording
    that already holds messages is replayed first: a restarted shadow resumes where it was.
    With ``server`` (and a staff ``token``), production's events are also read from its HTTP
    feed, for a server that publishes none on MQTT.
    Returns the Shadow.
    """
    from live_bridge.bridge import Bridge, Clock
    from live_bridge.dashboard import write_dashboard

    out_dir = Path(out) if out else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "windows.jsonl").unlink(missing_ok=True)  # a resumed session writes every window again

    def on_window(row):
        if out_dir:
            with open(out_dir / "windows.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            write_dashboard(out_dir / "shadow.html", shadow)
        if not quiet:
            t, p = row["twin"], row["production"] or {}
            print(f"day {row['day']:>3}: tickets twin {t['tickets_raised']:.0f} production "
                  f"{p.get('tickets_raised', math.nan):.0f}; repair min twin {t['repair_minutes']:.0f} production "
                  f"{p.get('repair_minutes', math.nan):.0f}; refused {_refused(row['ingest'])}", flush=True)

    shadow = build_shadow(settings, on_window)
    recorder = None
    if record:
        recorder = Recorder(record, meta=settings)
        resumed, _ = _replay_into(shadow, open_recording(record)[1])
        if resumed and not quiet:
            print(f"resumed from {record}: {resumed:,} recorded messages replayed", flush=True)
    bridge = Bridge(broker_url, shadow, clock=Clock(settings["epoch_ms"], settings["speed"]), recorder=recorder,
                    community=settings["community"])
    days = until_day if until_day is not None else shadow.cfg.sim.days
    feed = None
    try:
        bridge.wait_ready(30.0)
        if server is not None:
            from live_bridge.feed import ServerFeed

            feed = ServerFeed(server, token or "", bridge.inject, settings["community"],
                              after=max(shadow.ingest.events, default=0))
            feed.check()
            feed.start()
        if not quiet:
            print(f"shadow: listening as {bridge.client_id} (community {settings['community']!r}); "
                  f"days close at midnight plus {shadow.lateness:g} min", flush=True)
        if ready is not None:
            ready(bridge)
        while shadow.twin.day < days and not (stop is not None and stop.is_set()):
            time.sleep(0.05)
    finally:
        ended = bridge.clock()
        if feed is not None:
            feed.close()
        bridge.close()
        if record:  # where the session's clock stopped: a replay runs the days that closed by then
            rec = Recorder(record)
            rec.set_meta("ended_at", ended)
            rec.close()
    if out_dir:
        write_dashboard(out_dir / "shadow.html", shadow, refresh_s=None)
    return shadow


def _refused(counts: dict) -> int:
    from live_bridge.ingest import SKIPPED

    return sum(counts.get(r, 0) for r in SKIPPED)


def _replay_into(shadow: Shadow, db) -> tuple[int, float]:
    """Feed a recording to ``shadow``, closing days where the live session did; rows read and the last arrival."""
    rows, last = 0, -math.inf
    try:
        for last, topic, payload in messages(db):
            if topic == ADVANCE:
                shadow.advance(last)
            else:
                shadow.handle(topic, payload, last)
            rows += 1
    finally:
        db.close()
    return rows, last


def replay(path: str, out: str | None = None, quiet: bool = True) -> tuple[Shadow, dict]:
    """Re-run a recorded shadow session, as fast as the machine allows; the Shadow and speed figures."""
    settings, db = open_recording(path)
    for key in ("scenario", "epoch_ms", "community", "fill", "stale_after_minutes", "speed"):
        if key not in settings:
            db.close()
            raise RecordingError(f"{path}: the recording lacks its session setting {key!r}")
    wall = db.execute("SELECT min(wall_ms), max(wall_ms), count(*) FROM messages WHERE topic != ?",
                      (ADVANCE,)).fetchone()
    t0 = time.perf_counter()
    shadow = build_shadow(settings)
    build_s = time.perf_counter() - t0
    _, last = _replay_into(shadow, db)
    shadow.advance(max(last, settings.get("ended_at", last)))
    seconds = time.perf_counter() - t0
    recorded_s = ((wall[1] or 0) - (wall[0] or 0)) / 1000.0
    stats = {"messages": wall[2], "seconds": seconds, "build_s": build_s, "recorded_s": recorded_s,
             "days": shadow.twin.day,
             "times_real_time": recorded_s / seconds if seconds > 0 and recorded_s > 0 else math.nan,
             "community_minutes_per_s": shadow.twin.day * 1440.0 / seconds if seconds > 0 else math.nan}
    if out:
        from live_bridge.dashboard import write_dashboard

        Path(out).mkdir(parents=True, exist_ok=True)
        write_dashboard(Path(out) / "shadow.html", shadow, refresh_s=None)
    return shadow, stats


# ------------------------------------------------------------------ the command line
def add_commands(sub) -> None:
    p = sub.add_parser("shadow", help="run the twin beside production on live readings and compare",
                       description=SHADOW_HELP)
    p.add_argument("-s", "--scenario", default="default", help="the twin's scenario (the community's layout)")
    p.add_argument("--broker", default=None, help="broker URL (mqtt://user:pass@host:port, mqtts://...); "
                                                  "default: an embedded broker")
    p.add_argument("--ca", default=None, help="CA certificate for mqtts://")
    p.add_argument("--cert", default=None, help="client certificate for mqtts://")
    p.add_argument("--key", default=None, help="client key for mqtts://")
    p.add_argument("--community", default="c1", help="community id in topics (default: %(default)s)")
    p.add_argument("--server", default=None, metavar="URL",
                   help="also read production's events from this server's feed (http://host:port)")
    p.add_argument("--token", default=os.environ.get("TWIN_TOKEN"),
                   help="a staff account's token for --server (default: $TWIN_TOKEN)")
    p.add_argument("--epoch", type=int, default=None, metavar="MS",
                   help="the community's epoch in Unix ms (production's store epoch; default: now)")
    p.add_argument("--speed", type=float, default=1.0, help="community minutes per real minute (default: live, 1)")
    p.add_argument("--registry", default=None, help="a registry file of plain JSON devices")
    p.add_argument("--record", default=None, metavar="FILE", help="record every message here (SQLite); "
                                                                   "an existing recording is resumed")
    p.add_argument("--out", default=None, metavar="DIR", help="write windows.jsonl and shadow.html here")
    p.add_argument("--fill", choices=FILL_POLICIES, default="simulated",
                   help="what a stale device's ticks become (default: %(default)s)")
    p.add_argument("--stale-after", type=float, default=180.0, metavar="MIN",
                   help="minutes of silence after which a device is stale (default: %(default)s)")
    p.add_argument("--demo", action="store_true",
                   help="also play production (twin emulate, technicians 30%% slower than the twin assumes) on the "
                        "same broker and clock")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="scenario overrides (e.g. sim.days=7)")
    p.set_defaults(func=cmd_shadow)
    p = sub.add_parser("replay", help="re-run a recorded shadow session as fast as possible",
                       description="Re-run a shadow session from its recording (twin shadow --record): the same "
                                   "messages at the same arrival times give the same windows.")
    p.add_argument("recording", help="the recording (SQLite)")
    p.add_argument("--out", default=None, metavar="DIR", help="write shadow.html here")
    p.set_defaults(func=cmd_replay)


def cmd_shadow(args) -> int:
    from live_bridge.brokers import broker as broker_for
    from live_bridge.sparkplug import now_ms

    default_epoch = now_ms() + (DEMO_START_S * 1000 if args.demo else 0)
    settings = {"scenario": args.scenario, "overrides": list(args.overrides), "community": args.community,
                "epoch_ms": args.epoch if args.epoch is not None else int(default_epoch), "speed": args.speed,
                "fill": args.fill, "stale_after_minutes": args.stale_after,
                "registry": str(Path(args.registry).resolve()) if args.registry else None}
    if not args.speed > 0:
        raise ValueError(f"--speed {args.speed!r}: a positive multiple of real time")
    with broker_for(args.broker, ca=args.ca, cert=args.cert, key=args.key) as url:
        if not args.broker:
            print(f"embedded broker on {url}", flush=True)
        try:
            if args.demo:  # (str() of a URL hides its password: production gets the URL as given)
                _start_demo(settings, args.broker or str(url))
            shadow = run_shadow(settings, url, record=args.record, out=args.out, server=args.server,
                                token=args.token)
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
            return 130
    print(shadow.table())
    if args.out:
        print(f"{Path(args.out) / 'shadow.html'}")
    return 0


DEMO_SLOWER_TECHNICIANS = 1.3  # the demo's production: technicians 30% slower than the twin assumes
DEMO_START_S = 10.0  # community minute 0 comes this long after the command starts (both sides get ready)


def _start_demo(settings, url):
    """Production's stand-in (``twin emulate``) on the shadow's broker and clock, in a thread."""
    from live_bridge.emulate import emulate, production_config

    cfg = production_config(settings["scenario"], settings["overrides"], DEMO_SLOWER_TECHNICIANS)

    def play():
        try:
            emulate(cfg, url, speed=settings["speed"], epoch_ms=settings["epoch_ms"],
                    community=settings["community"], say=lambda line: print(line, flush=True))
        except Exception as e:  # the shadow goes on (and shows production silent); say why
            print(f"emulate: stopped: {e}", file=sys.stderr, flush=True)

    thread = threading.Thread(target=play, name="emulate", daemon=True)
    thread.start()
    return thread


def cmd_replay(args) -> int:
    shadow, stats = replay(args.recording, out=args.out)
    print(shadow.table())
    print(f"replayed {stats['messages']:,} messages, {stats['days']} day(s), in {stats['seconds']:.1f} s "
          f"({stats['times_real_time']:,.0f}x real time as recorded; "
          f"{stats['community_minutes_per_s']:,.0f} community minutes/s)")
    return 0
