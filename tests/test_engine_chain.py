"""The twin on a chain: day roots anchored and verified; the time bank mirrored onto the contract.

Verification against a node given by URL (the operator naming registry, chain and account) is in
``test_verify.py``.
"""
import json

import numpy as np
import pytest

import twin
from contracts.evidence import verify_run
from twin.config import ConfigError


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


def test_a_run_on_the_in_process_evm_verifies_its_log_but_not_the_chain(anchored):
    _, d = anchored
    report = verify_run(d)
    assert report["status"] == "unchecked" and not report["ok"] and not report["chain_checked"]
    assert report["mismatches"] == [] and report["days_anchored"] == 10
    assert report["log_copies_checked"] == ["events.csv.gz"]


def test_verify_catches_a_rewritten_event(anchored, tmp_path):
    _, d = anchored
    for name in ("anchors.json", "events.npy"):
        (tmp_path / name).write_bytes((d / name).read_bytes())
    events = np.load(tmp_path / "events.npy")
    i = int(np.flatnonzero(events["amount"] > 0)[0])
    events["amount"][i] += 1  # someone quietly changes one amount
    np.save(tmp_path / "events.npy", events)
    report = verify_run(tmp_path)
    assert report["status"] == "mismatch" and report["mismatches"]


def test_mirror_gives_the_twins_balances_and_says_where_it_ran():
    r = twin.Twin(small("sim.days=25", "chain.mode=mirror")).run()
    mirror = r.extras["mirror"]
    assert mirror["balances_equal"] is True and mirror["minutes_exchanged"] > 0
    assert mirror["evm"] == "in-process py-evm" and mirror["url"] is None and mirror["transactions"] > 0


def test_mirror_refuses_a_url():
    """Its simulated members sign with derived keys, which a chain given by URL refuses."""
    with pytest.raises(ConfigError, match="chain.url"):
        small("chain.mode=mirror", "chain.url=http://127.0.0.1:8545")


def test_the_endowment_budget_is_a_config_key_the_twin_honours():
    cfg = small("sim.days=35", "policies.timebank_endowment_budget_minutes=1000")
    tw = twin.Twin(cfg)
    tw.run()
    tb = tw.services.timebank
    assert tb.policy.endowment_budget == 1000
    assert tb.balance(tb.endowment) >= -1000 and tb.endowment_left() < 240   # spent: a month's endowment is refused
    with pytest.raises(ConfigError, match="timebank_endowment_budget_minutes"):
        small("policies.timebank_endowment_budget_minutes=-5")
