"""Researcher notebooks are executed for real, top to bottom, on a Jupyter kernel.

They are committed without outputs (what a run shows belongs to the run, not to git), and the
docs' notebook page lists every one of them. The shadow notebook's findings are checked to fail
when there is nothing to find, and the calibration notebook's regression check to fail when it
is fitted to a figure the shipped value does not give.
"""
import importlib.util
import json
import re
import shutil
import sqlite3
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SHADOW_NOTEBOOK = ROOT / "notebooks" / "shadow_recording.ipynb"
SHADOW_DATA = ROOT / "notebooks" / "data"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


def stored_outputs(nb) -> list[str]:
    """What a notebook file keeps of a run: outputs, execution counts, widget state (empty when stripped)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {i}: outputs")
        if cell.get("execution_count") is not None:
            found.append(f"cell {i}: execution count")
    if "widgets" in nb.metadata:
        found.append("widget state in the metadata")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    assert stored_outputs(nbformat.read(path, as_version=4)) == [], \
        f"{path.name} holds outputs: clear them (Jupyter: Edit → Clear All Outputs) before committing"


def test_an_executed_notebook_counts_as_holding_outputs(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    assert stored_outputs(nb) == []
    NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert stored_outputs(nb) == ["cell 0: outputs", "cell 0: execution count"]


def test_the_docs_list_every_notebook():
    listed = set(re.findall(r"`(\w+\.ipynb)`", (ROOT / "docs" / "notebooks.md").read_text(encoding="utf-8")))
    assert listed == {p.name for p in NOTEBOOKS}


def test_there_are_notebooks():
    assert NOTEBOOKS


# ------------------------------------------------------------------ the shadow recording's notebook
def with_parameters(nb, source: str):
    """``nb`` with its ``parameters`` cell (papermill's convention) replaced by ``source``."""
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "the notebook needs one cell tagged 'parameters'"
    cells[0].source = source
    return nb


def make_recording_module():
    spec = importlib.util.spec_from_file_location("make_recording", SHADOW_DATA / "make_recording.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def errors_with(path, parameters: str, tmp_path, cut: str = ":") -> list[tuple[str, str]]:
    """Run the notebook at ``path`` with its parameters cell replaced by ``parameters``, going on past
    errors; each error's name and its message up to ``cut``, in cell order."""
    nb = with_parameters(nbformat.read(path, as_version=4), parameters)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return [(o.ename, o.evalue.split(cut)[0]) for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.output_type == "error"]


def test_the_shipped_recording_is_the_session_its_script_makes():
    from live_bridge.recorder import open_recording

    script = make_recording_module()
    settings, db = open_recording(script.RECORDING)
    refused = dict(db.execute("SELECT topic, count(*) FROM messages WHERE topic IN (%s) GROUP BY topic"
                              % ",".join("?" * len(script.BAD_MESSAGES)),
                              [t for t, _, _ in script.BAD_MESSAGES]).fetchall())
    db.close()
    assert (settings["scenario"], settings["overrides"]) == (script.SCENARIO, script.COMMUNITY)
    assert settings["production"] == {"slower_technicians": script.SLOWER_TECHNICIANS,
                                      "overrides": script.PRODUCTION_ONLY}
    assert sum(refused.values()) >= len(script.BAD_MESSAGES)  # the misbehaving client's messages are in it


def test_the_shadow_notebook_finds_nothing_when_the_twin_assumes_what_production_does(tmp_path):
    """The mutation check of the notebook's findings: the same recording, replayed by a twin that
    assumes production's slower technicians and its water use, must show neither a repair-time
    difference nor water drift, so both of the notebook's assertions fail (and nothing else does)."""
    from live_bridge.emulate import production_config
    from live_bridge.recorder import read_meta

    recording = shutil.copy(make_recording_module().RECORDING, tmp_path / "twin_as_production.sqlite")
    db = sqlite3.connect(recording)
    settings = read_meta(db)
    production = settings["production"]
    cfg = production_config(settings["scenario"], settings["overrides"], production["slower_technicians"],
                            production["overrides"])
    overrides = [*settings["overrides"], *production["overrides"],
                 *(f"staff.service_minutes.{k}={v!r}" for k, v in cfg.staff.service_minutes.items())]
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'overrides'", (json.dumps(overrides),))
    db.close()
    errors = sorted(errors_with(SHADOW_NOTEBOOK, f"from pathlib import Path\nRECORDING = Path({str(recording)!r})",
                                tmp_path))
    assert errors == [("AssertionError", "production uses more water than the twin assumes"),
                      ("AssertionError", "repair time should be flagged, longer in production")], errors


# ------------------------------------------------------------------ the calibration notebook
CALIBRATION_NOTEBOOK = ROOT / "notebooks" / "calibration.ipynb"


def test_the_calibration_notebook_refuses_the_shipped_value_for_a_figure_it_does_not_fit(tmp_path):
    """The mutation check of the calibration: fitted to a wrong figure (25% instead of the reported
    42%), the grid must move the fit away from the shipped ``reward_effect``, so the notebook's
    regression check fails (and its checks the fit was not tuned to still pass)."""
    errors = errors_with(CALIBRATION_NOTEBOOK, "TARGET = 0.25", tmp_path, cut=" (")
    assert errors == [("AssertionError", "the shipped reward_effect 0.9 no longer fits 25%")], errors


# ------------------------------------------------------------------ the network notebook
NETWORK_NOTEBOOK = ROOT / "notebooks" / "network_effects.ipynb"


def test_the_network_notebook_finds_no_structure_effect_when_nobody_spreads_the_news(tmp_path):
    """The mutation check of the awareness section: with no tie telling another
    (``AWARENESS_SPREAD = 0``) the number of friends cannot speed the rise, so the notebook's
    check that more ties spread the news faster must fail (and nothing else does)."""
    errors = errors_with(NETWORK_NOTEBOOK, "AWARENESS_SPREAD = 0.0", tmp_path)
    assert errors == [("AssertionError", "the news should spread faster with more ties")], errors


# ------------------------------------------------------------------ the policy experiment
POLICY_NOTEBOOK = ROOT / "notebooks" / "policy_experiment.ipynb"


def test_the_policy_experiments_checks_fail_without_common_random_numbers(tmp_path):
    """The mutation check of the experiment: with the policy arm on other seeds than the
    baseline's, participation's paired difference is no longer zero and the paired interval no
    longer narrower than Welch's, so both of the notebook's checks must fail."""
    errors = errors_with(POLICY_NOTEBOOK, "COMMON_RANDOM_NUMBERS = False", tmp_path)
    assert errors == [("AssertionError", "participation must not move under common random numbers"),
                      ("AssertionError", "pairing should narrow the interval")], errors


# ------------------------------------------------------------------ the sensitivity analysis
SENSITIVITY_NOTEBOOK = ROOT / "notebooks" / "sensitivity.ipynb"


def test_the_sensitivity_check_fails_for_a_parameter_that_moves_participation(tmp_path):
    """The mutation check of the screening: the notebook checks that a voting-only parameter has no
    effect on participation (mu* exactly 0). Put a parameter that does act on it in that place
    (``fatigue_gain``) and the check must fail; were the overrides never applied, or the KPI
    read wrongly, every mu* would be 0 and this test would catch it."""
    errors = errors_with(SENSITIVITY_NOTEBOOK, "NULL_PARAMETER = 'fatigue_gain'", tmp_path)
    assert errors == [("AssertionError", "the null parameter cannot move participation")], errors
