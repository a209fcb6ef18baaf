"""Sweeps on Ray: one task per run on a local Ray instance gives joblib's table, row for row."""

import pandas as pd
import pytest

from twin.config import ConfigError
from twin.sweep import kpi_names, ray_session, sweep

SMALL = ["community.households=60", "community.buildings=2", "sim.days=4", "seed=1,2",
         "policies.dispatch=fifo,nearest"]


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
