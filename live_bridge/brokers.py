"""Where the bridge's MQTT traffic goes: a broker named by URL, an embedded one, or Mosquitto.

- :func:`parse_broker_url` reads ``mqtt://[user:pass@]host[:port]`` and ``mqtts://`` (TLS,
  with an optional CA file and client certificate) into a :class:`BrokerURL`, whose repr and
  str never show the password.
- :class:`EmbeddedBroker` is the default when no broker is named: amqtt in a process of its
  own (it runs about 2.5 times faster there than inside a caller's event loop, and a crash
  of either side leaves the other standing), on 127.0.0.1 only.
- :class:`Mosquitto` runs Debian's broker on a free loopback port for tests and benchmarks,
  with persistence so that stopping and starting it again keeps persistent sessions' queued
  messages, as a production broker would.
- :func:`broker` is what a command calls: the URL it was given, or an embedded broker.

``python -m live_bridge.brokers [--port N]`` runs the embedded broker in the foreground.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

MOSQUITTO = "/usr/sbin/mosquitto"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
ALLOWED_FORMS = ("mqtt://[user:pass@]host[:port] (port 1883 by default) or "
                 "mqtts://[user:pass@]host[:port] (TLS, port 8883 by default; --ca, --cert, --key for its files)")
START_TIMEOUT_S = 60.0  # a generous limit: it only stops a broker that will never come up


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# broker URLs

@dataclass(frozen=True)
class BrokerURL:
    """A broker's address and credentials; ``str()`` gives the URL with the password masked."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @property
    def tls(self) -> bool:
        return self.scheme == "mqtts"

    def __str__(self) -> str:
        user = ""
        if self.username is not None:
            user = self.username + (":***" if self.password is not None else "") + "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{user}{host}:{self.port}"


def _masked(url: str) -> str:
    """``url`` with any password replaced by ``***``, for error messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    return f"{scheme}{sep}{userinfo}{at}{hostport}{slash}{tail}"


def parse_broker_url(url: str, ca: str | os.PathLike | None = None, cert: str | os.PathLike | None = None,
                     key: str | os.PathLike | None = None) -> BrokerURL:
    """Read a broker URL; ``ca``, ``cert`` and ``key`` are files for an ``mqtts://`` broker.

    Raises ValueError naming the URL (password masked) and the allowed forms, or the
    option and file that is wrong, so that a command can print it as it is.
    """
    def bad(why: str) -> ValueError:
        return ValueError(f"broker URL {_masked(str(url))!r} {why}; allowed forms: {ALLOWED_FORMS}")

    if not isinstance(url, str):
        raise bad("is not a string")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise bad(f"is not valid ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise bad(f"has scheme {parts.scheme or 'none'!r}, not mqtt or mqtts")
    if not parts.hostname:
        raise bad("names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise bad("has a path, query or fragment after the host and port")
    if port == 0:
        raise bad("has port 0")
    files = {"ca": ca, "cert": cert, "key": key}
    given = [name for name, path in files.items() if path is not None]
    if given and scheme != "mqtts":
        raise ValueError(f"--{given[0]} is for a TLS broker, but {_masked(url)!r} is not mqtts://")
    if key is not None and cert is None:
        raise ValueError("--key needs --cert (the client certificate the key belongs to)")
    for name in given:
        if not Path(files[name]).is_file():
            raise ValueError(f"--{name} {files[name]}: no such file")
    return BrokerURL(scheme=scheme, host=parts.hostname, port=port or DEFAULT_PORTS[scheme],
                     username=unquote(parts.username) if parts.username is not None else None,
                     password=unquote(parts.password) if parts.password is not None else None,
                     **{name: os.fspath(path) if path is not None else None for name, path in files.items()})


# ---------------------------------------------------------------------------------------
# brokers run as child processes

class _ChildBroker:
    """A broker in a child process on a loopback port: start, wait until it listens, stop.

    Subclasses say how to run it (:meth:`_command`); the child's output goes to a log file
    (a pipe nobody reads would fill and stall it) that a failed start quotes.
    """

    name = "broker"
    scheme = "mqtt"
    ready_line = ""  # what the broker writes once it serves (a listening port alone is not enough)

    def __init__(self, port: int | None = None):
        self._port_given = port is not None
        self.port = port if port is not None else free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.log_path = self.workdir / f"{self.name}.log"
        self.process: subprocess.Popen | None = None
        self._log_offset = 0
        self._started: list[subprocess.Popen] = []
        # a broker left running would outlive its owner and hold its port; at collection or exit
        weakref.finalize(self, _reap, self._started, self.workdir)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_options(self) -> dict:
        return {}

    def start(self) -> _ChildBroker:
        """Start the broker (again, on the same port and data) and wait until it listens."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running on {self.url}")
        for attempt in range(3):
            try:
                self._start_once()
                return self
            except _PortTaken:
                # another process took the free port between our look and the broker's
                # bind; a port we chose can be chosen again, one we were given cannot
                if self._port_given or attempt == 2:
                    raise RuntimeError(f"{self.name} could not listen on 127.0.0.1:{self.port}: "
                                       f"the port is in use\n{self.log()}") from None
                self.port = free_port()

    def _start_once(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        if _accepts(self.port):  # else we would take the other listener for ours
            raise _PortTaken
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                            **self._popen_options())
        self._started[:] = [self.process]
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                text = self.log()
                if "already in use" in text.lower():
                    raise _PortTaken
                raise RuntimeError(f"{self.name} exited with status {self.process.returncode} before it listened "
                                   f"on 127.0.0.1:{self.port}; its output:\n{text}")
            # Mosquitto listens before it loads its TLS files and may still exit after that
            if self.ready_line in self.log() and _accepts(self.port) and self.process.poll() is None:
                return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} did not listen on 127.0.0.1:{self.port} within "
                                   f"{START_TIMEOUT_S:.0f} s; its output:\n{self.log()}")
            time.sleep(0.02)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        """What the broker has written since it last started (the end of it)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")[-4000:].strip()
        except OSError:
            return ""

    def stop(self) -> None:
        """End the broker as an operator would (SIGTERM): it saves its state and exits."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """End the broker as a crash would (SIGKILL): nothing is saved."""
        self._end(signal.SIGKILL)

    def _end(self, sig: int) -> None:
        if not self.running:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        """Stop the broker and remove its files (a persistence folder given by the caller stays)."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reap(processes: list[subprocess.Popen], workdir: Path) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()
    shutil.rmtree(workdir, ignore_errors=True)


class _PortTaken(Exception):
    """The broker exited because its port was taken."""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def mosquitto_missing() -> str | None:
    """None when Mosquitto can run here, else why not (for ``require_tool``)."""
    if _mosquitto_path() is None:
        return f"{MOSQUITTO} not found (Debian package mosquitto: apt-get install mosquitto mosquitto-clients)"
    return None


def _mosquitto_path() -> str | None:
    if os.access(MOSQUITTO, os.X_OK):
        return MOSQUITTO
    return shutil.which("mosquitto")


@dataclass(frozen=True)
class TLSFiles:
    """A TLS listener's files; ``require_certificate`` makes clients show one signed by ``ca``."""

    ca: str | os.PathLike
    cert: str | os.PathLike
    key: str | os.PathLike
    require_certificate: bool = False


class Mosquitto(_ChildBroker):
    """Mosquitto on 127.0.0.1, with limits that keep QoS 1 bursts and persistent sessions whole.

    ``max_queued_messages 100000`` (the default, 1000, drops the rest of a burst queued for a
    client silently) and ``max_inflight_messages 100``. Persistence lives in
    ``persistence_dir`` (a temporary folder by default): :meth:`stop` saves it, :meth:`start`
    reads it back, so a persistent session's queued messages survive a restart. :meth:`kill`
    saves nothing, as a crash would. ``tls`` makes the listener ``mqtts://``.
    Starting it is :meth:`start` or ``with Mosquitto() as broker:``.
    """

    name = "mosquitto"
    ready_line = " running"  # "mosquitto version 2.0.11 running", logged at level information

    def __init__(self, port: int | None = None, persistence_dir: str | os.PathLike | None = None,
                 tls: TLSFiles | None = None):
        super().__init__(port)
        self.persistence_dir = Path(persistence_dir) if persistence_dir is not None else self.workdir / "data"
        self.persistence_dir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.scheme = "mqtts" if tls is not None else "mqtt"

    def config(self) -> str:
        lines = [f"listener {self.port} 127.0.0.1"]
        if self.tls is not None:
            lines += [f"cafile {os.fspath(self.tls.ca)}", f"certfile {os.fspath(self.tls.cert)}",
                      f"keyfile {os.fspath(self.tls.key)}",
                      f"require_certificate {'true' if self.tls.require_certificate else 'false'}"]
        lines += ["allow_anonymous true",
                  "max_queued_messages 100000",
                  "max_inflight_messages 100",
                  "persistence true",
                  f"persistence_location {self.persistence_dir}/",
                  "log_dest stderr",
                  "log_type error",
                  "log_type warning",
                  "log_type notice",
                  "log_type information"]
        if os.geteuid() == 0:
            lines.append("user root")  # as root it would switch to the user "mosquitto", who cannot write here
        return "\n".join(lines) + "\n"

    def _command(self) -> list[str]:
        path = _mosquitto_path()
        if path is None:
            raise RuntimeError(mosquitto_missing())
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(self.config())
        return [path, "-c", str(conf)]


class EmbeddedBroker(_ChildBroker):
    """amqtt in its own process on 127.0.0.1 (amqtt binds 0.0.0.0 unless told otherwise).

    Anonymous clients are allowed and no other plugin runs: amqtt's ``plugins`` setting
    replaces its default set rather than adding to it, so the set is named in full here.
    Sessions live in its memory only: a restart forgets them. The child ends when this
    object's process does (it watches its stdin), so it never outlives its owner.
    """

    name = "amqtt"
    ready_line = "embedded broker listening on"

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "live_bridge.brokers", "--port", str(self.port), "--watch-stdin"]

    def _popen_options(self) -> dict:
        return {"stdin": subprocess.PIPE}

    def _end(self, sig: int) -> None:
        super()._end(sig)
        if self.process is not None and self.process.stdin is not None:
            self.process.stdin.close()


def amqtt_config(port: int) -> dict:
    """The embedded broker's whole configuration: one loopback listener, anonymous clients."""
    return {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}


@contextlib.contextmanager
def broker(url: str | None = None, ca=None, cert=None, key=None) -> Iterator[BrokerURL]:
    """The broker a command talks to: ``url`` if given, else an embedded broker for its lifetime."""
    if url is not None:
        yield parse_broker_url(url, ca=ca, cert=cert, key=key)
        return
    if any(path is not None for path in (ca, cert, key)):
        raise ValueError("--ca, --cert and --key need --broker mqtts://...; the embedded broker has no TLS")
    with EmbeddedBroker() as embedded:
        yield parse_broker_url(embedded.url)


# ---------------------------------------------------------------------------------------
# the embedded broker's own process

async def _serve_amqtt(port: int, watch_stdin: bool) -> None:
    import asyncio

    from amqtt.broker import Broker

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    if watch_stdin:
        # the owner holds our stdin open; end of file means it is gone (a daemon thread:
        # asyncio.run would wait for an executor's thread blocked in read)
        def watch() -> None:
            while os.read(0, 4096):  # the raw descriptor: a buffered read would hold a lock at exit
                pass
            loop.call_soon_threadsafe(done.set)

        threading.Thread(target=watch, daemon=True).start()
    amqtt = Broker(amqtt_config(port))  # built inside the running loop, as amqtt requires
    await amqtt.start()
    print(f"embedded broker listening on mqtt://127.0.0.1:{port}", flush=True)  # the ready_line
    await done.wait()
    await amqtt.shutdown()


class _OneLine(logging.Formatter):
    """amqtt logs a failure with its traceback; its log is read by people, so keep the message."""

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        return f"({ei[0].__name__}: {ei[1]})"


def main(argv: list[str] | None = None) -> int:
    import asyncio

    parser = argparse.ArgumentParser(prog="python -m live_bridge.brokers",
                                     description="Run the embedded MQTT broker (amqtt) on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=1883, help="TCP port on 127.0.0.1 (default 1883)")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when standard input closes")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLine("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        asyncio.run(_serve_amqtt(args.port, args.watch_stdin))
    except Exception as exc:  # amqtt wraps a failed bind in its own error; say what it was, without a traceback
        cause = exc.__cause__ or exc
        print(f"embedded broker cannot listen on 127.0.0.1:{args.port}: {cause}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
