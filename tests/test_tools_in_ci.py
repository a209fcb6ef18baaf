"""Outside tools (chromium, solc, ganache): a missing one skips its tests here but fails them in CI.

``require_tool`` and the ``tool`` marker (``tests/conftest.py``) are the one
place where the suite decides; with ``CI=true`` a missing tool is a failure,
so a CI machine without chromium cannot stay green by skipping.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def test_a_missing_tool_skips_here_and_fails_in_ci(monkeypatch, require_tool):
    require_tool("solc", None)  # installed: nothing happens, in CI or not
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="solc is missing: node is not on PATH"):
        require_tool("solc", "node is not on PATH")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require_tool("solc", "node is not on PATH")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="solc is missing: node is not on PATH"):
        require_tool("solc", "node is not on PATH")


MARKED = '''
import pytest


@pytest.fixture
def expensive():
    raise AssertionError("built before the tool was checked")


@pytest.mark.tool("chromium", "not at /nowhere/chromium")
def test_draws(expensive):
    pass


@pytest.mark.tool("chromium", None)
def test_runs():
    pass
'''


@pytest.mark.slow
def test_in_ci_the_tool_marker_fails_a_test_before_its_fixtures_are_built(tmp_path):
    (tmp_path / "test_marked.py").write_text(MARKED)
    env = dict(os.environ, CI="true", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "1 passed, 1 error" in done.stdout, done.stdout[-3000:]
    assert "chromium is missing: not at /nowhere/chromium (CI=true" in done.stdout
    assert "built before the tool was checked" not in done.stdout
