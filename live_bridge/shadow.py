"""Shadow mode: the twin's day loop on live readings, compared with production day by day.

A :class:`Shadow` owns a :class:`~twin.engine.twin.Twin` and an
:class:`~live_bridge.ingest.Ingest`.  Messages go in with their arrival time
(:meth:`Shadow.handle`); once the clock has passed a day's end (plus a tick's
lateness) :meth:`Shadow.advance` steps the twin through that day, and its sensor hook
(:meth:`Shadow._merge`) hands the detectors live readings in place of
simulated ones:

- a device heard from is **live**: its row is what it sent (NaN where it
  sent nothing — a gap the detectors read as silence);
- once a device has been silent for ``stale_after_minutes`` it is **stale**:
  by policy (``fill="simulated"``) its ticks from then on are the twin's
  simulated ones, counted as filled, or (``fill="none"``) NaN;
- a device never heard from is **simulated**, as in a plain twin.

After each day a window row holds the twin's metrics and production's (from
its event feed), the device counts and the sensor drift;
:meth:`Shadow.differences` flags what differs (see ``live_bridge.compare``).
Nothing here touches a network: the bridge feeds it live, ``twin replay``
from a recording, both the same way, so a replay reproduces a session.
"""
from __future__ import annotations

import math

import numpy as np

from agents.sensors import DayReadings
from live_bridge import compare
from live_bridge.ingest import Ingest
from live_bridge.registry import ARRAY_OF, Registry
from twin.engine.twin import Twin

FILL_POLICIES = ("simulated", "none")


class Shadow:
    """The twin beside production: live readings in, window-by-window comparison out."""

    def __init__(self, cfg, *, epoch_ms: int, community: str = "c1", registry: Registry | None = None,
                 fill: str = "simulated", stale_after_minutes: float = 180.0, alpha: float = 0.05,
                 dead_letter=None, on_window=None):
        if fill not in FILL_POLICIES:
            raise ValueError(f"fill {fill!r}: allowed values are {', '.join(FILL_POLICIES)}")
        self.cfg = cfg
        self.twin = Twin(cfg)
        c = self.twin.community
        self.registry = registry or Registry.for_community(c.hh_building, c.n_buildings)
        self.ingest = Ingest(self.registry, epoch_ms=epoch_ms, tick_minutes=cfg.sim.tick_minutes,
                             community=community, dead_letter=dead_letter)
        self.fill = fill
        self.stale_after = float(stale_after_minutes)
        self.alpha = alpha
        self.lateness = float(cfg.sim.tick_minutes)  # a day closes one tick after it ends
        self.on_window = on_window  # called with each new window row
        self.windows: list[dict] = []
        self.live_alerts: list[dict] = []  # alerts seen on the open day as readings arrive
        self._alerted: set = set()
        self.twin.live_readings = self._merge
        self._devices: dict = {}

    # ---------------------------------------------------------------- input
    def handle(self, topic: str, payload: bytes, arrival: float) -> None:
        """One live message that arrived at community minute ``arrival`` (days close only in :meth:`advance`)."""
        self.ingest.handle(topic, payload, arrival)

    def advance(self, now: float) -> int:
        """Run every day that ended (plus the lateness) by community minute ``now``; how many ran.

        The caller decides when: the bridge advances once it has caught up
        with what the broker holds, and records that it did, so a replay
        closes each day between the same two messages as the live session.
        """
        ran = 0
        while self.twin.day < self.cfg.sim.days and now >= (self.twin.day + 1) * 1440.0 + self.lateness:
            self.step_day()
            ran += 1
        return ran

    def step_day(self) -> dict:
        """Run the twin's next day on what has arrived for it and record the window."""
        d = self.twin.day
        self.twin.step()
        t0, t1 = d * 1440.0, (d + 1) * 1440.0
        production = self.ingest.production_events()
        row = {"day": d,
               "twin": compare.window_metrics(self.twin.log.events, t0, t1),
               "production": compare.window_metrics(production, t0, t1) if len(production) else None,
               "devices": self._devices,
               "live_alerts": sum(1 for a in self.live_alerts if a["day"] == d),
               "ingest": dict(self.ingest.counts)}
        self.windows.append(row)
        if self.on_window is not None:
            self.on_window(row)
        return row

    def detect_now(self, now: float) -> list[dict]:
        """Run the detectors over the open day's readings so far; the alerts not seen before.

        The twin's own detectors (:meth:`Twin.detect`, without learning), on the
        live arrays as they stand: a tick not heard from yet is NaN, which the detectors read as
        silence, so nothing is raised early.  Operations see an alert a batch
        after the reading that completed it, not at the day's end.
        """
        d = self.twin.day
        r = self.ingest.days.get(d)
        if r is None or now < d * 1440.0:
            return []
        alert_t, burst_t = self.twin.detect(r, learn=False)
        new = []
        for kind, times in (("inactivity", alert_t), ("smoke", r.smoke_t), ("burst", burst_t)):
            for i in np.flatnonzero(times >= 0).tolist():
                if (d, kind, i) not in self._alerted:
                    self._alerted.add((d, kind, i))
                    new.append({"day": d, "kind": kind, "index": i, "t": float(times[i]), "seen_at": now})
        self.live_alerts += new
        return new

    # ------------------------------------------------------ the sensor hook
    def _merge(self, simulated: DayReadings) -> DayReadings:
        """The day's readings: live devices' own, stale ticks filled (or silent), the rest simulated."""
        d = simulated.day
        live = self.ingest.close_day(d)
        tick = simulated.tick_minutes
        starts = d * 1440.0 + tick * np.arange(simulated.water.shape[1])
        end = (d + 1) * 1440.0
        counts, drift = {}, {}
        for kind, name in ARRAY_OF.items():
            heard = self.ingest.heard[kind]
            known = np.isfinite(heard)
            stale_from = np.where(known, heard + self.stale_after, np.inf)[:, None]
            stale_ticks = known[:, None] & (starts[None, :] >= stale_from)
            sim, got = getattr(simulated, name), getattr(live, name)
            fill = sim if self.fill == "simulated" else np.nan
            out = np.where(~known[:, None], sim, np.where(stale_ticks, fill, got))
            if kind in ("water", "main") and known.any():
                drift[kind] = compare.sensor_drift(got[known].ravel(), sim[known].ravel())
            setattr(simulated, name, out)
            stale = known & (end >= stale_from[:, 0])
            counts[kind] = {"live": int((known & ~stale).sum()), "stale": int(stale.sum()),
                            "filled_ticks": int(stale_ticks.sum()) if self.fill == "simulated" else 0,
                            "simulated": int((~known).sum())}
        smoke_known = np.isfinite(self.ingest.heard["smoke"])
        simulated.smoke_t = np.where(smoke_known, live.smoke_t, simulated.smoke_t)
        self._devices = {"counts": counts, "drift": drift}
        return simulated

    # --------------------------------------------------------------- output
    def differences(self, metrics=None) -> list[compare.Difference]:
        """Each metric's production-minus-twin interval over the windows with production's data."""
        rows = [w for w in self.windows if w["production"] is not None]
        if metrics is None:  # alerts only where production reports them
            has_alerts = any(w["production"]["alerts_raised"] > 0 for w in rows)
            metrics = [m for m in compare.METRICS if has_alerts or not m.startswith("alert")]
        return compare.differences([w["twin"] for w in rows], [w["production"] for w in rows], self.alpha,
                                   metrics)

    def table(self) -> str:
        """The differences as a text table (what `twin shadow` and `twin replay` print)."""
        lines = [f"{'metric':<24}{'windows':>8}{'twin':>12}{'production':>12}   interval (production - twin)"]
        for d in self.differences():
            interval = "n/a" if math.isnan(d.low) else f"[{d.low:+.2f}, {d.high:+.2f}]"
            flag = "  DIFFERS" if d.flagged else ""
            lines.append(f"{d.metric:<24}{d.windows:>8}{d.twin_mean:>12.2f}{d.production_mean:>12.2f}   "
                         f"{interval}{flag}")
        return "\n".join(lines)
