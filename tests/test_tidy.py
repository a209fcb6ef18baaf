"""Tidy data: run, comparison and sweep folders hold Parquet tables that say what their CSVs say.

Each table is read back from Parquet and compared with its CSV (or the event log), and each
column's unit and meaning must be in the Parquet schema.
"""
import numpy as np
import pandas as pd
import pytest

import twin
from twin import compare, sweep
from twin.config import scenarios
from twin.results import (DAILY_COLUMNS, EVENT_COLUMNS, SUMMARY_COLUMNS, TIDY_DIR, Result, column_units,
                          events_frame, write_parquet)
from twin.services.events import EVENT_DTYPE, Channel, EventKind, make
from twin.services.reasons import Reason

SMALL = ["community.households=120", "community.buildings=3", "sim.days=20"]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    result = twin.Twin(twin.load_scenario("default", SMALL + ["progress=false"])).run()
    return result, result.save(tmp_path_factory.mktemp("run"), plotly="cdn")


def test_a_run_folder_holds_its_tables_as_parquet(run_folder):
    _, d = run_folder
    assert sorted(p.name for p in (d / TIDY_DIR).iterdir()) == ["events.parquet", "kpis.parquet", "summary.parquet"]


def test_daily_kpis_read_back_equal_to_the_csv(run_folder):
    _, d = run_folder
    csv = pd.read_csv(d / "kpis.csv")
    parquet = pd.read_parquet(d / TIDY_DIR / "kpis.parquet")
    pd.testing.assert_frame_equal(parquet, csv, check_dtype=False)
    assert len(parquet) == 20


def test_events_read_back_equal_to_the_log_and_its_csv(run_folder):
    result, d = run_folder
    events = pd.read_parquet(d / TIDY_DIR / "events.parquet")
    csv = pd.read_csv(d / "events.csv.gz")
    log = np.load(d / "events.npy")
    assert len(events) == len(csv) == len(log) > 0
    assert events["kind"].astype(str).tolist() == csv["kind"].tolist()
    assert [EventKind[k] for k in events["kind"]] == log["kind"].tolist()
    assert [Reason[r] for r in events["reason"]] == log["reason"].tolist()
    assert [Channel[c] for c in events["channel"]] == log["channel"].tolist()
    for column in ("t", "actor", "subject", "target", "amount", "code", "extra"):
        assert np.array_equal(events[column].to_numpy(), log[column]), column
        assert np.array_equal(csv[column].to_numpy(), log[column]), column


def test_summary_reads_back_as_one_row_per_kpi(run_folder):
    result, d = run_folder
    summary = pd.read_parquet(d / TIDY_DIR / "summary.parquet")
    assert summary["kpi"].tolist() == list(result.summary)
    values = dict(zip(summary["kpi"], summary["value"]))
    for k, v in result.summary.items():
        assert (np.isnan(v) and np.isnan(values[k])) or values[k] == pytest.approx(v), k
    units = dict(zip(summary["kpi"], summary["unit"]))
    assert units["participation_rate"] == "share" and units["repair_wait_minutes_mean"] == "min"
    assert units["tickets_opened"] == "count"


def test_every_column_carries_its_unit_and_meaning(run_folder):
    _, d = run_folder
    for name, documented in (("kpis", DAILY_COLUMNS), ("events", EVENT_COLUMNS), ("summary", SUMMARY_COLUMNS)):
        written = column_units(d / TIDY_DIR / f"{name}.parquet")
        assert written == documented, name
    assert column_units(d / TIDY_DIR / "kpis.parquet")["water_m3"] == ("m³", "water used by households")


def test_result_events_has_readable_categorical_columns(run_folder):
    result, _ = run_folder
    events = result.events
    for column, enum in (("kind", EventKind), ("reason", Reason), ("channel", Channel)):
        assert isinstance(events[column].dtype, pd.CategoricalDtype), column
        assert list(events[column].cat.categories) == [m.name for m in enum]
    assert "PointsEarned" in set(events["kind"])


def test_events_frame_names_each_code_and_leaves_an_unknown_one_missing():
    ev = np.concatenate([make(EventKind.TicketSubmitted, 1.0, channel=int(Channel.hotline)),
                         make(EventKind.PointsPenalised, 2.0, reason=int(Reason.InsufficientBalance)),
                         make(EventKind.TicketRated, 3.0, channel=99)])
    frame = events_frame(ev)
    assert frame["kind"].tolist() == ["TicketSubmitted", "PointsPenalised", "TicketRated"]
    assert frame["channel"].tolist()[:2] == ["hotline", "system"]
    assert pd.isna(frame["channel"].iloc[2])  # a code outside Channel is missing, never another name
    assert frame["reason"].tolist()[1] == "InsufficientBalance"
    assert events_frame(np.zeros(0, EVENT_DTYPE)).empty


def test_run_folder_still_loads_and_its_csv_keeps_codes(run_folder):
    result, d = run_folder
    again = Result.load(d)
    assert np.array_equal(again.event_log, result.event_log)
    csv = pd.read_csv(d / "events.csv.gz")
    assert csv["reason"].dtype.kind == "i" and csv["channel"].dtype.kind == "i"


def test_write_parquet_round_trips_and_leaves_undocumented_columns_bare(tmp_path):
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, np.nan]})
    path = write_parquet(frame, tmp_path / "x.parquet", {"a": ("m", "a length")})
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame)
    assert column_units(path) == {"a": ("m", "a length"), "b": ("", "")}


def test_a_comparison_folder_writes_parquet_beside_csv(tmp_path):
    d = tmp_path / "cmp"
    compare.compare("default", SMALL, SMALL + ["policies.dispatch=fifo"], replications=2, out=d, plotly="cdn")
    for name in ("baseline_kpis", "policy_kpis", "differences", "runs"):
        csv = pd.read_csv(d / f"{name}.csv")
        parquet = pd.read_parquet(d / f"{name}.parquet")
        pd.testing.assert_frame_equal(parquet, csv, check_dtype=False, check_exact=False, rtol=1e-12)
    runs = pd.read_parquet(d / "runs.parquet")
    assert set(runs["arm"]) == {"baseline", "policy"} and sorted(set(runs["seed"])) == [1, 2]
    differences = pd.read_parquet(d / "differences.parquet").set_index("kpi")
    assert column_units(d / "differences.parquet")["n"][0] == "seeds"
    # each difference is the mean over seeds of policy − baseline in the runs table
    per_seed = runs[runs["kpi"] == "tickets_opened"].pivot(index="seed", columns="arm", values="value")
    assert differences.loc["tickets_opened", "diff"] == pytest.approx((per_seed["policy"] - per_seed["baseline"]).mean())
    assert differences.loc["tickets_opened", "n"] == 2


def test_a_sweep_folder_writes_parquet_beside_csv(tmp_path):
    d = tmp_path / "sweep"
    sweep.sweep("default", SMALL + ["residents.reward_effect=0.0,0.9"], jobs=1, out=d, plotly="cdn")
    table, keys, _ = sweep.load(d)
    parquet = pd.read_parquet(d / "summary.parquet")
    pd.testing.assert_frame_equal(parquet, table, check_dtype=False)
    assert keys == ["residents.reward_effect"] and parquet[keys[0]].tolist() == ["0.0", "0.9"]
    units = column_units(d / "summary.parquet")
    assert units["participation_rate"][0] == "share" and units["repair_wait_minutes_mean"][0] == "min"


# ------------------------------------------------------------------ case studies
@pytest.fixture(scope="module")
def case_result():
    from twin import cases

    case = cases.load_case("hangzhou_garbage_points")  # a standalone model: seconds, no engine run
    return cases.run_case(case, 2, extra=["community.households=200", "community.buildings=4"])


def test_case_tables_say_what_twin_cases_prints(case_result, tmp_path):
    from twin.cases import verdict
    from twin.results import CASE_COLUMNS, CASE_RUN_COLUMNS, write_case_tables

    written = write_case_tables([case_result], tmp_path)
    assert sorted(p.name for p in written) == ["case_runs.csv", "case_runs.parquet", "cases.csv", "cases.parquet"]
    table = pd.read_parquet(tmp_path / "cases.parquet")
    pd.testing.assert_frame_equal(table, pd.read_csv(tmp_path / "cases.csv", keep_default_na=False,
                                                     na_values=[""]).astype(table.dtypes), check_dtype=False)
    assert table[["case", "arm"]].values.tolist() == [["hangzhou_garbage_points", "before"],
                                                      ["hangzhou_garbage_points", "after"]]
    for _, row in table.iterrows():
        ci = case_result.interval(row["arm"])
        assert (row["mean"], row["low"], row["high"]) == pytest.approx((ci["mean"], ci["low"], ci["high"]))
        assert row["reported"] == case_result.case.reported[row["arm"]]
        assert row["verdict"] == verdict(case_result, row["arm"])
    assert column_units(tmp_path / "cases.parquet") == CASE_COLUMNS
    assert column_units(tmp_path / "case_runs.parquet") == CASE_RUN_COLUMNS


def test_case_runs_hold_every_replications_kpis(case_result, tmp_path):
    from twin.results import write_case_tables

    write_case_tables([case_result], tmp_path)
    runs = pd.read_parquet(tmp_path / "case_runs.parquet")
    pd.testing.assert_frame_equal(runs, pd.read_csv(tmp_path / "case_runs.csv"), check_dtype=False)
    for arm, replications in case_result.arms.items():
        for seed, kpis in zip(case_result.seeds, replications):
            got = runs[(runs["arm"] == arm) & (runs["seed"] == seed)]
            assert dict(zip(got["kpi"], got["value"])) == pytest.approx(kpis, nan_ok=True), (arm, seed)
    assert len(runs) == sum(len(k) for rs in case_result.arms.values() for k in rs)


def test_twin_cases_out_writes_the_tables_beside_its_page(tmp_path, capsys):
    from twin.cli import main

    assert main(["cases", "hangzhou_garbage_points", "-n", "2", "--out", str(tmp_path), "--plotly", "cdn"]) == 0
    assert "tidy tables: cases.csv, cases.parquet, case_runs.csv, case_runs.parquet" in capsys.readouterr().out
    table = pd.read_parquet(tmp_path / "cases.parquet")
    assert table["arm"].tolist() == ["before", "after"] and (table["replications"] == 2).all()


@pytest.mark.parametrize("name", scenarios())
def test_a_runs_config_is_what_omegaconf_makes_of_the_scenario(name):
    """The run folder's config.yaml comes from the scenario's dataclasses directly; it must be exactly the
    plain data OmegaConf makes of them (lists, not tuples; no enums) for every shipped scenario."""
    from omegaconf import OmegaConf

    from twin.results import config_dict

    cfg = twin.load_scenario(name, [])
    direct, through = config_dict(cfg), OmegaConf.to_container(OmegaConf.structured(cfg))
    assert direct == through
    assert repr(direct) == repr(through)  # the same types too: 1 == 1.0, but their reprs differ
    mutated = config_dict(cfg)
    mutated["sim"]["days"] += 1  # a copy: the check can tell configs apart, and the run's config is left alone
    assert mutated != through and cfg.sim.days == through["sim"]["days"]
