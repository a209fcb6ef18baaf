"""Shared test helpers: the hypothesis profile, state comparison, batch-vs-singles, tools.

Helpers are handed out as session fixtures (plain functions) so hypothesis
tests can use them without function-scoped fixture warnings.
"""
import importlib.util
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import twin  # noqa: F401  (chooses numba's cache directory before any test module imports numba)

# the first example of a property test may pay for JIT compilation; never
# count that against a deadline
settings.register_profile("twin", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("twin")


def pytest_configure(config):
    # with NUMBA_DISABLE_JIT=1 the hash runs on numpy scalars, which warn on the
    # uint64 wrap-around that the hash relies on; compiled code wraps silently
    config.addinivalue_line("filterwarnings", "ignore:overflow encountered in scalar:RuntimeWarning:twin.rng")
    config.addinivalue_line("markers", "tool(name, missing): needs an outside tool; ``missing`` says why it "
                                       "cannot run here, None when it can (see require_tool)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # before the test's fixtures are built, as skipif would
    for mark in item.iter_markers("tool"):
        require_tool(*mark.args, **mark.kwargs)


def assert_state_equal(a, b, path="state"):
    """Deep equality of snapshots (dicts of arrays, lists and scalars), naming the first difference."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{path}: keys differ"
        for key in a:
            assert_state_equal(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"{path}: shape {a.shape} != {b.shape}"
        # NaN marks "not yet" in time columns: two NaNs are the same state
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), f"{path} differs"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _concat(arrays):
    return np.concatenate(arrays) if arrays else None


def batch_vs_singles(build, method, columns, state=lambda s: s.snapshot()):
    """Run ``columns`` as one batch on one fresh service and one command at a time on another.

    Asserts the same reasons, events, new ids and final state, and returns the
    batch's :class:`Outcome` for further checks.
    """
    whole_service, single_service = build(), build()
    columns = [np.asarray(c) for c in columns]
    whole = getattr(whole_service, method)(*columns)
    parts = [getattr(single_service, method)(*(c[i : i + 1] for c in columns)) for i in range(len(columns[0]))]
    if parts:
        assert np.array_equal(whole.reasons, _concat([p.reasons for p in parts]))
        assert np.array_equal(whole.events, _concat([p.events for p in parts]))
        if whole.ids is not None:
            assert np.array_equal(whole.ids, _concat([p.ids for p in parts]))
    assert_state_equal(state(whole_service), state(single_service))
    return whole


@pytest.fixture(scope="session")
def same_state():
    return assert_state_equal


@pytest.fixture(scope="session")
def batch_equals_singles():
    return batch_vs_singles


def require_tool(tool: str, missing: str | None) -> None:
    """Go on when an outside tool (chromium, solc, ganache) is installed (``missing`` is None).

    Otherwise skip the test here, but fail it in CI (``CI=true``): there
    ``.ci/run`` installs every tool, so a missing one is a broken build, not
    a reason to let the test pass unseen.
    """
    if missing is None:
        return
    message = f"{tool} is missing: {missing}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true, where .ci/run must have installed it)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session", name="require_tool")
def require_tool_fixture():
    return require_tool


@pytest.fixture
def mosquitto(tmp_path):
    """A running Mosquitto on a free loopback port (a :class:`live_bridge.brokers.Mosquitto`).

    One per test, so that a test may stop, kill and restart it; its persistence lives in
    the test's ``tmp_path``.
    """
    from live_bridge.brokers import Mosquitto, mosquitto_missing

    require_tool("mosquitto", mosquitto_missing())
    with Mosquitto(persistence_dir=tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the test module, started as the product starts one
    (:func:`twin.sweep.ray_session`: loopback only, no dashboard): ~5 s and ~800 MB."""
    if importlib.util.find_spec("ray") is None:
        require_tool("ray", "pip install 'ray[default]'")
    from twin.sweep import ray_session

    with ray_session() as ray:
        yield ray
