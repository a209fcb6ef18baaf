"""`twin serve --demo` and `twin users add` as a user runs them: real processes, a real socket."""
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from live_helpers import free_port

REPO = Path(__file__).resolve().parents[1]


def _twin(*args, cwd, **kw):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "twin.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, **kw)


def test_serve_demo_prints_logins_serves_them_and_holds_the_store(tmp_path):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "serve", "--demo", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    printed = []
    try:
        deadline = time.monotonic() + 240
        while not any(x.startswith("serving") for x in printed):
            printed.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        logins = {x.split()[0]: x.split()[1] for x in printed if "/login?token=" in x}
        assert set(logins) == {"resident", "technician", "social_worker", "coordinator", "admin"}
        token = logins["resident"].split("token=")[1]
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # uvicorn binds just after the line is printed
            try:
                board = httpx.get(base + "/board", timeout=5)
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert board.status_code == 200
        tickets = httpx.get(base + "/api/v1/repair/tickets", headers={"Authorization": f"Bearer {token}"}).json()
        assert tickets["total"] == 3
        # a second writer is refused with one line, no traceback
        locked = _twin("users", "add", "--role", "resident", "--id", "120", cwd=tmp_path)
        assert locked.returncode == 3 and "already open for writing" in locked.stderr
        assert "Traceback" not in locked.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    # stopped: accounts can be added, and a restart does not seed again
    added = _twin("users", "add", "--role", "technician", "--id", "9", "--name", "Wang", cwd=tmp_path)
    assert added.returncode == 0 and len(added.stdout.strip()) > 30
    bad = _twin("users", "add", "--role", "mayor", "--id", "1", cwd=tmp_path)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
