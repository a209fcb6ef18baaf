"""numba's kernel cache is keyed on the package's sources (``twin/_numba_cache.py``).

numba checks a cached kernel against its own file only, so a caller kept the
old code of an edited callee in another module.  The end-to-end test builds a
small tree (the real ``twin/__init__.py`` and ``twin/_numba_cache.py``, a
kernel in ``agents`` calling one in ``policies``), edits the callee and runs
it again in a fresh process: with the per-hash directory the caller sees the
edit; pointed at the first run's directory by an explicit ``NUMBA_CACHE_DIR``
(the user's override, and numba's own behaviour) it misses the same edit,
which shows the test can fail.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import twin
from twin import _numba_cache

REPO = Path(twin.__file__).resolve().parent.parent


def test_the_suite_caches_kernels_where_twin_chose():
    from numba.core import config

    assert _numba_cache.cache_dir() == Path(os.environ["NUMBA_CACHE_DIR"]) == Path(config.CACHE_DIR)
    if os.environ["NUMBA_CACHE_DIR"] == os.environ.get(_numba_cache._OURS):  # not the user's own choice
        assert _numba_cache.cache_dir().parent == _numba_cache.cache_root()


RULE = "from numba import njit\nfrom policies.sub import table\n\n\n@njit\ndef value():\n    return table.VALUE\n"


def test_the_hash_follows_the_kernels_sources_only(tmp_path):
    files = {"twin/__init__.py": "VALUE = 1\n",
             "agents/rule.py": RULE,  # a kernel module
             "policies/sub/table.py": "VALUE = 1\n",  # a module a kernel module imports
             "twin/server.py": "VALUE = 1\n",  # nothing compiled reads it
             "elsewhere/x.py": "VALUE = 1\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    before = _numba_cache.source_hash(tmp_path)
    os.utime(tmp_path / "agents/rule.py", (1.0, 1.0))  # a timestamp is not a change
    (tmp_path / "elsewhere/x.py").write_text("VALUE = 2\n")  # nor is another package
    (tmp_path / "twin/server.py").write_text("VALUE = 2\n")  # nor a module no kernel is made of
    (tmp_path / "twin/notes.txt").write_text("not a source\n")
    assert _numba_cache.source_hash(tmp_path) == before
    (tmp_path / "policies/sub/table.py").write_text("VALUE = 2\n")  # one byte of what a kernel imports
    assert _numba_cache.source_hash(tmp_path) != before
    after = _numba_cache.source_hash(tmp_path)
    (tmp_path / "agents/rule.py").write_text(RULE + "\n")
    assert _numba_cache.source_hash(tmp_path) != after


def test_the_real_kernels_sources_are_covered():
    names = {p.relative_to(_numba_cache._ROOT).as_posix() for p in _numba_cache.kernel_sources(_numba_cache._ROOT)}
    assert {"agents/sensors.py", "twin/rng.py", "twin/services/ledger.py", "twin/services/points.py",
            "twin/services/events.py"} <= names
    assert not {"twin/cli.py", "twin/report.py"} & names


def test_an_unchanged_tree_is_not_parsed_again(tmp_path, monkeypatch):
    """The hash is remembered under the whole tree's content: a second start reads, never parses;
    an edit anywhere in the packages is a new tree, parsed afresh."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tree(tmp_path / "src")
    first = _numba_cache.source_hash(root)
    parsed = []
    real = _numba_cache.kernel_sources
    monkeypatch.setattr(_numba_cache, "kernel_sources", lambda *a: parsed.append(1) or real(*a))
    assert _numba_cache.source_hash(root) == first and parsed == []
    (root / "agents/notes.py").write_text("# no kernels here\n")  # not a kernel source: the same hash, parsed
    assert _numba_cache.source_hash(root) == first and parsed == [1]
    (root / "policies/callee.py").write_text(CALLEE.format(3))
    third = _numba_cache.source_hash(root)
    assert third != first and parsed == [1, 1]
    memo = tmp_path / "xdg/community-twin/numba/source-hashes.json"
    damaged = {key: None for key in json.loads(memo.read_text())}
    memo.write_text(json.dumps(damaged))  # a memo not ours to trust: computed afresh, the right hash
    assert _numba_cache.source_hash(root) == third and len(parsed) == 3
    memo.write_text("{not json")
    assert _numba_cache.source_hash(root) == third and len(parsed) == 4


def test_pruning_keeps_the_newest_and_the_recently_used(tmp_path):
    now = time.time()
    ages_h = {"a": 2, "b": 3, "c": 4, "d": 5, "e": 0.1}  # e: used minutes ago, maybe still compiling
    for name, age in ages_h.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "k.nbi").write_text("")
        os.utime(tmp_path / name, (now - age * 3600, now - age * 3600))
    (tmp_path / "new").mkdir()
    removed = _numba_cache.prune(tmp_path, keep=tmp_path / "new", n_keep=3, now=now)
    assert sorted(p.name for p in removed) == ["b", "c", "d"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "e", "new"]


CALLEE = "from numba import njit\n\nimport twin  # noqa: F401\n\n\n@njit(cache=True)\ndef value():\n    return {}\n"
CALLER = ("from numba import njit\n\nimport twin  # noqa: F401\nfrom policies.callee import value\n\n\n"
          "@njit(cache=True)\ndef twice():\n    return 2 * value()\n")
PROBE = ("import numba, agents.caller as m, twin, twin._numba_cache as c; "
         "print(twin.__file__); print(c.cache_dir()); print(numba.core.config.CACHE_DIR); print(m.twice())")


def tree(root: Path) -> Path:
    for rel in ("twin/__init__.py", "twin/_numba_cache.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes((REPO / rel).read_bytes())
    for package in ("agents", "policies"):
        (root / package).mkdir()
        (root / package / "__init__.py").write_text("")
    (root / "policies/callee.py").write_text(CALLEE.format(1))
    (root / "agents/caller.py").write_text(CALLER)
    return root


def probe(root: Path, env: dict) -> tuple[Path, Path, int]:
    """In a fresh process (numba imported first): the cache directory twin chose, numba's, and the kernel's value."""
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    where, chosen, numba_dir, value = out.stdout.split()
    assert Path(where).parent == root / "twin"  # the copy, not the installed package
    return Path(chosen), Path(numba_dir), int(value)


@pytest.mark.slow
def test_editing_a_called_kernel_reaches_its_callers_through_the_cache(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}  # compiled, whatever the suite runs
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")  # NUMBA_CACHE_DIR stays the suite's, inherited
    root = tree(tmp_path)
    before, numba_dir, value = probe(root, env)
    assert value == 2
    assert before == numba_dir == tmp_path / "xdg/community-twin/numba" / _numba_cache.source_hash(root)
    assert list(before.rglob("*.nbi")), "the kernels were cached there"
    (root / "policies/callee.py").write_text(CALLEE.format(2))
    after, _, value = probe(root, env)
    assert after != before and value == 4
    # the control: kept in one directory, as numba does by itself, the caller misses the edit
    assert probe(root, dict(env, NUMBA_CACHE_DIR=str(before))) == (before, before, 2), \
        "numba now notices edited callees by itself: this control can go"
    made = sorted(d for d in before.parent.iterdir() if d.is_dir())
    assert made == sorted([before, after])  # an explicit directory: none made


def test_a_start_skips_numbas_blas_probe_and_linear_algebra_still_works():
    """A fresh process that loads kernels never imports scipy.linalg (numba's BLAS probe, 0.3-0.5 s),
    yet a kernel using np.dot or np.convolve compiles afterwards and agrees with NumPy."""
    script = """
import sys
import numpy as np
from numba import njit
from twin.services.points import Points
Points().enroll_batch([1])  # kernels loaded or compiled: numba's NumPy support is in
assert "numba.np.arraymath" in sys.modules
print("scipy.linalg" in sys.modules)
a, b = np.arange(4.0), np.arange(3.0) + 1
print(float(njit(lambda x: np.dot(x, x))(a)) == float(a @ a),
      np.allclose(njit(lambda x, y: np.convolve(x, y))(a, b), np.convolve(a, b)))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=600)
    assert done.stdout.split() == ["False", "True", "True"], done.stdout + done.stderr
