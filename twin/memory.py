"""How much memory a run will need, estimated before it starts, and what the machine has.

A run that cannot fit should say so in its first second, not end in a
``MemoryError`` after minutes.  The estimate is the peak resident memory of
``twin run`` (engine state, the event log, saving the run folder):

    peak ≈ BASE + households × (PER_HOUSEHOLD + events per household × PER_EVENT)
    events per household ≈ EVENTS_AT_START + EVENTS_PER_DAY × days

The constants were measured with the default scenario (peak RSS of ``twin run``:
build, run and save; 200 to 400,000 households, 3 to 365 days; numpy 2, numba
0.68; re-measured on 2026-12-01 at 200, 2,000 and 8,000 households, 321, 363 and
534 MB): the state is ~1,100 bytes per household (~420 per resident: community
arrays, the services' ledgers, the day's scratch, the social graph) and an event
costs ~470 bytes at the peak (61 in the log, doubled while it grew then, plus the
copies and the tables written when the folder is saved: ``events.csv.gz``, the
tidy Parquet, the report).  It is
an estimate: other scenarios log more or fewer events per household.
"""
from __future__ import annotations

import math
import os

BASE = 315e6                # interpreter, numpy/pandas/plotly/numba and the compiled kernels
PER_HOUSEHOLD = 1100.0      # bytes of engine state (2.6 residents per household by default)
PER_EVENT = 470.0           # bytes per logged event at the peak (log, copies, saved tables)
EVENTS_AT_START = 5.2       # per household: enrolments and registrations on day 0, first claims
EVENTS_PER_DAY = 0.145      # per household and simulated day (measured over a year)


class NotEnoughMemory(MemoryError):
    """A run refused before it started: its estimate exceeds the memory available."""


def events_estimate(households: int, days: int, mean_household_size: float = 2.6) -> float:
    """About how many events one run of ``households`` over ``days`` logs."""
    return households * mean_household_size / 2.6 * (EVENTS_AT_START + EVENTS_PER_DAY * days)


def estimate_bytes(households: int, days: int, mean_household_size: float = 2.6) -> float:
    """Estimated peak memory (bytes) of one run of ``households`` over ``days``."""
    scale = mean_household_size / 2.6  # state and events grow with residents
    events = events_estimate(households, days, mean_household_size)
    return BASE + households * scale * PER_HOUSEHOLD + events * PER_EVENT


def estimate_for(cfg) -> float:
    """:func:`estimate_bytes` of a scenario config."""
    c = cfg.community
    return estimate_bytes(c.households, cfg.sim.days, c.mean_household_size)


def available_bytes() -> float:
    """Memory available to this process now: the machine's (psutil's ``available``), capped by a
    container's memory limit (cgroup v2) and by an address-space limit (``ulimit -v``) if set."""
    return min(_machine_available(), _cgroup_available(), _address_space_limit())


def _machine_available() -> float:
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return float(psutil.virtual_memory().available)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def _cgroup_available() -> float:
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current") as f:
            used = float(f.read().strip())
    except (OSError, ValueError):
        return math.inf
    return math.inf if limit == "max" else max(0.0, float(limit) - used)


def _address_space_limit() -> float:
    try:
        import resource
    except ImportError:  # not on Windows
        return math.inf
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return math.inf if soft == resource.RLIM_INFINITY else float(soft)


def human(n: float) -> str:
    """Bytes as a short figure: 812 MB, 3.4 GB, 1,234 GB."""
    if n < 1e9:
        return f"{n / 1e6:,.0f} MB"
    return f"{n / 1e9:,.1f} GB" if n < 100e9 else f"{n / 1e9:,.0f} GB"


def check(cfg, runs_at_once: int = 1, force: bool = False) -> float:
    """Raise :class:`NotEnoughMemory` (one clear sentence) when ``runs_at_once`` runs of ``cfg`` will not fit.

    Returns the estimate (bytes, all runs together).  ``force`` skips the refusal.
    """
    need = estimate_for(cfg) * max(1, runs_at_once)
    have = available_bytes()
    if need > have and not force:
        c = cfg.community
        runs = f"{runs_at_once} runs at once of " if runs_at_once > 1 else ""
        raise NotEnoughMemory(
            f"{runs}{c.households:,} households over {cfg.sim.days:,} days need about {human(need)} of memory; "
            f"this machine has {human(have)} available. Use fewer households or days"
            + (" or fewer jobs (-j)" if runs_at_once > 1 else "") + ", or pass --force to try anyway.")
    return need
