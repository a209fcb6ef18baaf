"""Sweeps: Hydra sweep syntax expands to the cartesian product, and each combination runs."""
from twin.sweep import expand, sweep


def test_expand_is_the_cartesian_product_of_sweep_overrides():
    keys, runs = expand(["sim.days=5", "policies.dispatch=fifo,skill", "seed=range(1,4)"])
    assert keys == ["policies.dispatch", "seed"]
    assert len(runs) == 6
    assert runs[0] == ["sim.days=5", "policies.dispatch=fifo", "seed=1"]
    assert {tuple(r[1:]) for r in runs} == {(f"policies.dispatch={d}", f"seed={s}")
                                            for d in ("fifo", "skill") for s in (1, 2, 3)}


def test_sweep_runs_each_combination_and_writes_a_table(tmp_path):
    table = sweep("default", ["community.households=60", "community.buildings=2", "sim.days=5", "seed=1,2"],
                  jobs=1, out=tmp_path)
    assert list(table["seed"]) == ["1", "2"]
    assert (tmp_path / "summary.csv").read_text().startswith("seed,participation_rate")
    assert table["points_issued"].iloc[0] != table["points_issued"].iloc[1] or \
        table["tickets_opened"].iloc[0] != table["tickets_opened"].iloc[1]
