"""Compiling the kernels on every core at once, when the cache lacks them.

numba compiles one kernel at a time in a process (a global compiler lock), so a
first run spends most of a minute on one core while the others idle.  The
signatures the engine compiles are known ahead (:data:`SIGNATURES`, recorded
from ``twin warmup``'s tiny runs by ``python -m twin.parallel_compile --record``),
so :func:`prepare` hands the missing ones to as many processes as there are
cores, each writing numba's cache, and the run then loads them from there.

It only ever saves time: a signature it does not know, or a helper that fails,
leaves that kernel to be compiled on first call as before.  One process at a
time prepares a cache directory (a lock beside it), so several cold starts at
once (Ray actors, parallel tests) compile each kernel once.
``COMMUNITY_TWIN_COMPILE_JOBS=1`` turns it off.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

SIGNATURES = Path(__file__).with_name("kernel_signatures.json")
JOBS_ENV = "COMMUNITY_TWIN_COMPILE_JOBS"
_PACKAGES = ("twin", "agents", "policies")
_RECORDING = "COMMUNITY_TWIN_RECORDING_SIGNATURES"
_prepared: set[str] = set()  # cache directories this process has prepared already


# ------------------------------------------------------------------ numba types as JSON
def encode(t):
    """A numba argument type as JSON (the kinds the kernels take); TypeError for any other."""
    from numba.core import types

    if isinstance(t, types.Array):
        return ["array", encode(t.dtype), t.ndim, t.layout, not t.mutable]
    if isinstance(t, (types.Integer, types.Float, types.Boolean)):
        return str(t)
    if isinstance(t, types.DictType):
        return ["dict", encode(t.key_type), encode(t.value_type)]
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
    if kind == "array":
        dtype, ndim, layout, readonly = rest
        return types.Array(decode(dtype), ndim, layout, readonly=readonly)
    if kind == "dict":
        return types.DictType(decode(rest[0]), decode(rest[1]))
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
    """Compile every kernel the warmup runs meet, into an empty cache, and write the kernels called
    from Python: each one's signature and its compile seconds (the kernels it calls included, as they
    compile with it: one process compiles a kernel and its callees, so no two compile the same callee
    unless two callers share it).

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
            if not started and func.__module__.split(".")[0] in _PACKAGES:  # called from Python
                entries.append({"kernel": f"{func.__module__}:{func.__name__}",
                                "signature": [encode(t) for t in ev.data["args"]], "seconds": round(seconds, 1)})

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


@contextmanager
def _locked(directory: Path):
    """Hold the cache directory's compile lock (blocking); without fcntl, no lock."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".compile.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prepare(jobs: int | None = None, stream=None, progress: bool = False) -> int:
    """Compile the kernels the cache lacks on ``jobs`` processes (this one among them); returns how many
    kernels were missing.  Cheap once done: a process prepares its cache directory once, by a look at
    the cache's index files.  ``progress``: a bar counting the kernels compiled, by every process."""
    from numba.core import config

    if config.DISABLE_JIT:
        return 0
    from twin._numba_cache import cache_dir

    where = cache_dir()
    if str(where) in _prepared:
        return 0
    _prepared.add(str(where))
    jobs = jobs or jobs_available()
    entries = load()
    if jobs < 2 or not missing(entries):
        return 0
    with _locked(where):
        todo = missing(entries)  # another process may have prepared it while this one waited
        if not todo:
            return 0
        groups = split(todo, jobs)
        from twin import warmup

        warmup.say_compiling(f"on {len(groups)} processes", stream)
        env = dict(os.environ, **{JOBS_ENV: "1"})
        bar = _Bar(len(todo), stream) if progress else None
        tick = bar.advance if bar else None
        with tempfile.TemporaryFile("w+") as errors:  # a file, not a pipe: a chatty helper never blocks
            helpers = [subprocess.Popen([sys.executable, "-m", "twin.parallel_compile", "--worker"], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE if bar else subprocess.DEVNULL,
                                        stderr=errors, text=True)
                       for _ in groups[1:]]
            readers = []
            for helper, group in zip(helpers, groups[1:]):
                try:
                    helper.stdin.write(json.dumps(group))
                    helper.stdin.close()
                except OSError:  # it died already (reported below)
                    pass
                if bar:
                    readers.append(threading.Thread(target=_follow, args=(helper.stdout, tick), daemon=True))
                    readers[-1].start()
            compile_entries(groups[0], done=tick)
            failed = [h.returncode for h in helpers if h.wait() != 0]
            for reader in readers:
                reader.join()
            if bar:
                bar.close()
            if failed:  # its kernels compile on first call instead: slower, never wrong
                errors.seek(0)
                last = (errors.read().strip().splitlines() or ["no message"])[-1]
                print(f"twin: {len(failed)} compile helper(s) failed ({last}); their kernels compile on first use",
                      file=stream or sys.stderr, flush=True)
    return len(todo)


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
            print(line, file=sys.stderr)
        return 0
    if args.record:
        if not os.environ.get(_RECORDING):  # compile everything: in a child process on an empty cache
            with tempfile.TemporaryDirectory(prefix="twin-record-") as tmp:
                env = dict(os.environ, NUMBA_CACHE_DIR=tmp, **{JOBS_ENV: "1", _RECORDING: "1"})
                return subprocess.call([sys.executable, "-m", "twin.parallel_compile", "--record"], env=env)
        entries = record()
        print(f"{len(entries)} kernel signatures, {sum(e['seconds'] for e in entries):.0f} s of compiling "
              f"(inclusive), written to {SIGNATURES}")
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(_main())
