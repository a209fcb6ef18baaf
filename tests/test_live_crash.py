"""The server killed mid-load and restarted on its store: acknowledged writes kept, none applied twice.

A server process (what ``twin serve`` runs: open the store, seed accounts on a
fresh one, uvicorn on a loopback port) takes repair reports from a few client
threads, each report with its own ``Idempotency-Key`` and a description naming
it.  The process is SIGKILLed while the clients are still sending, then started
again on the same store.  Then:

- every report that was answered 2xx is in the store, under the id it was
  answered with, exactly once;
- no report is in the store twice, and nothing is there that no client sent;
- every client retries the report it had in flight when the server died (it
  may or may not have been committed) and some it already had answers for:
  each retry gets the first answer, and after the retries every report sent
  is in the store exactly once.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from twin.services.events import EventKind
from twin.services.store import EventStore

from live_helpers import free_port

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 4
ACKED_BEFORE_KILL = 60

#: ``twin serve`` without its CLI: open the store, seed one resident account per client on a
#: fresh store (tokens to a file), serve until killed.
SERVE = r"""
import json, sys
import uvicorn
from twin.live.accounts import accounts, add_account
from twin.live.app import create_app
from twin.services.community import open_services

path, port, tokens_file, clients = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
services = open_services(path)
if not accounts(services):
    tokens = {str(c): add_account(services, "resident", 100 + c, f"client {c}") for c in range(clients)}
    with open(tokens_file, "w") as f:
        json.dump(tokens, f)
uvicorn.run(create_app(services), host="127.0.0.1", port=port, log_level="warning")
"""


class Process:
    """The server in its own process, on the store at ``path``."""

    def __init__(self, path: Path, tmp: Path):
        self.path, self.tmp = path, tmp
        self.tokens_file = tmp / "tokens.json"

    def start(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/v1"
        self.log = open(self.tmp / f"server-{self.port}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", SERVE, str(self.path), str(self.port),
                                      str(self.tokens_file), str(CLIENTS)],
                                     cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180  # a cold numba cache compiles the kernels first
        while True:
            assert self.proc.poll() is None, f"the server exited: {self.output()}"
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"the server did not start: {self.output()}"
            time.sleep(0.1)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    def output(self) -> str:
        self.log.flush()
        return (self.tmp / f"server-{self.port}.log").read_text(errors="replace")[-3000:]


def _report(c: int, i: int) -> tuple[str, dict]:
    return f"client{c}-{i}", {"category": "plumbing", "description": f"crash test: client {c} report {i}",
                              "building": 1 + c, "unit": 100 + i % 100}


def _body(key: str) -> dict:
    c, i = key.removeprefix("client").split("-")
    return _report(int(c), int(i))[1]


class Client(threading.Thread):
    """Sends reports one after another until the server stops answering; logs what it was told."""

    def __init__(self, c: int, url: str, token: str):
        super().__init__(daemon=True)
        self.c, self.url, self.token = c, url, token
        self.acked: dict[str, int] = {}  # key -> ticket id answered
        self.in_flight: str | None = None

    def run(self):
        with httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10) as http:
            for i in range(100_000):
                key, body = _report(self.c, i)
                self.in_flight = key
                try:
                    answer = http.post("/repair/tickets", json=body, headers={"Idempotency-Key": key})
                except httpx.TransportError:
                    return  # the server died with this report in flight
                assert answer.status_code == 201, answer.text
                self.acked[key] = answer.json()["id"]
                self.in_flight = None


def _stored(path: Path) -> dict[str, list[int]]:
    """Report description -> the ids of the tickets the store holds with it."""
    with EventStore(path, readonly=True) as store:
        events = store.load()
        details = store.details()
    submitted = set(events["subject"][events["kind"] == EventKind.TicketSubmitted].tolist())
    out: dict[str, list[int]] = {}
    for subject, field, text in details:
        if field == "description" and subject in submitted:
            out.setdefault(text, []).append(subject)
    assert len(submitted) == sum(len(ids) for ids in out.values()), "a ticket without its description"
    return out


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_killed_server_keeps_every_acknowledged_write_once_and_retries_get_the_first_answer(tmp_path):
    path = tmp_path / "crash.db"
    server = Process(path, tmp_path).start()
    tokens = json.loads(server.tokens_file.read_text())
    clients = [Client(c, server.url, tokens[str(c)]) for c in range(CLIENTS)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + 120
    while sum(len(c.acked) for c in clients) < ACKED_BEFORE_KILL:
        assert all(c.is_alive() for c in clients), "a client stopped before the kill"
        assert time.monotonic() < deadline, "the load did not get going"
        time.sleep(0.005)
    server.kill()  # mid-load: every client has a report in flight or about to be
    for client in clients:
        client.join(timeout=30)
        assert not client.is_alive()
    acked = {key: id for c in clients for key, id in c.acked.items()}
    in_flight = [c.in_flight for c in clients if c.in_flight is not None]
    assert len(acked) >= ACKED_BEFORE_KILL and in_flight

    server = Process(path, tmp_path).start()  # the same store, a fresh process
    description = {key: _body(key)["description"] for key in [*acked, *in_flight]}
    stored = _stored(path)
    # every acknowledged write is in the store, under the id it was answered with, once
    for key, id in acked.items():
        assert stored.get(description[key]) == [id], (key, id, stored.get(description[key]))
    # nothing twice, nothing no client sent (an in-flight report: committed or not, at most once)
    sent = set(description.values())
    assert all(len(ids) == 1 for ids in stored.values()), [d for d, ids in stored.items() if len(ids) > 1]
    assert set(stored) <= sent
    assert set(stored) - {description[k] for k in acked} <= {description[k] for k in in_flight}

    # retries after the restart: the reports in flight, and a sample of those already answered
    retried = {}
    for client in clients:
        keys = ([client.in_flight] if client.in_flight else []) + sorted(client.acked)[:: max(1, len(client.acked) // 5)]
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {tokens[str(client.c)]}"},
                          timeout=30) as http:
            for key in keys:
                answer = http.post("/repair/tickets", json=_body(key), headers={"Idempotency-Key": key})
                assert answer.status_code == 201, answer.text
                retried[key] = answer.json()["id"]
    for key, id in retried.items():
        if key in acked:
            assert id == acked[key], f"{key}: first answered {acked[key]}, after the restart {id}"
    after = _stored(path)
    for key in in_flight:
        assert after[description[key]] == [retried[key]]  # applied once: before the kill or by the retry
    assert set(after) == sent and all(len(ids) == 1 for ids in after.values())
    server.kill()
    print(f"\n{len(acked)} writes acknowledged before the kill, {len(in_flight)} in flight "
          f"({len(set(stored) - {description[k] for k in acked})} of them committed), {len(retried)} retried")


def test_the_serve_script_refuses_a_second_server_on_the_same_store(tmp_path):
    """The one-writer rule holds for the process too: a second one exits instead of sharing the store."""
    path = tmp_path / "one.db"
    first = Process(path, tmp_path).start()
    second = subprocess.run([sys.executable, "-c", SERVE, str(path), str(free_port()), str(tmp_path / "t2.json"),
                             "1"], cwd=ROOT, capture_output=True, text=True, timeout=180,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert second.returncode != 0 and "StoreLocked" in second.stderr, second.stderr[-2000:]
    assert first.proc.poll() is None
    first.kill()
