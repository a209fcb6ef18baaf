"""The twin on a chain: day roots anchored and verified; the time bank mirrored onto the contract."""
import json

import numpy as np
import pytest

import twin
from contracts.evidence import verify_run


def small(*overrides):
    return twin.load_scenario("default", ["community.households=120", "community.buildings=3", "progress=false",
                                          *overrides])


@pytest.fixture(scope="module")
def anchored(tmp_path_factory):
    r = twin.Twin(small("sim.days=10", "chain.mode=anchor")).run()
    d = r.save(tmp_path_factory.mktemp("anchored"))
    return r, d


def test_every_day_is_anchored_and_verified_in_process(anchored):
    r, d = anchored
    anchors = json.loads((d / "anchors.json").read_text())
    days = [rec["day"] for rec in anchors["records"] if rec["kind"] == "ledger_root"]
    assert days == list(range(10))
    assert anchors["verified_in_process"] is True


def test_verify_recomputes_roots_from_the_saved_log(anchored):
    _, d = anchored
    assert verify_run(d)["ok"]


def test_verify_catches_a_rewritten_event(anchored, tmp_path):
    _, d = anchored
    for name in ("anchors.json", "events.npy"):
        (tmp_path / name).write_bytes((d / name).read_bytes())
    events = np.load(tmp_path / "events.npy")
    i = int(np.flatnonzero(events["amount"] > 0)[0])
    events["amount"][i] += 1  # someone quietly changes one amount
    np.save(tmp_path / "events.npy", events)
    report = verify_run(tmp_path)
    assert not report["ok"] and report["mismatches"]


def test_mirror_gives_the_twins_balances():
    r = twin.Twin(small("sim.days=25", "chain.mode=mirror")).run()
    assert r.extras["mirror"]["balances_equal"] is True
    assert r.extras["mirror"]["minutes_exchanged"] > 0
