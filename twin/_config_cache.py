"""Composed scenarios remembered on disk, so that a start skips Hydra.

Composing a scenario with Hydra (importing it, then building the structured
config and its overrides) takes 0.6-0.7 s, a third of a fresh process's start
once the kernels are cached.  The result is a pure function of the scenario
files, the overrides, the config schema (``twin/config.py``, where every section
is defined: a test holds it) and the versions of Hydra and OmegaConf, so it is
kept under a hash of all of them:

    $XDG_CACHE_HOME/community-twin/config/<hash>.pickle     (default ~/.cache/...)

Only validated configs are kept (a refused one is composed again, for its error
message), and a kept one is checked again when it is read back: the checks also
read names defined elsewhere (the dispatch policies, the repair categories), so
a config kept before one of them was renamed is refused as if composed now.
Overrides with an interpolation (``${...}``, which may read the environment or
the clock) are always composed.  It is a cache and nothing more: a file that
cannot be read or written is ignored and the scenario composed as before.  The
:data:`KEEP` most recently used files stay.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import tempfile
from pathlib import Path

KEEP = 256  # files kept (each a few kilobytes)
_SCHEMA = Path(__file__).with_name("config.py")


def directory() -> Path:
    from twin._numba_cache import cache_root

    return cache_root().parent / "config"


def key(name: str, overrides: list, scenario_dir: Path) -> str | None:
    """The hash a composed scenario is kept under: everything its composition reads; None when it
    is not to be kept (an interpolation in the overrides) or its inputs cannot be read."""
    if any("${" in str(o) for o in overrides):
        return None
    try:
        from importlib.metadata import version

        h = hashlib.sha256()
        h.update(json.dumps([name, [str(o) for o in overrides], sys.version, version("hydra-core"),
                             version("omegaconf")]).encode())
        for path in [_SCHEMA, *sorted(scenario_dir.rglob("*.yaml"))]:
            h.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
        return h.hexdigest()
    except Exception:  # an unreadable scenario file, a package without metadata: compose, as before
        return None


def load(key_: str):
    """The config kept under ``key_``, or None."""
    path = directory() / f"{key_}.pickle"
    try:
        with open(path, "rb") as f:
            cfg = pickle.load(f)
        os.utime(path)  # used now: pruning drops the least recently used
        return cfg
    except Exception:  # absent, unreadable, or written by other code: compose again
        return None


def save(key_: str, cfg) -> None:
    """Keep ``cfg`` under ``key_`` (atomically: a reader sees the whole file or none)."""
    folder = directory()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(cfg, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, folder / f"{key_}.pickle")
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        _prune(folder)
    except Exception:  # a read-only or full disk, a value that does not pickle: the next start composes again
        pass


def _prune(folder: Path) -> None:
    files = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime)
    for old in files[:max(0, len(files) - KEEP)]:
        old.unlink(missing_ok=True)
