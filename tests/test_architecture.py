"""The arrows of DESIGN.md point one way: cli → engine → agents, policies → services.

Services import nothing of the engine, the agents or the policies; agents and
policies never import the engine.  Checked on the source, so a stray import
fails here before it tangles the layers.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "twin/services": ("twin.engine", "twin.cli", "twin.results", "twin.report", "agents", "policies",
                      "live_bridge", "contracts"),
    "agents": ("twin.engine", "twin.cli", "twin.results"),
    "policies": ("twin.engine", "twin.cli", "twin.results", "agents"),
}


def imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer):
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files
    bad = [f"{f.relative_to(ROOT)} imports {m}" for f in files for m in imports(f)
           if any(m == p or m.startswith(p + ".") for p in FORBIDDEN[layer])]
    assert not bad, bad


def test_rng_is_a_leaf():
    assert not [m for m in imports(ROOT / "twin/rng.py") if m.startswith(("twin", "agents", "policies"))]
