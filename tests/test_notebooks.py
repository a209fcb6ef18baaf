"""Researcher notebooks are executed for real, top to bottom, on a Jupyter kernel.

They are committed without outputs (what a run shows belongs to the run, not to git), and the
docs' notebook page lists every one of them.
"""
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


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
