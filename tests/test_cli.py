"""The ``twin`` command: a run folder with everything DESIGN.md lists, readable back."""
import json
import math
import re
import shutil
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


def test_compare_takes_overrides_for_both_arms_and_an_arms_own_win(tmp_path):
    out = twin_cli("compare", "--baseline", "residents.reward_effect=0", "--policy", "residents.reward_effect=1.2",
                   "-n", "2", "--out", str(tmp_path / "cmp"), *SMALL, "residents.reward_effect=0.5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    for arm, effect in (("baseline", 0.0), ("policy", 1.2)):
        assert record[arm] == [*SMALL, "residents.reward_effect=0.5", f"residents.reward_effect={effect:g}"]
        assert record["config"][arm]["residents"]["reward_effect"] == effect
        assert record["config"][arm]["community"]["households"] == 120


# ------------------------------------------------------------------ errors end in one line and a code
def one_line_error(out):
    """stderr is one `twin: ...` line (progress bars aside), without a traceback."""
    lines = [x for x in out.stderr.splitlines() if x.startswith("twin:")]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def damage(folder, how):
    if how == "truncated summary.json":
        text = (folder / "summary.json").read_text()
        (folder / "summary.json").write_text(text[: len(text) // 2])
        return "summary.json"
    if how == "summary.json of wrong types":
        summary = json.loads((folder / "summary.json").read_text())
        summary["tickets_opened"] = "many"
        (folder / "summary.json").write_text(json.dumps(summary))
        return "summary.json"
    if how == "empty events.npy":
        (folder / "events.npy").write_bytes(b"")
        return "events.npy"
    if how == "binary garbage in kpis.csv":
        (folder / "kpis.csv").write_bytes(bytes(range(256)) * 8)
        return "kpis.csv"
    if how == "text garbage in kpis.csv":
        (folder / "kpis.csv").write_text("lorem,ipsum\ndolor,sit\namet,consectetur\n")
        return "kpis.csv"
    if how == "kpis.csv of wrong types":
        kpis = (folder / "kpis.csv").read_text().splitlines()
        kpis[2] = ",".join(["oops"] * len(kpis[2].split(",")))
        (folder / "kpis.csv").write_text("\n".join(kpis))
        return "kpis.csv"
    raise AssertionError(how)


DAMAGES = ("truncated summary.json", "summary.json of wrong types", "empty events.npy", "binary garbage in kpis.csv",
           "text garbage in kpis.csv", "kpis.csv of wrong types")


@pytest.mark.parametrize("how", DAMAGES)
def test_report_of_a_damaged_folder_names_the_file(run_dir, tmp_path, how):
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    (folder / "report.html").unlink(missing_ok=True)
    name = damage(folder, how)
    out = twin_cli("report", str(folder), cwd=tmp_path)
    assert out.returncode == 3
    assert name in one_line_error(out)
    assert not (folder / "report.html").exists()  # no report drawn from garbage


def test_verify_of_a_damaged_folder_is_one_line(run_dir, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    damage(folder, "empty events.npy")
    (folder / "anchors.json").write_text('{"url": null, "chain_id": 1, "address": "0x0", "ac')
    out = twin_cli("verify", str(folder), cwd=tmp_path)
    assert out.returncode not in (0, 70)
    one_line_error(out)


def test_a_folder_that_is_no_run_is_one_line(tmp_path):
    out = twin_cli("report", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert out.returncode == 3 and "nowhere" in one_line_error(out)


def test_an_unexpected_error_hints_at_debug(monkeypatch, capsys):
    from twin import cli

    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "cmd_scenarios", broken)
    monkeypatch.delenv("TWIN_DEBUG", raising=False)
    assert cli.main(["scenarios"]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: a bug" in err and "--debug" in err and "TWIN_DEBUG=1" in err
    with pytest.raises(RuntimeError):
        cli.main(["scenarios", "--debug"])
    monkeypatch.setenv("TWIN_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main(["scenarios"])


# ------------------------------------------------------------------ memory
def test_a_run_too_big_for_the_machine_is_refused_up_front(tmp_path):
    from twin.memory import available_bytes

    households = int(available_bytes() / 800) + 10_000_000  # ~ 800 bytes of state each: surely more than there is
    out = twin_cli("run", f"community.households={households}", "sim.days=20", cwd=tmp_path)
    assert out.returncode == 4
    line = one_line_error(out)
    assert "GB of memory" in line and "available" in line and "--force" in line
    assert not (tmp_path / "outputs").exists()


def test_running_out_of_memory_is_one_line(monkeypatch, capsys, tmp_path):
    from twin import cli
    from twin.engine import Twin

    def exhausted(self, progress=None):
        raise MemoryError()

    monkeypatch.setattr(Twin, "run", exhausted)
    code = cli.main(["run", "community.households=40", "community.buildings=2", "sim.days=2", f"out={tmp_path}"])
    assert code == cli.EXIT_MEMORY
    err = capsys.readouterr().err
    assert "Traceback" not in err and "ran out of memory (it was estimated at" in err and "available now" in err


def peak_rss_bytes(households: int, days: int, cwd) -> tuple[float, int]:
    """Peak resident memory of a fresh process that builds, runs and saves one run; and its events."""
    # VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across exec, so a child forked from a
    # large pytest process would report the parent's peak; VmHWM belongs to the new address space
    code = ("import sys\n"
            "from twin import Twin, load_scenario\n"
            f"cfg = load_scenario('default', ['community.households={households}', 'sim.days={days}', "
            "'progress=false'])\n"
            "r = Twin(cfg).run()\n"
            "r.save('out', plotly='cdn')\n"
            "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))\n"
            "print(int(hwm.split()[1]) * 1024, len(r.event_log))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    peak, events = done.stdout.split()[-2:]
    return float(peak), int(events)


@pytest.mark.slow
def test_the_memory_estimate_follows_the_measured_peak(tmp_path):
    from twin import memory

    sizes = (10_000, 60_000)
    measured = [peak_rss_bytes(h, 5, tmp_path) for h in sizes]
    estimated = [memory.estimate_bytes(h, 5) for h in sizes]
    per_household = (measured[1][0] - measured[0][0]) / (sizes[1] - sizes[0])
    per_household_estimated = (estimated[1] - estimated[0]) / (sizes[1] - sizes[0])
    assert 0.5 < per_household / per_household_estimated < 2.0, (per_household, per_household_estimated)
    assert 0.5 < measured[1][0] / estimated[1] < 2.0, (measured[1][0], estimated[1])
    events_per_household = measured[1][1] / sizes[1]
    assert 0.5 < events_per_household / (memory.EVENTS_AT_START + 5 * memory.EVENTS_PER_DAY) < 2.0


# ------------------------------------------------------------------ help, scenarios, tables
def test_help_shows_the_banner_once_and_every_default(tmp_path):
    top = twin_cli("--help", cwd=tmp_path)
    assert top.returncode == 0
    assert "``" not in top.stdout and ":class:" not in top.stdout
    assert top.stdout.count("community-twin:") == 1
    for command in ("run", "compare", "sweep", "report", "scenarios", "warmup", "bench"):
        assert f"    {command}" in top.stdout
    for command, defaults in {"run": ("--scenario", "--plotly"), "compare": ("--scenario", "--replications", "--plotly"),
                              "sweep": ("--scenario", "--jobs", "--plotly"), "report": ("--plotly",)}.items():
        options = twin_cli(command, "--help", cwd=tmp_path).stdout.split("\noptions:\n")[1]
        blocks = re.split(r"\n  (?=-)", options)
        for option in defaults:
            block = next(b for b in blocks if option in b.splitlines()[0])
            assert "(default: " in " ".join(block.split()), (command, option, block)


def test_scenarios_come_with_one_line_descriptions(tmp_path):
    out = twin_cli("scenarios", cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert [x.split()[0] for x in lines] == ["chengdu_before", "default", "queue_check"]
    for line in lines:
        name, description = line.split(maxsplit=1)
        assert len(description) > 20 and description.endswith(".")


def test_run_prints_units_and_shares_as_percentages(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    table = Result.load(run_dir).table().splitlines()
    row = next(x for x in table if x.startswith("participation_rate"))
    assert row.split()[1:] == [f"{100 * summary['participation_rate']:.1f}", "%"]
    assert next(x for x in table if x.startswith("repair_wait_minutes_mean")).split()[-1] == "min"


def right_edges_align(table: str, header: str) -> None:
    """Every row has a right-aligned value ending where ``header`` ends in the header line."""
    lines = table.splitlines()
    edge = lines[0].index(header) + len(header)
    for line in lines[2:]:
        if line.strip() and not line.startswith("shares"):
            assert line[edge - 1] != " " and (len(line) == edge or line[edge] == " "), (line, edge)


def test_compare_prints_aligned_columns_and_redraws_its_folder(tmp_path):
    out = twin_cli("compare", "--baseline", " ".join(SMALL + ["residents.reward_effect=0"]), "--policy",
                   " ".join(SMALL), "-n", "2", "--out", str(tmp_path / "cmp"), "--plotly", "cdn", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    table = out.stdout.split("\n\n")[0]
    for column in ("baseline", "policy", "difference", "95% CI"):
        right_edges_align(table, column)
    row = next(x for x in table.splitlines() if x.startswith("participation_rate"))
    assert row.rstrip().endswith("%")
    folder = tmp_path / "cmp"
    (folder / "compare.html").unlink()
    redraw = twin_cli("report", str(folder), "--plotly", "cdn", cwd=tmp_path)
    assert redraw.returncode == 0, redraw.stderr
    page = (folder / "compare.html").read_text()
    assert "Differences (policy − baseline, 95% CI)" in page and 'id="differences"' in page and 'id="kpis"' in page
    assert len(page) < 300_000  # plotly.js linked, not embedded
    record = json.loads((folder / "compare.json").read_text())
    record["kpis"]["points_issued"]["diff"] = "big"
    (folder / "compare.json").write_text(json.dumps(record))
    damaged = twin_cli("report", str(folder), cwd=tmp_path)
    assert damaged.returncode == 3 and "compare.json" in one_line_error(damaged)


def test_sweep_prints_a_readable_table_and_redraws_its_folder(tmp_path):
    sweep = ["community.households=60", "community.buildings=2", "sim.days=5", "seed=1,2"]
    out = twin_cli("sweep", "-j", "1", "--out", str(tmp_path / "sw"), *sweep, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    table = out.stdout.split("\n\n")[0]
    header = table.splitlines()[0]
    assert header.split("  ")[0] == "seed" and "participation (%)" in header and "repair wait (min)" in header
    assert max(map(len, table.splitlines())) <= 120
    right_edges_align(table, "participation (%)")
    (tmp_path / "sw" / "sweep.html").unlink()
    redraw = twin_cli("report", str(tmp_path / "sw"), cwd=tmp_path)
    assert redraw.returncode == 0, redraw.stderr
    page = (tmp_path / "sw" / "sweep.html").read_text()
    assert 'id="sweep"' in page and "Headline KPIs by swept value" in page
    long = twin_cli("sweep", "-j", "1", "--long", "--kpis", "tickets_opened,turnout_mean", "--out",
                    str(tmp_path / "sw2"), *sweep, cwd=tmp_path)
    assert long.returncode == 0, long.stderr
    rows = long.stdout.split("\n\n")[0].splitlines()[2:]
    assert [r.split()[2] for r in rows] == ["tickets_opened", "turnout_mean"] * 2


def test_an_unknown_sweep_kpi_fails_before_running(tmp_path):
    out = twin_cli("sweep", "--kpis", "participation", "seed=1,2", "--out", str(tmp_path / "sw"), cwd=tmp_path)
    assert out.returncode == 2 and "participation_rate" in one_line_error(out)
    assert not (tmp_path / "sw").exists()


# ------------------------------------------------------------------ compiling
@pytest.mark.slow
def test_warmup_compiles_every_kernel_a_run_needs(tmp_path):
    """With a cold cache, `twin warmup` compiles (saying so once); a run after it compiles nothing."""
    import os

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "twin.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=1800, env=env)

    warm = cli("warmup")
    assert warm.returncode == 0, warm.stderr
    if str(tmp_path / "numba-cache") in warm.stdout:  # (a cache folder chosen by the package may be warm already)
        assert warm.stderr.count("compiling the simulation kernels") == 1
    assert "kernels ready in" in warm.stdout and "cached in" in warm.stdout
    run = cli("run", "community.households=100", "sim.days=20", "policies.voting_method=irv", "out=r")
    assert run.returncode == 0, run.stderr
    assert "compiling" not in run.stderr
