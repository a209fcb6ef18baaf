"""``Result``: what a run produced — KPIs, events, summary — and its run folder.

A run folder holds ``config.yaml`` (the resolved config), ``provenance.json``
(package version, git commit, seed, numba threads, timings), ``summary.json``
(NaN written as ``null``), ``kpis.csv`` (daily), ``events.npy`` (the event log,
structured array) with ``events.csv.gz`` beside it for other tools, ``map.json``
(buildings with their tickets and alerts) and ``report.html``.
``Result.load(dir)`` reads a folder back; ``twin report DIR`` redraws it.
"""
from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from twin.services.events import EVENT_DTYPE, EventKind, to_frame


def _jsonable(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


@dataclass
class Result:
    summary: dict
    kpis: pd.DataFrame
    event_log: np.ndarray
    config: dict
    provenance: dict = field(default_factory=dict)
    map: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)

    @property
    def events(self) -> pd.DataFrame:
        """The event log as a DataFrame (``kind`` as readable names)."""
        return to_frame(self.event_log)

    # -------------------------------------------------------------- building
    @classmethod
    def from_twin(cls, twin) -> "Result":
        from omegaconf import OmegaConf

        from twin.engine.kpis import summarise
        from twin.services.repair import Status

        events = twin.log.events.copy()
        kpis = twin.kpis.frame()
        desk = twin.services.repair
        times = desk.state.times[: desk.n_tickets]
        c = twin.community
        summary = summarise(
            events, days=twin.day, adults=int(c.adults().sum()),
            repair_times={"submitted": times[:, Status.submitted], "started": times[:, Status.in_progress],
                          "completed": times[:, Status.completed]},
            turnouts=twin.topics.turnouts, satisfaction_daily=kpis["satisfaction"].to_numpy())
        return cls(summary=summary, kpis=kpis, event_log=events,
                   config=OmegaConf.to_container(OmegaConf.structured(twin.cfg)),
                   provenance=_provenance(twin), map=_map(twin, events), extras=dict(twin.extras))

    # ----------------------------------------------------------------- files
    def save(self, directory) -> Path:
        """Write the run folder (see the module docstring); returns its path."""
        import yaml

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False, allow_unicode=True))
        (d / "provenance.json").write_text(json.dumps(_jsonable(self.provenance), indent=2))
        (d / "summary.json").write_text(json.dumps(_jsonable(self.summary), indent=2))
        (d / "map.json").write_text(json.dumps(_jsonable(self.map)))
        self.kpis.to_csv(d / "kpis.csv", index=False)
        np.save(d / "events.npy", self.event_log)
        self.events.to_csv(d / "events.csv.gz", index=False)
        for name, value in self.extras.items():
            (d / f"{name}.json").write_text(json.dumps(_jsonable(value), indent=2))
        self.report(d / "report.html")
        return d

    @classmethod
    def load(cls, directory) -> "Result":
        import yaml

        d = Path(directory)
        if not (d / "summary.json").exists():
            raise FileNotFoundError(f"{d} is not a run folder (no summary.json)")
        summary = {k: (math.nan if v is None else v) for k, v in json.loads((d / "summary.json").read_text()).items()}
        events = np.load(d / "events.npy")
        if events.dtype != EVENT_DTYPE:
            raise ValueError(f"{d / 'events.npy'} does not hold this version's event schema")
        return cls(summary=summary, kpis=pd.read_csv(d / "kpis.csv"), event_log=events,
                   config=yaml.safe_load((d / "config.yaml").read_text()),
                   provenance=json.loads((d / "provenance.json").read_text()),
                   map=json.loads((d / "map.json").read_text()) if (d / "map.json").exists() else {})

    def report(self, path) -> Path:
        """Write the plotly dashboard to ``path`` (HTML)."""
        from twin.report import write_report

        return write_report(self, path)

    def table(self) -> str:
        """The summary as an aligned two-column table for terminals."""
        width = max(map(len, self.summary))
        lines = []
        for k, v in self.summary.items():
            if isinstance(v, float):
                v = "n/a" if math.isnan(v) else f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
            else:
                v = f"{v:,}"
            lines.append(f"{k:<{width}}  {v:>14}")
        return "\n".join(lines)


def _provenance(twin) -> dict:
    import numba

    from twin import __version__

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"package": "community-twin", "version": __version__, "git_commit": commit, "seed": twin.seed,
            "numba_threads": numba.get_num_threads(), "numba_version": numba.__version__,
            "numpy_version": np.__version__, "timings_s": dict(twin.timings),
            "residents": twin.community.n_residents, "households": twin.community.n_households}


def _map(twin, events) -> dict:
    c = twin.community
    k = events["kind"]
    tickets = events[k == EventKind.TicketSubmitted]
    from twin.services.repair import LOCATION_BASE

    t_b = np.bincount(tickets["target"] // LOCATION_BASE, minlength=c.n_buildings)
    alerts = events[k == EventKind.AlertRaised]
    a_b = np.bincount(c.hh_building[alerts["actor"]], minlength=c.n_buildings)
    return {"x": c.building_x.tolist(), "y": c.building_y.tolist(), "tickets": t_b.tolist(),
            "alerts": a_b.tolist(), "households": np.bincount(c.hh_building, minlength=c.n_buildings).tolist()}
