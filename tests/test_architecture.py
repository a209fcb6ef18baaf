"""The arrows of DESIGN.md point one way: cli → engine → agents, policies → services; the
server and the bridge never import each other.

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
    # the server and the bridge talk over HTTP and MQTT only, as they would in production
    "twin/live": ("live_bridge",),
    "live_bridge": ("twin.live",),
}
# production's stand-in plays the server (twin emulate); it is not the bridge
EXEMPT = {"live_bridge/emulate.py"}


def imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downwards(layer):
    files = sorted(f for f in (ROOT / layer).rglob("*.py") if f.relative_to(ROOT).as_posix() not in EXEMPT)
    assert files
    bad = [f"{f.relative_to(ROOT)} imports {m}" for f in files for m in imports(f)
           if any(m == p or m.startswith(p + ".") for p in FORBIDDEN[layer])]
    assert not bad, bad


def test_rng_is_a_leaf():
    assert not [m for m in imports(ROOT / "twin/rng.py") if m.startswith(("twin", "agents", "policies"))]
