"""A throwaway ganache node on loopback, for tests and demonstrations of the URL path.

``with ganache_node(accounts=[(key, wei)], chain_id=1337) as url:`` starts the ganache binary
installed by ``npm ci --prefix contracts`` on a free 127.0.0.1 port, waits until it listens,
yields its URL and stops it afterwards.  Its output goes to a file (a chatty node must never
block on a full pipe); ``GanacheMissing`` says when node or ganache is not installed.
"""
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

GANACHE = Path(__file__).resolve().parent / "node_modules" / ".bin" / "ganache"


class GanacheMissing(RuntimeError):
    """node or the pinned ganache is not installed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def ganache_node(accounts, chain_id: int = 1337, timeout: float = 60.0):
    """A ganache node holding ``accounts`` (``(private key hex, wei)`` pairs); yields its URL."""
    if not GANACHE.exists() or shutil.which("node") is None:
        raise GanacheMissing(f"ganache is not installed at {GANACHE} (run `npm ci --prefix contracts`)")
    port = free_port()
    wallet = [arg for key, wei in accounts for arg in ("--wallet.accounts", f"{key},{wei}")]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "ganache.log"
        with open(log, "wb") as sink:
            proc = subprocess.Popen([str(GANACHE), "--server.host", "127.0.0.1", "--server.port", str(port),
                                     "--logging.quiet", "--chain.chainId", str(chain_id), *wallet],
                                    stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"ganache exited: {log.read_text()[-2000:]}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"ganache did not listen within {timeout:.0f} s") from None
                    time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
