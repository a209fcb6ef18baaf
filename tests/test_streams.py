"""Every named draw stream is distinct: two decisions sharing a stream would see the same numbers."""
import importlib

import pytest

MODULES = ["agents.community", "agents.residents", "agents.sensors", "agents.facilities", "twin.engine.twin",
           "twin.engine.topics"]


def streams():
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if attr.startswith("S_") and isinstance(value, int):
                yield f"{name}.{attr}", value


def test_stream_constants_are_unique():
    seen = {}
    for where, value in streams():
        assert value not in seen, f"{where} reuses stream {value} of {seen[value]}"
        seen[value] = where


@pytest.mark.parametrize("module,base,step,count", [
    ("agents.residents", "S_ACT", 1000, 8), ("agents.residents", "S_VOTE", 1000, 8),
    ("agents.residents", "S_VOTE_T", 1000, 8), ("twin.engine.topics", "S_TASTE", 1, 31)])
def test_stream_families_do_not_reach_other_streams(module, base, step, count):
    start = getattr(importlib.import_module(module), base)
    family = {start + step * k for k in range(1, count)}
    others = {v for where, v in streams() if not where.endswith("." + base)}
    assert not family & others
