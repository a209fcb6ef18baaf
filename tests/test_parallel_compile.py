"""Compiling on every core: the recorded signatures are the ones a run compiles, a cold start hands
them all to the helper processes, and nothing stale or broken can stop a run."""
import json
import os
import subprocess
import sys

import pytest

from twin import parallel_compile as pc

# In a fresh process on an empty cache: prepare on two processes with one kernel left out of the list,
# then the warmup runs; print the kernels they still compiled, called from Python (their callees aside).
COLD = """
import json, sys
from numba.core import event
from twin import parallel_compile as pc
from twin._numba_cache import PACKAGES
left_out = sys.argv[1]
entries = [e for e in pc.load() if e["kernel"] != left_out]
pc.load = lambda path=None: entries
compiled, depth = [], []
class Seen(event.Listener):
    def on_start(self, ev):
        f = ev.data["dispatcher"].py_func
        if not depth and f.__module__.split(".")[0] in PACKAGES:
            compiled.append(f"{f.__module__}:{f.__name__}")
        depth.append(1)
    def on_end(self, ev):
        depth.pop()
missing = pc.prepare(jobs=2)  # this process compiles one share, the helper the other
from twin.warmup import warmup
with event.install_listener("numba:compile", Seen()):
    warmup()
print(json.dumps({"missing": missing, "compiled_here": sorted(set(compiled))}))
"""


@pytest.mark.slow
def test_a_cold_start_leaves_nothing_to_compile_but_what_the_list_lacks(tmp_path):
    """Every kernel the warmup runs call from Python is in the list (with its signature) and compiled
    ahead; the one kernel taken out of the list is compiled by the runs themselves, so the check does
    see a kernel the list misses -- a new kernel, a renamed one, or one whose argument types changed.
    The fix for a failure here: ``python -m twin.parallel_compile --record``."""
    left_out = "agents.residents:update_satisfaction"
    assert left_out in {e["kernel"] for e in pc.load()}
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_DISABLE_JIT", pc.JOBS_ENV)}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
    out = subprocess.run([sys.executable, "-c", COLD, left_out], env=env, capture_output=True, text=True,
                         timeout=1800, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["missing"] == len(pc.load()) - 1
    assert "on 2 processes" in out.stderr and "did not compile ahead" not in out.stderr
    assert seen["compiled_here"] == [left_out], "the kernel list is stale: python -m twin.parallel_compile --record"


def test_signatures_round_trip_through_json():
    for e in pc.load():
        sig = tuple(pc.decode(t) for t in e["signature"])
        assert [pc.encode(t) for t in sig] == e["signature"]
        assert json.loads(json.dumps(e["signature"])) == e["signature"]


def test_structured_rows_round_trip_to_the_type_numba_sees():
    """The service cores write event and journal rows: packed records, offsets and all."""
    import numba
    import numpy as np

    from twin.services.events import EVENT_DTYPE
    from twin.services.ledger import JOURNAL_DTYPE

    for dtype in (EVENT_DTYPE, JOURNAL_DTYPE, np.dtype([("a", "i1"), ("b", "f8")], align=True)):
        t = numba.typeof(np.zeros(3, dtype))
        assert pc.decode(json.loads(json.dumps(pc.encode(t)))) == t


def test_an_unknown_type_names_itself():
    import numba
    import numpy as np
    from numba.core import types

    with pytest.raises(TypeError, match="complex128"):
        pc.encode(types.complex128)
    with pytest.raises(TypeError, match="nested or array fields"):  # rows holding an array: no form yet
        pc.encode(numba.typeof(np.zeros(2, [("a", "f8", (3,)), ("b", "i8")])))


def test_stale_entries_are_reported_not_raised():
    failed = pc.compile_entries([{"kernel": "twin.rng:no_such_kernel", "signature": ["int64"], "seconds": 1.0},
                                 {"kernel": "twin.rng:uniforms", "signature": ["float64"], "seconds": 1.0}])
    assert len(failed) == 2 and failed[0].startswith("twin.rng:no_such_kernel: AttributeError")
    assert failed[1].startswith("twin.rng:uniforms: ")  # a signature the kernel does not take


def test_split_balances_compile_seconds_and_keeps_the_recorded_order():
    entries = [{"kernel": f"k{i}", "seconds": s} for i, s in enumerate([1, 9, 2, 8, 3, 3])]
    groups = pc.split(entries, 2)
    assert sorted(sum(e["seconds"] for e in g) for g in groups) == [13, 13]
    for g in groups:
        assert [e["kernel"] for e in g] == sorted((e["kernel"] for e in g), key=lambda k: int(k[1:]))
    assert len(pc.split(entries[:1], 4)) == 1  # no empty groups


def test_one_job_or_no_jit_prepares_nothing(monkeypatch):
    from numba.core import config

    monkeypatch.setattr(pc, "missing", lambda entries: list(entries))  # as if the cache were empty
    monkeypatch.setattr(pc, "_prepared", set())
    assert pc.prepare(jobs=1) == 0
    monkeypatch.setattr(pc, "_prepared", set())
    monkeypatch.setattr(config, "DISABLE_JIT", True)
    assert pc.prepare(jobs=2) == 0
    monkeypatch.setenv(pc.JOBS_ENV, "3")
    assert pc.jobs_available() == 3


def test_jobs_stop_where_more_cannot_help():
    entries = [{"kernel": "a", "seconds": 10.0, "depth": 0}, {"kernel": "b", "seconds": 5.0, "depth": 0},
               {"kernel": "c", "seconds": 5.0, "depth": 0}, {"kernel": "d", "seconds": 30.0, "depth": 1}]
    assert pc.jobs_for(entries, 64) == 2  # 20 s of work, 10 of it one kernel: a third process would idle
    assert pc.jobs_for(entries, 1) == 1
    many = [{"kernel": str(k), "seconds": 1.0, "depth": 0} for k in range(100)]
    assert pc.jobs_for(many, 64) == pc.MAX_JOBS


def test_a_callee_with_several_signatures_compiles_first():
    def entry(kernel, sig, depth):
        return {"kernel": kernel, "signature": sig, "seconds": 0.1, "depth": depth}

    entries = [entry("m:check", ["int64"], 1), entry("m:earn", ["int64"], 0), entry("m:check", ["float64"], 1),
               entry("m:once", ["int64"], 1), entry("m:check", ["int64"], 1), entry("m:settle", ["int64"], 0)]
    first = pc.shared_callees(entries)
    assert [(e["kernel"], e["signature"]) for e in first] == [("m:check", ["int64"]), ("m:check", ["float64"])]
    assert pc.shared_callees([e for e in entries if e["signature"] == ["int64"]]) == []


def test_the_lock_never_stops_a_run_where_it_cannot_be_taken(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a cache "directory" that is a file: nothing can be made under it
    with pc._locked(blocked / "cache"):
        pass
    with pc._locked(tmp_path / "cache"):
        assert (tmp_path / "cache" / ".compile.lock").exists()


@pytest.fixture
def cheap_cold_start(monkeypatch, tmp_path):
    """prepare() on two cheap kernels as if the cache lacked them, its lock in ``tmp_path``."""
    from numba.core import config

    import twin._numba_cache
    from twin import warmup

    if config.DISABLE_JIT:
        pytest.skip("nothing compiles with NUMBA_DISABLE_JIT=1")
    cheap = [e for e in pc.load() if e["kernel"] in ("twin.rng:uniforms", "twin.rng:uniforms_at")]
    assert len(cheap) == 2
    monkeypatch.setattr(pc, "_prepared", set())
    monkeypatch.setattr(pc, "load", lambda path=None: cheap)
    monkeypatch.setattr(pc, "missing", lambda entries: list(entries))
    monkeypatch.setattr(twin._numba_cache, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(warmup, "_noticed", False)
    monkeypatch.setattr(pc, "jobs_for", lambda entries, jobs=None: 2)


@pytest.mark.parametrize("helper", [[sys.executable, "-c", "raise SystemExit(1)"], ["/no/such/python"]],
                         ids=["fails", "cannot start"])
def test_a_failed_helper_is_said_and_the_run_goes_on(cheap_cold_start, monkeypatch, helper):
    import io

    monkeypatch.setattr(pc, "_helper_command", lambda: helper)
    said = io.StringIO()
    assert pc.prepare(jobs=2, stream=said) == 2
    assert "1 compile helper(s) failed or could not start" in said.getvalue()
    assert "compile on first use" in said.getvalue()


def test_a_stale_entry_is_said_once_with_the_fix(cheap_cold_start, monkeypatch):
    import io

    stale = dict(pc.load()[0], signature=["float64"], depth=0)  # a signature the kernel does not take
    monkeypatch.setattr(pc, "load", lambda path=None: [stale, stale])
    said = io.StringIO()
    pc.prepare(jobs=2, stream=said)
    assert "2 listed kernel signature(s) did not compile ahead" in said.getvalue()
    assert "python -m twin.parallel_compile --record" in said.getvalue()
    assert "helper(s) failed" not in said.getvalue()


def test_a_stuck_helper_is_stopped(monkeypatch):
    monkeypatch.setattr(pc, "HELPER_TIMEOUT_S", 0.5)
    stuck = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert pc._wait(stuck) is None and stuck.returncode is not None  # stopped, not waited for a minute
    assert pc._wait(subprocess.Popen([sys.executable, "-c", "pass"])) == 0
    assert pc._wait(None) is None
