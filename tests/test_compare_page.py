"""The comparison's side-by-side page: both arms' daily series with bands, differences with intervals, and
significance after Holm's correction — which must vanish when the arms are the same."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from twin.compare import ALPHA, compare, holm, paired_p, read_daily_runs, redraw
from twin.results import DamagedRunFolder, label_of

TINY = ["community.households=120", "community.buildings=3", "sim.days=15"]
NO_REWARD = TINY + ["residents.reward_effect=0"]


@pytest.fixture(scope="module")
def rewarded(tmp_path_factory):
    """Rewards against none: participation surely rises (the paired differences all point one way)."""
    out = tmp_path_factory.mktemp("rewarded")
    compare("default", NO_REWARD, TINY, replications=4, out=out, plotly="cdn")
    return out


@pytest.fixture(scope="module")
def identical(tmp_path_factory):
    """Mutation: the policy arm is the baseline, so nothing may come out significant."""
    out = tmp_path_factory.mktemp("identical")
    compare("default", NO_REWARD, NO_REWARD, replications=4, out=out, plotly="cdn")
    return out


def differences(folder) -> pd.DataFrame:
    return pd.read_csv(folder / "differences.csv").set_index("kpi")


def test_the_page_shows_each_kpi_the_correction_and_both_arms_banded(rewarded):
    page = (rewarded / "compare.html").read_text()
    for kpi in differences(rewarded).index:
        assert f"title='{kpi}'>{label_of(kpi)}</td>" in page, kpi
    assert "Holm's step-down correction" in page and "<th>p (Holm)</th><th>significant</th>" in page
    assert "band: 10–90% of replications" in page and 'id="kpis"' in page and 'id="differences"' in page
    assert '"baseline: participants 10\\u201390%"' in page and '"policy: participants 10\\u201390%"' in page  # JSON-escaped
    assert page.count('"fill":"tonexty"') >= 2


def test_a_real_effect_is_significant_and_identical_arms_are_not(rewarded, identical):
    real, same = differences(rewarded), differences(identical)
    assert bool(real.loc["participation_rate", "significant"]) and real.loc["participation_rate", "p_holm"] < ALPHA
    assert not same["significant"].any()  # the flag flips when the arms are the same
    tested = same["p_holm"].dropna()
    assert len(tested) > 0 and (tested == 1.0).all()
    page = (identical / "compare.html").read_text()
    assert "<td class='significant'>yes</td>" not in page and "<td class='significant'>no</td>" in page


def test_the_bands_span_the_replications(rewarded):
    runs = read_daily_runs(rewarded / "daily_runs.csv")
    assert set(runs) == {"baseline", "policy"} and len(runs["policy"]) == 4
    participants = np.vstack([r["participants"].to_numpy() for r in runs["policy"]])
    mean = pd.read_csv(rewarded / "policy_kpis.csv")["participants"].to_numpy()
    assert np.allclose(participants.mean(axis=0), mean)  # the line is the averaged table's
    assert (np.percentile(participants, 90, axis=0) > np.percentile(participants, 10, axis=0)).any()
    pd.testing.assert_frame_equal(pd.read_parquet(rewarded / "daily_runs.parquet"),
                                  pd.read_csv(rewarded / "daily_runs.csv"), check_dtype=False)


def test_a_folder_without_replications_redraws_with_plain_lines(rewarded, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(rewarded, old)
    (old / "daily_runs.csv").unlink()
    page = redraw(old, plotly="cdn").read_text()
    assert "10–90%" not in page and 'id="kpis"' in page
    (old / "daily_runs.csv").write_text("arm,day\nbaseline,0\n")
    with pytest.raises(DamagedRunFolder, match="'seed'"):
        redraw(old, plotly="cdn")


def test_holm_multiplies_the_kth_smallest_by_m_minus_k_plus_one_and_keeps_order():
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.2, "e": math.nan})
    assert adjusted["a"] == pytest.approx(0.04) and adjusted["c"] == pytest.approx(0.09)
    assert adjusted["b"] == pytest.approx(0.09)  # 2 × 0.04 = 0.08, raised to keep the step-down order
    assert adjusted["d"] == pytest.approx(0.2) and math.isnan(adjusted["e"])
    assert holm({"x": 0.6, "y": 0.7}) == {"x": 1.0, "y": 1.0}


def test_the_paired_p_is_the_paired_t_tests():
    rng = np.random.default_rng(4)
    a = rng.normal(size=8)
    b = a + rng.normal(0.5, 1.0, size=8)
    assert paired_p(a, b) == pytest.approx(stats.ttest_rel(b, a).pvalue)
    assert paired_p(a, a) == 1.0 and paired_p(a, a + 1.0) == 0.0 and math.isnan(paired_p([1.0], [2.0]))
