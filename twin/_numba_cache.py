"""Where numba caches the compiled kernels: one directory per version of the sources.

numba keys a cached kernel on its own source file only (modification time and
size).  A kernel that calls a kernel of another module therefore keeps running
the callee's old machine code from the cache after the callee is edited, for
example the points kernels after a change to ``twin.services.ledger``.  So the
cache lives in a directory named by a hash of the sources kernels are made of:
every module of ``twin``, ``agents`` and ``policies`` that compiles something
(a numba decorator, or one of ``twin._jit``'s), and every module of those
packages such a module imports, transitively (numba freezes the constants it
reads from them).
An edit to the server, the CLI or a report leaves the compiled kernels alone:

    $XDG_CACHE_HOME/community-twin/numba/<hash>     (default ~/.cache/...)

Any edit to those sources gives a new directory and a fresh compilation; the
directories of older versions are removed, keeping the newest few.  An
explicit ``NUMBA_CACHE_DIR`` in the environment wins: kernels are cached there
and nothing is pruned.

``import twin`` runs this module before numba compiles anything of the
package, whichever module imported numba first (agents and policies import
``twin`` before they declare kernels): if numba is already loaded, its
configuration is reloaded here.
"""
from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

PACKAGES = ("twin", "agents", "policies")
# a module that compiles something: numba's decorators, or the package's own (twin._jit: kernel, parallel_kernel, ...)
KERNEL = re.compile(rb"^@(numba\.)?(njit|jit|vectorize|guvectorize|cfunc|\w*kernel|inline|dispatch_policy)\b|"
                    rb"numba\.(njit|jit)\(", re.M)
KEEP = 4               # source versions whose kernels stay cached
PRUNE_AFTER_S = 3600.0  # a directory used within the hour is never pruned (another process may be compiling)
_OURS = "COMMUNITY_TWIN_NUMBA_CACHE_DIR"  # what we set NUMBA_CACHE_DIR to (a child process inherits both)

_ROOT = Path(__file__).resolve().parent.parent


def source_hash(root: Path | str = _ROOT) -> str:
    """A hash of the path and content of every kernel source of :data:`PACKAGES` under ``root``.

    Finding the kernel sources parses every module (a fifth of a second, on every start), so the
    answer is remembered under a hash of all the packages' files: an unchanged tree costs a read.
    """
    root = Path(root)
    texts = _package_texts(root)
    whole = hashlib.sha256()
    for path, text in texts.items():
        whole.update(path.relative_to(root).as_posix().encode() + b"\0" + hashlib.sha256(text).digest())
    key = whole.hexdigest()
    memo = _read_memo()
    if _HASH.fullmatch(str(memo.get(key, ""))):  # (a damaged memo is computed afresh, never trusted)
        return memo[key]
    h = hashlib.sha256()
    for path in kernel_sources(root, texts):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(texts[path]).digest())
    digest = h.hexdigest()[:16]
    _write_memo({**memo, key: digest})
    return digest


def _package_texts(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(p for package in PACKAGES for p in (root / package).rglob("*.py"))}


_MEMO = "source-hashes.json"
_HASH = re.compile(r"[0-9a-f]{16}")
_MEMO_KEEP = 32  # trees remembered (checkouts, branches)


def _read_memo() -> dict:
    try:
        memo = json.loads((cache_root() / _MEMO).read_text())
        return memo if isinstance(memo, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_memo(memo: dict) -> None:
    """Newest last; written whole and renamed into place, so a reader never sees half of it."""
    path = cache_root() / _MEMO
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{_MEMO}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(dict(list(memo.items())[-_MEMO_KEEP:])))
        os.replace(tmp, path)
    except OSError:
        pass  # unwritable: the hash is computed again next time


def kernel_sources(root: Path, texts: dict[Path, bytes] | None = None) -> list[Path]:
    """Modules that declare kernels, and the package modules they import, transitively (sorted)."""
    texts = _package_texts(root) if texts is None else texts
    todo = [p for p, text in texts.items() if KERNEL.search(text)]
    seen = set(todo)
    while todo:
        for target in _imports(root, todo.pop(), texts):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return sorted(seen)


def _imports(root: Path, path: Path, texts: dict) -> list[Path]:
    """The modules of :data:`PACKAGES` that ``path`` imports (a package's ``__init__`` for a package)."""
    try:
        tree = ast.parse(texts[path])
    except SyntaxError:
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    out = []
    for name in names:
        if name.split(".")[0] not in PACKAGES:
            continue
        base = root.joinpath(*name.split("."))
        candidate = base.with_suffix(".py")  # a package's __init__ is glue, not what kernels are made of
        if candidate in texts:
            out.append(candidate)
    return out


def cache_root() -> Path:
    """The folder holding one cache directory per source hash."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "community-twin" / "numba"


def prune(root: Path, keep: Path, n_keep: int = KEEP, now: float | None = None) -> list[Path]:
    """Remove all but the ``n_keep`` most recently used hash directories under ``root`` (never ``keep``
    nor one used within :data:`PRUNE_AFTER_S`); returns the directories removed."""
    now = time.time() if now is None else now
    try:
        dirs = sorted((d for d in root.iterdir() if d.is_dir() and d != keep), key=lambda d: d.stat().st_mtime,
                      reverse=True)
    except OSError:
        return []
    removed = []
    for d in dirs[max(0, n_keep - 1):]:
        try:
            if now - d.stat().st_mtime >= PRUNE_AFTER_S:
                shutil.rmtree(d)
                removed.append(d)
        except OSError:
            pass
    return removed


def configure() -> Path:
    """Point numba at this source version's cache directory, unless the user chose one; return it."""
    chosen = os.environ.get("NUMBA_CACHE_DIR", "")
    if chosen and chosen != os.environ.get(_OURS):
        return Path(chosen)
    path = cache_root() / source_hash()
    try:
        fresh = not path.is_dir()
        path.mkdir(parents=True, exist_ok=True)
        os.utime(path)  # "most recently used", for pruning
        if fresh:
            prune(path.parent, keep=path)
    except OSError:
        pass  # unwritable: numba finds the directory unusable and falls back to its default places
    os.environ["NUMBA_CACHE_DIR"] = os.environ[_OURS] = str(path)
    if "numba" in sys.modules:  # imported before us: its configuration was read without our directory
        from numba.core import config

        config.reload_config()
    return path


def cache_dir() -> Path:
    """Where compiled kernels are cached in this process."""
    if "numba" in sys.modules:
        from numba.core import config

        if config.CACHE_DIR:
            return Path(config.CACHE_DIR)
    return Path(os.environ["NUMBA_CACHE_DIR"])


configure()
