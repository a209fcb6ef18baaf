"""Compiling the kernels: a notice while it happens, and ``warmup()`` to do it ahead of time.

The first run after an install (or after a change to a kernel's source) compiles
every numba kernel it meets (about a minute of one core, shared over every core by
``twin.parallel_compile``), and numba caches the machine code on disk so later runs
load it in a second.  ``compile_notice()`` says so once, as the first kernel starts
compiling, so that a first run is not a silent minute; ``warmup()`` runs tiny
communities that meet every kernel, so that the first real run starts at full speed
(``twin warmup``, ``make demo``).  The services' batch methods call the same cores
with the same argument types as the engine does, so the live server's first requests
find them compiled too (``tests/test_services_day.py`` holds that).
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from twin._numba_cache import PACKAGES

_noticed = False  # the notice is said once per process, however many runs follow


def cache_location() -> str:
    """Where compiled kernels are cached, in words fit for a message."""
    try:
        from twin._numba_cache import cache_dir
    except ImportError:
        cache_dir = None
    if cache_dir is not None:
        return str(cache_dir())
    import numba

    configured = os.environ.get("NUMBA_CACHE_DIR") or numba.config.CACHE_DIR
    if configured:
        return str(configured)
    return f"the __pycache__ folders beside the sources under {Path(__file__).resolve().parent.parent}"


def say_compiling(how: str = "", stream=None) -> None:
    """Say, once per process, that the kernels are being compiled, where they go, and how to do it ahead."""
    global _noticed
    if _noticed:
        return
    _noticed = True
    how = f" {how}" if how else ""
    print(f"twin: compiling the simulation kernels{how} (once after an install or a change; about a minute on one core). "
          f"They are cached in {cache_location()}; `twin warmup` does this ahead of time.",
          file=stream or sys.stderr, flush=True)


@contextmanager
def compile_notice(stream=None):
    """Inside this block, the first kernel that compiles (not found in the cache) prints one notice."""
    from numba.core import event

    class Notice(event.Listener):
        def on_start(self, ev):
            module = getattr(ev.data["dispatcher"].py_func, "__module__", "") or ""
            if module.split(".")[0] in PACKAGES:  # (numba's own helpers compile in a blink)
                say_compiling(stream=stream)

        def on_end(self, ev):
            pass

    with event.install_listener("numba:compile", Notice()):
        yield


#: Tiny communities whose few days meet every kernel: busy enough that tickets are rated, items
#: redeemed, hours confirmed, alerts raised and topics proposed, voted and tallied by every method.
WARMUP_RUNS = (
    ("default", ["community.households=60", "community.buildings=3", "sim.days=32",
                 "residents.propose_rate_per_month=30", "policies.notice_days=1", "policies.vote_days=2",
                 "residents.redeem_prob=0.5", "residents.timebank_help_prob=0.5",
                 "sensors.incapacitation_per_elder_year=50", "sensors.smoke_per_household_year=20",
                 "sensors.pipe_burst_per_building_year=50", "facilities.household_faults_per_year=20"]),
    *(("default", ["community.households=40", "community.buildings=2", "sim.days=6",
                   "residents.propose_rate_per_month=60", "policies.notice_days=1", "policies.vote_days=2",
                   f"policies.voting_method={method}"]) for method in ("approval", "borda", "irv")),
    ("queue_check", ["sim.days=2"]),
)


def warmup() -> float:
    """Compile (or load from the cache) every kernel by running tiny communities; returns the seconds taken."""
    from twin.config import load_scenario
    from twin.engine import Twin
    from twin.parallel_compile import prepare

    t0 = time.perf_counter()
    prepare(progress=True)
    with compile_notice():
        for scenario, overrides in WARMUP_RUNS:
            Twin(load_scenario(scenario, overrides + ["progress=false"])).run()
    return time.perf_counter() - t0
