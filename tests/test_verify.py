"""``twin verify``: a run folder checked against the chain the operator names, never its own say-so.

A ganache node (``contracts/devnode.py``) holds the operator's account and an attacker's.  Each
test builds a run folder (``events.npy``, ``events.csv.gz``, ``anchors.json``) anchored there,
tampers with it the way the issue describes, and runs the command line in process.  Exit codes:
0 verified, 1 mismatch, 6 chain not checked, 5 chain not reachable or not what was named, 2 usage.
"""
import json

import numpy as np
import pytest
from eth_utils import keccak

import twin
from contracts.chain import Chain
from contracts.devnode import GanacheMissing, free_port, ganache_node
from contracts.evidence import Anchorer, events_by_day, merkle_root
from twin.cli import main
from twin.services import events as ev
from twin.services.events import EventKind

OPERATOR_KEY = "0x" + keccak(b"community-twin verify test: operator").hex()
ATTACKER_KEY = "0x" + keccak(b"community-twin verify test: attacker").hex()
DAYS = 4


@pytest.fixture(scope="module")
def node():
    try:
        with ganache_node([(OPERATOR_KEY, 10**24), (ATTACKER_KEY, 10**24)]) as url:
            yield url
    except GanacheMissing as exc:
        pytest.skip(str(exc))


def synthetic_log(days=DAYS, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for day in range(days):
        t = np.sort(rng.uniform(day * 1440, (day + 1) * 1440, 5))
        parts.append(ev.make(EventKind.ServiceRecorded, t, actor=rng.integers(0, 99, 5),
                             amount=rng.integers(1, 60, 5)))
    return np.concatenate(parts)


def write_run(folder, log, anchorer):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "events.npy", log)
    ev.to_frame(log).to_csv(folder / "events.csv.gz", index=False)
    anchorer.save(folder)
    return folder


def anchor_all(anchorer, log, skip=()):
    for day, rows in sorted(events_by_day(log).items()):
        if day not in skip:
            anchorer.anchor_day(day, rows)
    anchorer.anchor_tally(7, b"\x01\x02\x03")


@pytest.fixture(scope="module")
def genuine(node, tmp_path_factory):
    """A run anchored by the operator, and what the operator wrote down at run time."""
    log = synthetic_log()
    anchorer = Anchorer(node, private_key=OPERATOR_KEY)
    anchor_all(anchorer, log)
    folder = write_run(tmp_path_factory.mktemp("genuine") / "run", log, anchorer)
    expect = {"url": node, "chain_id": 1337, "registry": anchorer.address, "account": anchorer.chain.account.address}
    return folder, expect, log


def copy_run(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def verify(capsys, folder, expect=None, *extra):
    flags = []
    for key, flag in (("url", "--url"), ("chain_id", "--chain-id"), ("registry", "--registry"),
                      ("account", "--account")):
        if expect and key in expect:
            flags += [flag, str(expect[key])]
    code = main(["verify", str(folder), *flags, *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def test_a_genuine_run_verifies_on_chain(capsys, genuine):
    folder, expect, _ = genuine
    code, report, err = verify(capsys, folder, expect)
    assert code == 0 and report["status"] == "verified" and report["ok"] and report["chain_checked"]
    assert report["days_anchored"] == DAYS and report["anchors_on_chain"] == DAYS + 1
    assert report["log_copies_checked"] == ["events.csv.gz"] and report["log"] == "events.npy"


def test_the_expectations_may_come_from_a_file(capsys, genuine, tmp_path):
    folder, expect, _ = genuine
    path = tmp_path / "expect.json"
    path.write_text(json.dumps(expect))
    code, report, _ = verify(capsys, folder, None, "--expect", str(path))
    assert code == 0 and report["registry"] == expect["registry"]


def test_a_forged_registry_with_re_anchored_roots_fails(capsys, genuine, node, tmp_path):
    """The issue's attack: edit the log, anchor its roots in a registry of one's own, point anchors.json at it."""
    folder, expect, log = genuine
    forged_log = log.copy()
    forged_log["amount"][3] += 100
    attacker = Anchorer(node, private_key=ATTACKER_KEY)
    anchor_all(attacker, forged_log)
    forged = write_run(tmp_path / "forged", forged_log, attacker)   # a self-consistent folder
    code, report, _ = verify(capsys, forged, expect)
    assert code == 1 and report["status"] == "mismatch"
    problems = [p["problem"] for p in report["mismatches"]]
    assert any("do not hash" in p for p in problems) and any("names address" in p for p in problems)
    # even if the operator is talked into the forged registry, the operator's account anchored nothing there
    code, report, _ = verify(capsys, forged, {**expect, "registry": attacker.address})
    assert code == 1 and any("anchored nothing" in p["problem"] for p in report["mismatches"])


def test_a_deleted_day_fails(capsys, genuine, tmp_path):
    folder, expect, log = genuine
    cut = copy_run(folder, tmp_path / "cut")
    days = np.floor(log["t"] / 1440)
    for drop in (1, DAYS - 1):   # a day inside, and the last day
        kept = log[days != drop]
        np.save(cut / "events.npy", kept)
        ev.to_frame(kept).to_csv(cut / "events.csv.gz", index=False)
        manifest = json.loads((folder / "anchors.json").read_text())
        manifest["records"] = [r for r in manifest["records"] if r.get("day") != drop]
        (cut / "anchors.json").write_text(json.dumps(manifest))
        code, report, _ = verify(capsys, cut, expect)
        assert code == 1
        assert {p.get("day") for p in report["mismatches"]} == {drop}


def test_days_on_chain_must_be_consecutive(capsys, node, tmp_path):
    log = synthetic_log()
    anchorer = Anchorer(node, private_key=OPERATOR_KEY)
    anchor_all(anchorer, log, skip={2})
    folder = write_run(tmp_path / "gap", log, anchorer)
    expect = {"url": node, "chain_id": 1337, "registry": anchorer.address, "account": anchorer.chain.account.address}
    code, report, _ = verify(capsys, folder, expect)
    assert code == 1
    assert {"days": [2], "problem": report["mismatches"][0]["problem"]} == report["mismatches"][0]
    assert any(p.get("day") == 2 and "no day root" in p["problem"] for p in report["mismatches"])


def test_every_copy_of_the_log_is_covered(capsys, genuine, tmp_path):
    folder, expect, log = genuine
    edited = copy_run(folder, tmp_path / "csv")
    frame = ev.to_frame(log)
    frame.loc[2, "amount"] += 1   # events.npy untouched: only the copy other tools read is edited
    frame.to_csv(edited / "events.csv.gz", index=False)
    code, report, _ = verify(capsys, edited, expect)
    assert code == 1
    (problem,) = report["mismatches"]
    assert problem["file"] == "events.csv.gz" and problem["first_row"] == 2
    ev.to_frame(log).to_csv(edited / "events.csv.gz", index=False)
    (edited / "events.parquet").write_bytes(b"another copy")
    code, report, _ = verify(capsys, edited, expect)
    assert code == 1 and report["mismatches"][0]["file"] == "events.parquet"


def test_a_run_on_the_in_process_evm_is_not_a_chain_check(capsys, tmp_path):
    log = synthetic_log()
    anchorer = Anchorer()
    anchor_all(anchorer, log)
    folder = write_run(tmp_path / "embedded", log, anchorer)
    code, report, err = verify(capsys, folder)
    assert code == 6 and report["status"] == "unchecked" and not report["ok"] and not report["chain_checked"]
    assert report["mismatches"] == [] and "not checked" in err
    bad = log.copy()
    bad["amount"][0] += 1
    np.save(folder / "events.npy", bad)
    ev.to_frame(bad).to_csv(folder / "events.csv.gz", index=False)
    code, report, _ = verify(capsys, folder)
    assert code == 1 and report["mismatches"][0]["day"] == 0


def one_line_and_json(code, report, err):
    assert code == 5 and report["status"] == "chain_error" and not report["ok"]
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return report["error"]


def test_no_node_is_one_line_and_a_json_object(capsys, genuine):
    folder, expect, _ = genuine
    error = one_line_and_json(*verify(capsys, folder, {**expect, "url": f"http://127.0.0.1:{free_port()}"}))
    assert "no node" in error


def test_the_wrong_chain_is_one_line_and_a_json_object(capsys, genuine):
    folder, expect, _ = genuine
    error = one_line_and_json(*verify(capsys, folder, {**expect, "chain_id": 1}))
    assert "serves chain 1337" in error


def test_no_registry_at_the_address_is_one_line_and_a_json_object(capsys, genuine, node):
    folder, expect, _ = genuine
    error = one_line_and_json(*verify(capsys, folder, {**expect, "registry": "0x" + "11" * 20}))
    assert "no contract" in error
    chain = Chain(node, private_key=ATTACKER_KEY)   # a contract, but not the registry
    other = chain.deploy("TimeBank", "0x" + "22" * 20, 0, False, 100, False)
    error = one_line_and_json(*verify(capsys, folder, {**expect, "registry": other.address}))
    assert "not the EvidenceRegistry" in error


def test_some_expectations_without_the_others_is_a_usage_error(capsys, genuine):
    folder, expect, _ = genuine
    code, report, err = verify(capsys, folder, {"url": expect["url"]})
    assert code == 2 and report is None and "missing: chain_id, registry, account" in err


def test_the_twin_anchors_on_a_node_and_verifies(capsys, node, tmp_path, monkeypatch):
    """End to end: `twin run` with chain.url anchors every day; `twin verify` with the operator's notes passes."""
    monkeypatch.setenv("TWIN_CHAIN_KEY", OPERATOR_KEY)
    cfg = twin.load_scenario("default", ["community.households=60", "community.buildings=2", "progress=false",
                                         "sim.days=3", "chain.mode=anchor", f"chain.url={node}"])
    result = twin.Twin(cfg).run()
    anchors = result.extras["anchors"]
    # what the operator writes down at run time, from its own run
    expect = {"url": node, "chain_id": anchors["chain_id"], "registry": anchors["address"],
              "account": anchors["account"]}
    folder = result.save(tmp_path / "run")
    code, report, _ = verify(capsys, folder, expect)
    assert code == 0 and report["days_anchored"] == 3
    events = np.load(folder / "events.npy")
    assert merkle_root(events_by_day(events)[0]) != merkle_root(events[:0])
