"""Make ``shadow_session.sqlite``: the shadow recording ``notebooks/shadow_recording.ipynb`` studies.

The session is recorded here, once, rather than in the notebook: a live session runs on a
wall clock, and at the speeds a notebook can afford (a community day in a few seconds) a busy
machine falls behind it — readings then reach the shadow after their day has closed and are
refused as too old, so what the notebook shows would depend on the machine's load. This
script records at a speed that keeps up (a day in 24 s by default), checks that it did, and
ships only a recording in which everything production sent went in.

The session: a tiny community (40 households in 2 buildings, many faults so each day has
tickets) for 6 days on an embedded broker. Production is ``twin emulate`` with technicians
30% slower than the twin assumes and residents using 25% more water; the shadow records
every message; a misbehaving client sends four bad messages, which must be refused.

    python notebooks/data/make_recording.py [--out PATH] [--speed N]
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDING = HERE / "shadow_session.sqlite"
SCENARIO = "default"
COMMUNITY = ["community.households=40", "community.buildings=2", "sim.days=6", "progress=false",
             "facilities.household_faults_per_year=40",          # many faults: tickets every day
             "facilities.public_faults_per_building_year=60"]
SLOWER_TECHNICIANS = 1.3                                         # production's repairs take 1.3x as long
PRODUCTION_ONLY = ["sensors.water_litres_per_hour=15"]           # the twin assumes 12: 25% more water
SPEED = 3600.0   # community minutes per real minute: a day in 24 s, a tick's lateness a whole second
LEAD_S = 8.0     # community minute 0 comes this long after the session starts (both sides get ready)
#: What a broken or hostile client might send: (topic, payload, the reason the ingest refuses it for).
BAD_MESSAGES = [
    ("spBv1.0/c1/DDATA/bldg-000/hh-00000-water", b"\x01\x02garbage", "malformed"),  # not a Sparkplug payload
    ("spBv1.0/c1/DDATA/bldg-009/hh-09999-water", b"", "unknown_edge_node"),         # a gateway never born
    ("community/c1/events/repair", b'{"seq": 0}', "malformed"),                      # fails the event schema
    ("spBv1.0/c1/DDATA/bldg-000/main", b"x" * 100_000, "oversized"),                 # far too large
]


def send_bad_messages(url) -> None:
    """The misbehaving client: each bad message once, acknowledged by the broker."""
    from live_bridge import mqtt

    client = mqtt.connect(url, "misbehaving-client", clean_start=True)
    client.wait_ready()
    publisher = mqtt.Publisher(client)
    for topic, payload, _ in BAD_MESSAGES:
        publisher.publish(topic, payload, qos=1)
    publisher.flush(30)
    mqtt.close(client)


def record_session(path: Path, speed: float = SPEED, say=print):
    """Record the session into ``path`` (a new file); the live Shadow and production's summary."""
    from live_bridge.brokers import EmbeddedBroker
    from live_bridge.commands import run_shadow
    from live_bridge.emulate import emulate, production_config, run_production
    from live_bridge.sparkplug import now_ms

    cfg = production_config(SCENARIO, COMMUNITY, SLOWER_TECHNICIANS, PRODUCTION_ONLY)
    say("running production's twin ahead (and compiling the kernels before any clock starts)")
    production = run_production(cfg)
    outcome = {}
    with EmbeddedBroker() as broker:
        epoch_ms = now_ms() + int(LEAD_S * 1000)
        settings = {"scenario": SCENARIO, "overrides": COMMUNITY, "community": "c1", "epoch_ms": epoch_ms,
                    "speed": speed, "fill": "simulated", "stale_after_minutes": 180.0, "registry": None,
                    # not a shadow setting: what production was told to do differently, for the reader
                    "production": {"slower_technicians": SLOWER_TECHNICIANS, "overrides": PRODUCTION_ONLY}}

        def play() -> None:
            try:
                outcome["summary"] = emulate(cfg, broker.url, speed=speed, epoch_ms=epoch_ms, run=production,
                                             say=say)
            except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread
                outcome["error"] = exc

        player = threading.Thread(target=play, name="production", daemon=True)

        def listening(_bridge) -> None:
            send_bad_messages(broker.url)
            player.start()

        say(f"recording {cfg.sim.days} days at {speed:g}x real time into {path}")
        shadow = run_shadow(settings, broker.url, record=str(path), quiet=True, ready=listening)
        player.join(120)
    if "error" in outcome:
        raise outcome["error"]
    return shadow, outcome["summary"]


def problems(shadow, summary) -> list[str]:
    """Why the session is not the one the notebook needs (production fell behind, a refusal missing)."""
    from collections import Counter

    counts = shadow.ingest.counts
    found = []
    if counts["readings"] != summary.devices.readings:
        found.append(f"{counts['readings']:,} of {summary.devices.readings:,} readings went in "
                     f"({counts['too_old']:,} refused as too old)")
    if counts["events"] != summary.events_published:
        found.append(f"{counts['events']:,} of {summary.events_published:,} production events went in")
    expected = Counter(reason for _, _, reason in BAD_MESSAGES)
    refused = {reason: counts[reason] for reason in expected}
    if refused != dict(expected):
        found.append(f"the bad messages were refused as {refused}, not {dict(expected)}")
    return found


def reproduces(path: Path, shadow) -> bool:
    """Whether a replay of the recording gives the live session's twin and windows.

    All but ``live_alerts``: those are the alerts the bridge's detectors saw on the open day
    while readings came in (``Shadow.detect_now``), which a replay does not run.
    """
    import numpy as np
    import pandas as pd

    from live_bridge.commands import replay

    again, _ = replay(str(path))
    windows = [pd.json_normalize(s.windows).drop(columns="live_alerts") for s in (again, shadow)]
    return bool(np.array_equal(again.twin.log.events, shadow.twin.log.events) and windows[0].equals(windows[1]))


def finish(path: Path) -> None:
    """One self-contained file: no write-ahead log beside it, no free pages."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("VACUUM")
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RECORDING, help="where the recording goes (default: %(default)s)")
    parser.add_argument("--speed", type=float, default=SPEED,
                        help="community minutes per real minute (default: %(default)g; lower it if production "
                             "falls behind)")
    args = parser.parse_args(argv)
    if not args.speed > 0:
        parser.error(f"--speed {args.speed:g}: allowed values are a positive multiple of real time")
    with tempfile.TemporaryDirectory(prefix="shadow-recording-") as folder:
        path = Path(folder) / "session.sqlite"
        shadow, summary = record_session(path, args.speed)
        found = problems(shadow, summary)
        if found:
            print(f"not written: {'; '.join(found)}. Production fell behind the clock: rerun with a lower --speed "
                  f"than {args.speed:g}", file=sys.stderr)
            return 1
        if not reproduces(path, shadow):
            print("not written: a replay of the recording did not give the live session", file=sys.stderr)
            return 1
        finish(path)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(path.read_bytes())
    print(f"{args.out}: {summary.line()}; {args.out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
