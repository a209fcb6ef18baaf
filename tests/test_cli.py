"""The ``twin`` command: a run folder with everything DESIGN.md lists, readable back."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from twin.results import Result
from twin.services.events import EVENT_DTYPE

SMALL = ["community.households=120", "community.buildings=3", "sim.days=15"]


def twin_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "twin.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    out = twin_cli("run", *SMALL, "seed=3", cwd=d)
    assert out.returncode == 0, out.stderr
    assert "participation_rate" in out.stdout
    folder = out.stdout.strip().splitlines()[-1].split("run folder: ")[1]
    assert folder.startswith("outputs/default-")
    return d / folder


def test_run_folder_holds_every_output(run_dir):
    for name in ("config.yaml", "provenance.json", "summary.json", "kpis.csv", "events.npy", "events.csv.gz",
                 "map.json", "report.html"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("participation_rate", "points_issued", "points_redeemed", "timebank_hours_exchanged",
                "tickets_opened", "tickets_completed", "repair_wait_minutes_mean", "repair_resolution_minutes_mean",
                "repair_rating_mean", "alerts_raised", "alert_precision", "alert_recall",
                "alert_response_minutes_mean", "turnout_mean", "satisfaction_index"):
        assert key in summary
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert prov["seed"] == 3 and prov["numba_threads"] >= 1 and "run_s" in prov["timings_s"]
    assert np.load(run_dir / "events.npy").dtype == EVENT_DTYPE


def test_result_load_reads_the_folder_back(run_dir):
    r = Result.load(run_dir)
    saved = json.loads((run_dir / "summary.json").read_text())
    for k, v in r.summary.items():
        assert (v is None and math.isnan(saved[k])) or v == saved[k] or (math.isnan(v) and saved[k] is None)
    assert len(r.kpis) == 15
    assert r.config["community"]["households"] == 120


def test_report_redraws(run_dir):
    (run_dir / "report.html").unlink()
    out = twin_cli("report", str(run_dir), cwd=run_dir)
    assert out.returncode == 0, out.stderr
    assert (run_dir / "report.html").stat().st_size > 1000


def test_out_option_and_same_seed_same_summary(tmp_path):
    a = twin_cli("run", *SMALL, "seed=3", f"out={tmp_path / 'a'}", cwd=tmp_path)
    assert a.returncode == 0, a.stderr
    b = twin_cli("run", *SMALL, "seed=3", f"out={tmp_path / 'b'}", cwd=tmp_path)
    assert b.returncode == 0, b.stderr
    assert (tmp_path / "a" / "summary.json").read_text() == (tmp_path / "b" / "summary.json").read_text()


def test_a_config_error_is_one_clear_line(tmp_path):
    out = twin_cli("run", "community.housholds=3", cwd=tmp_path)
    assert out.returncode == 2
    assert "unknown key 'community.housholds'" in out.stderr and "Traceback" not in out.stderr


def test_scenarios_lists(tmp_path):
    out = twin_cli("scenarios", cwd=tmp_path)
    assert "default" in out.stdout.split() and "queue_check" in out.stdout.split()


def test_compare_reports_differences_with_intervals(tmp_path):
    out = twin_cli("compare", "--baseline", " ".join(SMALL + ["residents.reward_effect=0"]),
                   "--policy", " ".join(SMALL), "-n", "3", "--out", str(tmp_path / "cmp"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    table = json.loads((tmp_path / "cmp" / "compare.json").read_text())["kpis"]
    p = table["points_issued"]
    assert p["policy"] > p["baseline"] and p["low"] > 0  # rewards raise participation, surely over 3 seeds
    assert (tmp_path / "cmp" / "compare.html").is_file()
