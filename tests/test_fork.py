"""``twin fork``: a what-if started from production's state.

The production store is made the way production makes it: a roster CSV loaded by
``twin serve``'s loader and commands through the real services on a real SQLite
store, with a backlog of open tickets (some held, some under way) and a pipe
burst's ticket raised by a sensor just now.
"""
import numpy as np
import pytest

from live_bridge.fork import EngineIds, check_overrides, fork, fork_twin, production_state
from twin.cli import EXIT_INPUT, EXIT_USAGE, main
from twin.config import ConfigError, load_scenario
from twin.services.community import open_services
from twin.services.repair import Status
from twin.services.store import StoreError
from twin.services.timebank import MINUTES, PROVIDER, RECEIVER, STATUS

NOW = 3 * 1440 + 8 * 60.0  # day 3, 08:00: the shift starts with production's backlog
BURST_BUILDING = 11
TECHNICIANS = (4, 5)  # production's technicians' ids


def _make_store(path, roster):
    from twin.live.serve import load_roster

    lines = ["id,household,building,unit,adult"]
    for h in range(40):
        for k in range(2 + h % 2):
            lines.append(f"{1000 + 3 * h + k},{500 + h},{10 + h % 4},{101 + h},{int(k < 2)}")
    roster.write_text("\n".join(lines) + "\n")
    with open_services(path) as s:
        load_roster(s, roster)
        s.points.earn(1000, 0, occurrence=1, t=100.0)
        s.points.earn(1003, 0, occurrence=1, t=110.0)
        s.timebank.endow(1004, 120, t=200.0)
        record = s.timebank.record(1003, 1004, 60, t=210.0)
        s.timebank.confirm(record, 1004, t=300.0)
        s.timebank.record(1006, 1007, 30, t=320.0)  # pending
        topic = s.voting.propose(1000, "plurality", 3, t=400.0)
        s.voting.screen(topic, t=410.0)
        tickets = [s.repair.submit("electrical" if i % 2 else "plumbing", "fault", building=10 + i % 4,
                                   unit=101 + i, reporter=1000 + 3 * (i % 40), t=NOW - 900 + 10 * i)
                   for i in range(60)]
        for i in range(8):
            s.repair.dispatch(tickets[i], TECHNICIANS[i % 2], t=NOW - 400)
        for i in range(4):
            s.repair.start(tickets[i], t=NOW - 300)
        s.repair.complete(tickets[0], t=NOW - 100)  # one done: history the fork replays
        s.repair.submit("plumbing", "water main burst", building=BURST_BUILDING, unit=0, channel="sensor",
                        priority=2, reporter=0, t=NOW - 5)  # a sensor raised it: no resident reported it


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    d = tmp_path_factory.mktemp("production")
    _make_store(d / "prod.db", d / "roster.csv")
    return d / "prod.db"


@pytest.fixture(scope="module")
def cfg():
    return load_scenario("default", ["progress=false", "staff.technicians=4"])


def test_the_forked_services_hold_productions_state(store, cfg):
    state = production_state(store)
    assert state.minutes == NOW - 5 and state.day == 3  # the store's clock is behind its last event: that
    assert len(state.residents) == 100 and len(state.open_tickets) == 60  # 59 of the backlog and the burst
    assert [p["status"] for p in state.pending] == ["pending"]
    assert [t["state"] for t in state.open_topics] == ["screened"]
    ids = EngineIds(state)
    twin = fork_twin(state, cfg, seed=3)
    s = twin.services
    assert twin.day == state.day and twin.community.n_residents == 100 and twin.community.n_buildings == 4
    for person, balance in state.points.items():
        assert s.points.balance(int(ids.persons([person])[0])) == balance
    for member, balance in state.timebank.items():
        assert s.timebank.balance(int(ids.members([member])[0])) == balance
    for p in state.pending:
        row = s.timebank.records[p["record"]]
        assert (row[PROVIDER], row[RECEIVER], row[MINUTES], row[STATUS]) == (
            ids.members([p["provider"]])[0], ids.members([p["receiver"]])[0], p["minutes"], 0)
    for t in state.open_tickets:
        got = s.repair.get(t["id"])
        assert (got["status"], got["category"], got["building"], got["unit"]) == (
            t["status"], t["category"], ids.buildings([t["building"]])[0], t["unit"])
        assert got["worker"] == (None if t["worker"] < 0 else ids.workers([t["worker"]])[0])
    for topic in state.open_topics:
        assert s.voting.state(topic["id"]) == topic["state"]
    burst = int(ids.buildings([BURST_BUILDING])[0])
    assert twin.burst_ticketed[burst] and np.isfinite(twin.burst_until[burst])  # it flows until its repair
    assert (twin.technicians.free_at >= state.minutes).all()
    # the open tickets continue: a week later every one of them is done
    for _ in range(7):
        twin.step()
    status = s.repair.state.status[[t["id"] for t in state.open_tickets]]
    assert (status >= Status.completed).all()


def test_six_technicians_cut_the_backlog_after_a_burst(store):
    """The README's example: a pipe burst now — the backlog over the next week with 4 technicians against 6."""
    result = fork(store, 7, ["staff.technicians=4"], ["staff.technicians=6"], n=5, seed=1)
    row = result.rows["backlog_tickets_mean"]
    assert row["policy"] < row["baseline"] and row["high"] < 0, row
    assert result.backlog["baseline"].shape == (5, 7)
    assert (result.backlog["policy"][:, 0] < result.backlog["baseline"][:, 0]).all()


def test_identical_arms_find_no_difference(store):
    """Mutation check of the test above: the same arm twice gives intervals that hold zero."""
    result = fork(store, 7, ["staff.technicians=4"], ["staff.technicians=4"], n=5, seed=1)
    for key, row in result.rows.items():
        if np.isfinite(row["low"]):
            assert row["low"] <= 0 <= row["high"], key
    assert np.array_equal(result.backlog["baseline"], result.backlog["policy"])


def test_the_same_seed_gives_the_same_projection(store):
    a = fork(store, 3, [], ["staff.technicians=8"], n=2, seed=7)
    b = fork(store, 3, [], ["staff.technicians=8"], n=2, seed=7)
    assert a.summaries == b.summaries
    assert all(np.array_equal(a.backlog[arm], b.backlog[arm]) for arm in a.backlog)
    c = fork(store, 3, [], ["staff.technicians=8"], n=2, seed=8)
    assert c.summaries != a.summaries  # and the seed matters


def test_a_store_held_by_its_writer_can_be_forked(store, cfg):
    with open_services(store) as writer:  # the production server's role: it holds the writer lock
        writer.points.earn(1003, 1, occurrence=2, t=NOW + 1)
        state = production_state(store)
        assert state.points[1003] == writer.points.balance(1003)  # what the writer committed is seen
        twin = fork_twin(state, cfg, seed=1)
        twin.step()


def test_an_earlier_moment_of_the_store(store):
    state = production_state(store, at_minutes=NOW - 600)
    assert state.minutes == NOW - 600
    assert 0 < len(state.open_tickets) < 60 and all(t["status"] == "submitted" for t in state.open_tickets)


def test_what_a_fork_cannot_change_is_refused_by_name():
    for key in ("community.households=10", "policies.points.activities=[]", "seed=3", "sim.days=3"):
        with pytest.raises(ConfigError, match=key.split("=")[0]):
            check_overrides([key])
    check_overrides(["staff.technicians=6", "policies.dispatch=fifo"])


def test_the_command_line(store, tmp_path, capsys):
    out = tmp_path / "fork"
    assert main(["fork", "--store", str(store), "--days", "2", "--policy", "staff.technicians=6", "--baseline",
                 "staff.technicians=4", "-n", "2", "--out", str(out), "--plotly", "cdn",
                 "--recording", str(tmp_path / "rec.db")]) == 0
    captured = capsys.readouterr()
    assert "backlog_tickets_mean" in captured.out and "95% CI" in captured.out
    assert "--recording" in captured.err and "not used yet" in captured.err
    page = (out / "fork.html").read_text()
    assert "Backlog per day" in page and "middle 90%" in page
    assert (out / "fork.json").exists()


@pytest.mark.parametrize("argv, code, words", [
    (["--store", "{missing}", "--policy", "staff.technicians=6"], EXIT_INPUT, "does not exist"),
    (["--store", "{store}", "--policy", "staff.technicans=6"], EXIT_USAGE, "unknown key"),
    (["--store", "{store}", "--policy", "community.households=9"], EXIT_USAGE, "cannot be changed in a fork"),
])
def test_bad_input_is_one_clear_line(store, tmp_path, capsys, argv, code, words):
    argv = [a.format(store=store, missing=tmp_path / "none.db") for a in argv]
    assert main(["fork", *argv, "--days", "1", "-n", "1"]) == code
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_missing_store_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        production_state(tmp_path / "none.db")


def test_a_store_without_residents_is_refused(tmp_path):
    open_services(tmp_path / "empty.db").close()
    with pytest.raises(StoreError, match="holds no residents"):
        fork(tmp_path / "empty.db", 1, [], ["staff.technicians=6"], n=1)
