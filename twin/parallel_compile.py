"""Compiling the kernels on every core at once, when the cache lacks them.

numba compiles one kernel at a time in a process (a global compiler lock), so a
first run spends most of a minute on one core while the others idle.  The
signatures the engine compiles are known ahead (:data:`SIGNATURES`, recorded
from ``twin warmup``'s tiny runs by ``python -m twin.parallel_compile --record``),
so :func:`prepare` hands the missing ones to as many processes as there are
cores (no more than can help: :func:`jobs_for`), each writing numba's cache, and
the run then loads them from there.  A called kernel compiled with several
signatures is compiled first, here, since two processes saving two signatures of
one kernel at once could mix up numba's cache index (:func:`shared_callees`).

It only ever saves time: a signature it does not know, or a helper that fails,
leaves that kernel to be compiled on first call as before.  One process at a
time prepares a cache directory (a lock beside it), so several cold starts at
once (Ray actors, parallel tests) compile each kernel once.
``COMMUNITY_TWIN_COMPILE_JOBS=1`` turns it off.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from twin._numba_cache import PACKAGES  # the packages whose kernels these are

SIGNATURES = Path(__file__).with_name("kernel_signatures.json")
JOBS_ENV = "COMMUNITY_TWIN_COMPILE_JOBS"
_RECORDING = "COMMUNITY_TWIN_RECORDING_SIGNATURES"
_FAILED = "did not compile: "  # how a helper reports a listed signature it could not compile
_prepared: set[str] = set()  # cache directories this process has prepared already


# ------------------------------------------------------------------ numba types as JSON
def encode(t):
    """A numba argument type as JSON (the kinds the kernels take); TypeError for any other."""
    from numba.core import types

    if isinstance(t, types.Literal) and isinstance(t.literal_value, (bool, int, float)):
        return ["literal", t.literal_value]  # a constant argument of a called kernel (before Integer: a kind of it)
    if isinstance(t, types.Array):
        return ["array", encode(t.dtype), t.ndim, t.layout, not t.mutable]
    if isinstance(t, (types.Integer, types.Float, types.Boolean)):
        return str(t)
    if isinstance(t, types.DictType):
        return ["dict", encode(t.key_type), encode(t.value_type)]
    if isinstance(t, types.Record):  # a structured array's rows (the event log's, a journal's)
        from numba.np.numpy_support import as_struct_dtype

        dtype = as_struct_dtype(t)
        if any(dtype.fields[name][0].fields or dtype.fields[name][0].subdtype for name in dtype.names):
            raise TypeError(f"no JSON form for a record with nested or array fields: {dtype}")
        return ["record", [[name, dtype.fields[name][0].str, dtype.fields[name][1]] for name in dtype.names],
                dtype.itemsize, t.aligned]
    if isinstance(t, (types.NamedTuple, types.NamedUniTuple)):
        return ["namedtuple", f"{t.instance_class.__module__}:{t.instance_class.__qualname__}",
                [encode(x) for x in t.types]]
    if isinstance(t, types.UniTuple):
        return ["unituple", encode(t.dtype), t.count]
    if isinstance(t, types.Tuple):
        return ["tuple", [encode(x) for x in t.types]]
    raise TypeError(f"no JSON form for the numba type {t!r} ({type(t).__name__}): add one to twin.parallel_compile")


def decode(obj):
    """The numba type :func:`encode` wrote."""
    from numba.core import types

    if isinstance(obj, str):
        return types.boolean if obj == "bool" else getattr(types, obj)
    kind, *rest = obj
    if kind == "literal":
        return types.literal(rest[0])
    if kind == "array":
        dtype, ndim, layout, readonly = rest
        return types.Array(decode(dtype), ndim, layout, readonly=readonly)
    if kind == "dict":
        return types.DictType(decode(rest[0]), decode(rest[1]))
    if kind == "record":
        import numpy as np
        from numba.np.numpy_support import from_dtype

        fields, itemsize, aligned = rest
        return from_dtype(np.dtype({"names": [f[0] for f in fields], "formats": [f[1] for f in fields],
                                    "offsets": [f[2] for f in fields], "itemsize": itemsize}, align=aligned))
    if kind == "namedtuple":
        module, name = rest[0].split(":")
        cls = getattr(importlib.import_module(module), name)
        members = [decode(x) for x in rest[1]]
        if members and all(m == members[0] for m in members):
            return types.NamedUniTuple(members[0], len(members), cls)
        return types.NamedTuple(members, cls)
    if kind == "unituple":
        return types.UniTuple(decode(rest[0]), rest[1])
    if kind == "tuple":
        return types.Tuple([decode(x) for x in rest[0]])
    raise ValueError(f"unknown numba type form {obj!r}")


def dispatcher(name: str):
    """The kernel ``module:function``."""
    module, function = name.split(":")
    return getattr(importlib.import_module(module), function)


# ------------------------------------------------------------------ recording
def record(path: Path = SIGNATURES) -> list[dict]:
    """Compile every kernel the warmup runs meet, into an empty cache, and write what compiled, in the
    order compiles ended (callees before their callers): each kernel's signature, its compile seconds
    (the kernels it calls and compiles with it included) and ``depth``, 0 for a kernel called from Python.

    Run in a process of its own (``python -m twin.parallel_compile --record``): it needs a fresh cache.
    """
    from numba.core import event

    from twin.warmup import warmup

    entries, started = [], []

    class Listener(event.Listener):
        def on_start(self, ev):
            started.append(time.perf_counter())

        def on_end(self, ev):
            seconds = time.perf_counter() - started.pop()
            func = ev.data["dispatcher"].py_func
            if func.__module__.split(".")[0] in PACKAGES:
                entries.append({"kernel": f"{func.__module__}:{func.__name__}",
                                "signature": [encode(t) for t in ev.data["args"]], "seconds": round(seconds, 1),
                                "depth": len(started)})

    with event.install_listener("numba:compile", Listener()):
        warmup()
    path.write_text(json.dumps(entries, indent=1) + "\n")
    return entries


def load(path: Path = SIGNATURES) -> list[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return []


# ------------------------------------------------------------------ compiling
def compile_entries(entries, done=None) -> list[str]:
    """Compile (or load from the cache) each entry here, in order, calling ``done(kernel)`` after each;
    the failures, in words."""
    failed = []
    for e in entries:
        try:
            dispatcher(e["kernel"]).compile(tuple(decode(t) for t in e["signature"]))
        except Exception as exc:  # noqa: BLE001 -- a stale entry: that kernel compiles on first call instead
            failed.append(f"{e['kernel']}: {type(exc).__name__}: {exc}")
        if done is not None:
            done(e["kernel"])
    return failed


def missing(entries) -> list[dict]:
    """The entries whose kernel has nothing in the cache yet."""
    out = []
    for e in entries:
        try:
            cache = dispatcher(e["kernel"])._cache
            index = Path(cache._cache_file._index_path)
        except (AttributeError, ImportError, ValueError):
            continue  # not a cached kernel (or gone): nothing to prepare
        if not index.exists():
            out.append(e)
    return out


def split(entries, groups: int) -> list[list[dict]]:
    """Entries into ``groups`` of about equal compile seconds (longest first to the lightest group),
    each group in the recorded order."""
    order = {id(e): i for i, e in enumerate(entries)}
    out, load_s = [[] for _ in range(groups)], [0.0] * groups
    for e in sorted(entries, key=lambda e: -e["seconds"]):
        g = load_s.index(min(load_s))
        out[g].append(e)
        load_s[g] += e["seconds"]
    return [sorted(g, key=lambda e: order[id(e)]) for g in out if g]


def jobs_available() -> int:
    """Processes to compile with: ``COMMUNITY_TWIN_COMPILE_JOBS``, else the cores this process may use."""
    chosen = os.environ.get(JOBS_ENV, "")
    if chosen.strip().isdigit() and int(chosen) >= 1:
        return int(chosen)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


MAX_JOBS = 8  # each helper loads numba and LLVM (about 150 MB); past the longest kernel more cannot help


def jobs_for(entries, jobs: int | None = None) -> int:
    """Processes worth starting for ``entries``: the cores (or ``jobs``), but no more than the compile
    seconds over the longest kernel's (the longest one sets the pace) nor :data:`MAX_JOBS`."""
    top = [e["seconds"] for e in entries if e.get("depth", 0) == 0]
    useful = math.ceil(sum(top) / max(top)) if top and max(top) > 0 else 1
    return max(1, min(jobs or jobs_available(), useful, MAX_JOBS))


def shared_callees(entries) -> list[dict]:
    """The called kernels that compile with more than one signature.

    numba's cache gives each signature of a kernel its own data file, chosen when saving by a look at
    the kernel's index: two processes saving two signatures of one kernel at the same moment could
    pick the same file, and the index would then name one's machine code for the other.  So these
    compile in this process before any helper starts, and the helpers find them in the cache.
    """
    signatures = {}
    for e in entries:
        if e.get("depth", 0) > 0:
            signatures.setdefault(e["kernel"], {}).setdefault(json.dumps(e["signature"]), e)
    return [e for by_sig in signatures.values() if len(by_sig) > 1 for e in by_sig.values()]


@contextmanager
def _locked(directory: Path, stream=None):
    """Hold the cache directory's compile lock, saying so if another process holds it; without fcntl, or
    where the lock cannot be taken (a read-only cache, a file system without locks), go on without it."""
    try:
        import fcntl

        directory.mkdir(parents=True, exist_ok=True)
        f = open(directory / ".compile.lock", "w")
    except (ImportError, OSError):
        yield
        return
    with f:
        try:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"twin: another process is compiling the kernels into {directory}; waiting for it",
                      file=stream or sys.stderr, flush=True)
                fcntl.flock(f, fcntl.LOCK_EX)
        except OSError:
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _helper_command() -> list[str]:
    """How to start a helper; none where this is not a plain Python (a frozen application)."""
    if getattr(sys, "frozen", False) or not sys.executable:
        return []
    return [sys.executable, "-m", "twin.parallel_compile", "--worker"]


def _start_helper(command, group, env, errors, progress):
    """A helper compiling ``group`` (None if it cannot start: its kernels then compile on first use)."""
    try:
        helper = subprocess.Popen(command, env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE if progress else subprocess.DEVNULL, stderr=errors, text=True)
    except OSError:
        return None
    try:
        helper.stdin.write(json.dumps(group))
        helper.stdin.close()
    except OSError:  # it died already (reported with the others)
        pass
    return helper


def prepare(jobs: int | None = None, stream=None, progress: bool = False) -> int:
    """Compile the kernels the cache lacks on up to ``jobs`` processes (this one among them); returns how
    many were missing.  Cheap once done: a process prepares its cache directory once, by a look at the
    cache's index files.  ``progress``: a bar counting the kernels compiled, by every process.

    Never in the way: a helper that cannot start or fails leaves its kernels to compile on first use.
    """
    from numba.core import config

    if config.DISABLE_JIT:
        return 0
    from twin._numba_cache import cache_dir

    where = cache_dir()
    if str(where) in _prepared:
        return 0
    _prepared.add(str(where))
    entries = load()
    command = _helper_command()
    if jobs_for(entries, jobs) < 2 or not command or not missing(entries):
        return 0
    with _locked(where, stream):
        todo = missing(entries)  # another process may have prepared it while this one waited
        if not todo:
            return 0
        first = shared_callees(todo)
        top = [e for e in todo if e.get("depth", 0) == 0]
        groups = split(top, jobs_for(top, jobs)) or [[]]
        from twin import warmup

        warmup.say_compiling(f"on {len(groups)} processes", stream)
        env = dict(os.environ, **{JOBS_ENV: "1"})
        bar = _Bar(len(top), stream) if progress else None
        tick = bar.advance if bar else None
        failures = compile_entries(first)
        helpers, readers = [], []
        with tempfile.TemporaryDirectory(prefix="twin-compile-") as logs:  # files, not pipes: never blocks
            try:
                for k, group in enumerate(groups[1:]):
                    with open(Path(logs) / f"helper-{k}.txt", "w") as errors:
                        helper = _start_helper(command, group, env, errors, bar is not None)
                    helpers.append(helper)
                    if helper is not None and bar:
                        readers.append(threading.Thread(target=_follow, args=(helper.stdout, tick), daemon=True))
                        readers[-1].start()
                failures += compile_entries(groups[0], done=tick)
                codes = [_wait(h) for h in helpers]
            finally:
                for h in helpers:
                    if h is not None and h.poll() is None:  # interrupted: stop the helpers too
                        h.terminate()
                        h.wait()
            for reader in readers:
                reader.join()
            if bar:
                bar.close()
            failed = [k for k, code in enumerate(codes) if code != 0]
            for k in range(len(helpers)):  # (numba's warnings may be there too: only the helper's own lines)
                failures += [line[len(_FAILED):] for line in Path(logs, f"helper-{k}.txt").read_text().splitlines()
                             if line.startswith(_FAILED)]
        _say_failures(failed, failures, stream)
    return len(todo)


HELPER_TIMEOUT_S = 900.0  # ten times what the slowest share takes on two shared cores: a helper this late is stuck


def _wait(helper) -> int | None:
    """A helper's exit code; None if it never started or had to be stopped (stuck past the timeout)."""
    if helper is None:
        return None
    try:
        return helper.wait(timeout=HELPER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        helper.terminate()
        helper.wait()
        return None


def _say_failures(failed_helpers: list, failures: list[str], stream=None) -> None:
    """One line for helpers that failed or could not start, one for stale entries of the list."""
    out = stream or sys.stderr
    if failed_helpers:
        print(f"twin: {len(failed_helpers)} compile helper(s) failed or could not start; their kernels compile "
              "on first use", file=out, flush=True)
    stale = [line for line in failures if line.strip()]
    if stale:
        print(f"twin: {len(stale)} listed kernel signature(s) did not compile ahead ({stale[0]}); they compile "
              f"on first use (rewrite the list: python -m twin.parallel_compile --record)", file=out, flush=True)


class _Bar:
    """Kernels compiled so far, by this process and its helpers (advanced from their reader threads)."""

    def __init__(self, total: int, stream=None):
        from tqdm.auto import tqdm

        self._lock = threading.Lock()
        self._bar = tqdm(total=total, desc="compiling kernels", unit="kernel", leave=False, file=stream)

    def advance(self, kernel: str = "") -> None:
        with self._lock:
            self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


def _follow(lines, tick) -> None:
    """A helper's ``compiled <kernel>`` lines, each a step of the bar."""
    for line in lines:
        if line.startswith("compiled "):
            tick(line.split(" ", 1)[1].strip())
    lines.close()


def _main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m twin.parallel_compile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true",
                        help=f"compile the warmup runs' kernels into an empty cache and write {SIGNATURES.name}")
    parser.add_argument("--worker", action="store_true", help="compile the entries read (JSON) from stdin")
    args = parser.parse_args(argv)
    if args.worker:
        failed = compile_entries(json.loads(sys.stdin.read()), done=lambda k: print("compiled", k, flush=True))
        for line in failed:
            print(f"{_FAILED}{line}", file=sys.stderr)
        return 0
    if args.record:
        if not os.environ.get(_RECORDING):  # compile everything: in a child process on an empty cache
            with tempfile.TemporaryDirectory(prefix="twin-record-") as tmp:
                env = dict(os.environ, NUMBA_CACHE_DIR=tmp, **{JOBS_ENV: "1", _RECORDING: "1"})
                return subprocess.call([sys.executable, "-m", "twin.parallel_compile", "--record"], env=env)
        entries = record()
        top = [e for e in entries if e["depth"] == 0]
        print(f"{len(top)} kernels called from Python ({len(entries)} signatures with the kernels they call), "
              f"{sum(e['seconds'] for e in top):.0f} s of compiling, written to {SIGNATURES}")
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(_main())
