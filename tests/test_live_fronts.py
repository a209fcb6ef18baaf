"""``twin serve --fronts N``: front processes before one writer, every guarantee of the one-process server.

A real server (the writer process and two fronts, real sockets, a real store)
takes concurrent writes from clients on separate connections, so both fronts
feed the one writer.  Then:

- every write answered 2xx is in the store once; commands from the fronts
  shared commits;
- one ``Idempotency-Key`` sent at once on several connections applies once and
  every answer is the first;
- refusals keep their status and problem documents (role, body, token,
  duplicate), and routes the fronts do not serve themselves (pages, the
  OpenAPI document, the event feed) come back through them unchanged;
- the requests that test the fast path answer byte for byte as one process does;
- a malformed frame on the command socket is counted and skipped;
- a front killed is started again; the writer killed takes its fronts with it,
  and what it acknowledged is in the store.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from twin.live import wire
from twin.services.events import EventKind
from twin.services.store import EventStore

from live_helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
CLIENTS, WRITES = 6, 30

#: ``twin serve --fronts 2`` without its CLI, on a fresh store seeded as ``test_live_fastpath._server``
#: seeds its in-memory services (and the same fixed clock); tokens to a file.
SERVE = r"""
import json, sys
from twin.live.accounts import add_account
from twin.live.app import create_app
from twin.live.front import serve_with_fronts
from twin.services.community import open_services

path, port, tokens_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open_services(path) as services:
    with services.unit():
        services.points.enroll_batch(list(range(100, 110)))
        services.timebank.register(6, role="coordinator")
        services.repair.submit("plumbing", "a leak", building=1, unit=101, reporter=100)
    tokens = {role: add_account(services, role, id)
              for role, id in (("coordinator", 6), ("resident", 100), ("technician", 4))}
    with open(tokens_file, "w") as f:
        json.dump(tokens, f)
    serve_with_fronts(create_app(services, clock=lambda: 1.0), "127.0.0.1", port, 2)
"""


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                out.append(int(stat.parent.name))
        except (OSError, IndexError):
            pass
    return out


def _wait(condition, what: str, seconds: float = 180.0):
    """Wait for ``condition()`` (a startup or a restart, not a timing claim); fail naming ``what``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.1)


class Fronted:
    """The writer process (with its two fronts) on a free port over the store at ``path``."""

    def __init__(self, tmp: Path):
        self.tmp, self.path, self.port = tmp, tmp / "store.sqlite", free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = self.root + "/api/v1"
        self.log = open(tmp / "server.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", SERVE, str(self.path), str(self.port),
                                      str(tmp / "tokens.json")], cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        _wait(lambda: self._fronts() == 2, "the writer and both fronts up")
        self.tokens = json.loads((tmp / "tokens.json").read_text())

    def _fronts(self) -> int:
        assert self.proc.poll() is None, f"the server exited: {self.output()}"
        try:
            return httpx.get(self.url + "/health", timeout=5).json().get("fronts", 0)
        except (httpx.TransportError, ValueError):
            return 0

    def health(self) -> dict:
        return httpx.get(self.url + "/health", timeout=30).json()

    def client(self, role=None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def output(self) -> str:
        self.log.flush()
        return (self.tmp / "server.log").read_text(errors="replace")[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=60) == 128 + signal.SIGTERM, self.output()  # a clean exit, not a kill
        self.log.close()


@pytest.fixture
def server(tmp_path):
    s = Fronted(tmp_path)
    yield s
    s.stop()


def _earned(path: Path) -> list[tuple[int, int]]:
    """(resident, occurrence) of every PointsEarned event in the store."""
    with EventStore(path, readonly=True) as store:
        events = store.load()
    rows = events[events["kind"] == EventKind.PointsEarned]
    return sorted(zip(rows["actor"].tolist(), rows["subject"].tolist()))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fronts_feed_one_writer_with_every_guarantee(server):
    before = server.health()
    answers: dict[int, list] = {}

    def writes(c):
        with server.client("coordinator") as http:  # a connection of its own: the kernel picks a front
            answers[c] = [http.post(f"/points/residents/{100 + c}/earn", json={"activity": 0, "occurrence": i})
                          for i in range(WRITES)]

    threads = [threading.Thread(target=writes, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a.status_code == 201 for got in answers.values() for a in got)
    after = server.health()
    assert after["events"] - before["events"] == CLIENTS * WRITES
    # commands from the fronts shared commits (the commands include the fronts' first look-ups of the token)
    assert after["batches"] - before["batches"] < CLIENTS * WRITES <= after["commands"] - before["commands"]

    # one key, several connections at once: applied once, every answer the first
    barrier = threading.Barrier(6)
    keyed = []

    def retry():
        with server.client("coordinator") as http:
            barrier.wait()
            keyed.append(http.post("/points/residents/109/earn", json={"activity": 0, "occurrence": 77},
                                   headers={"Idempotency-Key": "same-key"}))

    threads = [threading.Thread(target=retry) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {(a.status_code, a.content) for a in keyed} == {(201, keyed[0].content)}

    with server.client("coordinator") as staff, server.client("resident") as resident, server.client() as nobody:
        duplicate = staff.post("/points/residents/100/earn", json={"activity": 0, "occurrence": 0})
        assert duplicate.status_code == 409 and duplicate.json()["title"] == "DuplicateClaim"
        wrong_role = resident.post("/points/residents/100/earn", json={"activity": 0, "occurrence": 999})
        assert wrong_role.status_code == 403 and wrong_role.headers["content-type"] == "application/problem+json"
        bad_body = staff.post("/points/residents/100/earn", json={"activity": 0})
        assert bad_body.status_code == 422 and bad_body.json()["title"] == "invalid-request"
        unknown = nobody.post("/points/residents/100/earn", json={"activity": 0, "occurrence": 1000},
                              headers={"Authorization": "Bearer nobody-has-this"})
        assert unknown.status_code == 401 and unknown.headers["www-authenticate"] == "Bearer"
        # 10 points an occurrence of activity 0, as the points rules say
        assert resident.get("/points/residents/100/balance").json() == {"balance": 10 * WRITES}
        # relayed to the writer's own application
        assert nobody.get(server.root + "/").status_code == 200
        assert "paths" in nobody.get(server.root + "/openapi.json").json()
        feed = staff.get("/events", params={"after": 0, "limit": 5000}).json()
        earned = [e for e in feed["events"] if e["kind"] == "PointsEarned"]
        assert len(earned) == CLIENTS * WRITES + 1

    assert _earned(server.path) == sorted([(100 + c, i) for c in range(CLIENTS) for i in range(WRITES)]
                                          + [(109, 77)])


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_malformed_frame_is_counted_and_skipped_and_fronts_come_back(server):
    command_socket = next(Path(p) for p in Path("/tmp").glob("twin-serve-*/commands.sock")
                          if p.parent.stat().st_uid == os.getuid() and _owned_by(p, server.proc.pid))
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(command_socket))
        raw.sendall(wire.frame(b"[7, \"no such kind\", 1]") + wire.frame(b"not json")
                    + wire.request(8, "who", server.tokens["resident"]))
        reader, replies = wire.FrameReader(), []
        while len(replies) < 2:
            chunk = raw.recv(65536)
            assert chunk, "the writer closed the connection"
            replies += [wire.read_reply(p) for p in reader.feed(chunk)]
    assert replies[0][:2] == (7, 400)
    assert replies[1][:2] == (8, 200) and json.loads(replies[1][2])[:2] == ["resident", 100]
    assert server.health()["refused_frames"] == 2  # counted, and the connection went on

    fronts = _children(server.proc.pid)
    assert len(fronts) == 2
    os.kill(fronts[0], signal.SIGKILL)
    _wait(lambda: len(set(_children(server.proc.pid)) - {fronts[0]}) == 2 and server._fronts() == 2,
          "the killed front started again")

    with server.client("coordinator") as http:
        acked = [http.post("/points/residents/101/earn", json={"activity": 0, "occurrence": 500 + i})
                 for i in range(10)]
    assert all(a.status_code == 201 for a in acked)
    fronts = _children(server.proc.pid)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)
    _wait(lambda: not any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in fronts),
          "the fronts left with their writer")
    assert {(101, 500 + i) for i in range(10)} <= set(_earned(server.path))
    shutil.rmtree(command_socket.parent, ignore_errors=True)  # a killed writer leaves its private sockets


def _owned_by(sock: Path, pid: int) -> bool:
    """Whether the Unix socket ``sock`` is one process ``pid`` listens on (its inode in /proc/net/unix)."""
    inode = None
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == str(sock):
            inode = fields[6]
    if inode is None:
        return False
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == f"socket:[{inode}]":
                return True
        except OSError:
            pass
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fronts_answer_byte_for_byte_as_one_process(server):
    """The requests of ``test_live_fastpath`` through the fronts, each on a new connection, answer as one process."""
    from test_live_fastpath import _answers, _requests

    expected, _, _ = _answers(False)
    got = []
    for method, path, headers, body in _requests(server.tokens):
        with httpx.Client(base_url=server.root, timeout=30) as http:
            a = http.request(method, path, headers=headers, content=body)
        got.append((method, path, a.status_code, a.headers.get("content-type"), a.headers.get("www-authenticate"),
                    a.content))
    for a, b in zip(got, expected):
        assert a == b
    assert len(got) == len(expected)


def test_fronts_must_be_a_small_count_and_the_error_names_the_option(tmp_path):
    from twin.live.serve import serve

    with pytest.raises(ValueError, match=r"fronts: an integer from 0 to 64"):
        serve(tmp_path / "store.sqlite", fronts=-1)
    assert not (tmp_path / "store.sqlite").exists()  # refused before the store was opened
    out = subprocess.run([sys.executable, "-m", "twin.cli", "serve", "--store", str(tmp_path / "s.sqlite"),
                          "--fronts", "many"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert "argument --fronts: an integer from 0 to 64 (0: one process), got 'many'" in out.stderr
    assert "Traceback" not in out.stderr
