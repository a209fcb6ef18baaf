"""Compiling on every core: the recorded signatures are the ones a run compiles, a cold start hands
them all to the helper processes, and nothing stale or broken can stop a run."""
import json
import os
import subprocess
import sys

import pytest

from twin import parallel_compile as pc

# In a fresh process on an empty cache: prepare on two processes with one kernel left out of the list,
# then the warmup runs; print what they still had to compile.
COLD = """
import json, sys
from numba.core import event
from twin import parallel_compile as pc
left_out = sys.argv[1]
entries = [e for e in pc.load() if e["kernel"] != left_out]
pc.load = lambda path=None: entries
compiled = []
class Seen(event.Listener):
    def on_start(self, ev):
        f = ev.data["dispatcher"].py_func
        if f.__module__.split(".")[0] in ("twin", "agents", "policies"):
            compiled.append(f"{f.__module__}:{f.__name__}")
    def on_end(self, ev):
        pass
missing = pc.prepare(jobs=2)  # this process compiles one share, the helper the other
from twin.warmup import warmup
with event.install_listener("numba:compile", Seen()):
    warmup()
print(json.dumps({"missing": missing, "compiled_here": sorted(set(compiled))}))
"""


@pytest.mark.slow
def test_a_cold_start_leaves_nothing_to_compile_but_what_the_list_lacks(tmp_path):
    """Every kernel the warmup runs call is in the list and compiled by the helpers; the one kernel
    taken out of the list is compiled by the run itself (so the check sees a kernel the list misses)."""
    left_out = "agents.residents:update_satisfaction"
    assert left_out in {e["kernel"] for e in pc.load()}
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_DISABLE_JIT", pc.JOBS_ENV)}
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
    out = subprocess.run([sys.executable, "-c", COLD, left_out], env=env, capture_output=True, text=True,
                         timeout=1800, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["missing"] == len(pc.load()) - 1
    assert "on 2 processes" in out.stderr
    # prepare compiled every listed kernel (callees with them); the runs compiled only the one left out
    assert [k for k in seen["compiled_here"] if k in {e["kernel"] for e in pc.load()}] == [left_out]


def test_signatures_round_trip_through_json():
    for e in pc.load():
        sig = tuple(pc.decode(t) for t in e["signature"])
        assert [pc.encode(t) for t in sig] == e["signature"]
        assert json.loads(json.dumps(e["signature"])) == e["signature"]


def test_an_unknown_type_names_itself():
    from numba.core import types

    with pytest.raises(TypeError, match="complex128"):
        pc.encode(types.complex128)


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
    monkeypatch.setattr(pc, "_prepared", set())
    assert pc.prepare(jobs=1) == 0
    monkeypatch.setenv(pc.JOBS_ENV, "3")
    assert pc.jobs_available() == 3


def test_a_failed_helper_is_said_and_the_run_goes_on(monkeypatch):
    import io

    cheap = [e for e in pc.load() if e["kernel"] in ("twin.rng:uniforms", "twin.rng:uniforms_at")]
    assert len(cheap) == 2
    monkeypatch.setattr(pc, "_prepared", set())
    monkeypatch.setattr(pc, "load", lambda path=None: cheap)
    monkeypatch.setattr(pc, "missing", lambda entries: list(entries))
    monkeypatch.setattr(pc.sys, "executable", "/bin/false")  # the helper exits at once, failing
    said = io.StringIO()
    assert pc.prepare(jobs=2, stream=said) == 2
    assert "1 compile helper(s) failed" in said.getvalue() and "compile on first use" in said.getvalue()
