"""Sweeps on Ray: one task per run on a local Ray instance gives joblib's table, row for row."""
import importlib.util
import os

import pandas as pd
import pytest

from twin.config import ConfigError
from twin.sweep import kpi_names, ray_session, sweep

SMALL = ["community.households=60", "community.buildings=2", "sim.days=4", "seed=1,2",
         "policies.dispatch=fifo,nearest"]


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module (loopback, no dashboard, 2 CPUs)."""
    if importlib.util.find_spec("ray") is None:
        from tests.conftest import require_tool

        require_tool("ray", "pip install 'ray[default]'")
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(include_dashboard=False, num_cpus=2, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield ray
    ray.shutdown()


def test_a_sweep_on_ray_gives_joblibs_table(ray_local, tmp_path):
    by_joblib = sweep("default", SMALL, jobs=1)
    by_ray = sweep("default", SMALL, backend="ray", out=tmp_path)
    assert len(by_ray) == 4
    pd.testing.assert_frame_equal(by_ray, by_joblib)
    assert by_ray["points_issued"].nunique() > 1  # the runs differ: equal tables are not equal by accident
    assert pd.read_csv(tmp_path / "summary.csv", dtype={"seed": str, "policies.dispatch": str}).shape == (4, 2 + len(kpi_names()))


def test_ray_session_reuses_the_running_instance(ray_local):
    with ray_session() as ray:
        assert ray is ray_local and ray.is_initialized()
    assert ray_local.is_initialized()  # not shut down: it was not ours


def test_an_unknown_backend_is_refused_naming_the_choices():
    with pytest.raises(ConfigError, match="backend: 'dask' is not allowed; allowed: joblib, ray"):
        sweep("default", SMALL, backend="dask")
