"""Front processes: several processes take the HTTP load, one writer process holds the store.

One Python process tops out near the framework's own ceiling (a few
thousand requests a second) and shares its one interpreter lock between
parsing HTTP and applying commands.  ``twin serve --fronts N`` splits the work:

- the **writer** (this package's ordinary server: :func:`twin.live.app.create_app`
  over the store, whose writer lock it holds) listens only on a private Unix
  socket for HTTP and on another for commands (:mod:`twin.live.writer`);
- **N fronts** (``python -m twin.live.front``) accept the clients' connections
  on the public port — one listening socket, made by the writer and inherited
  by every front, so the kernel spreads connections over them.  A front runs
  :class:`~twin.live.fastpath.OperationFastPath`: an API operation that is
  well formed, from an account whose role may call it, goes to the writer as
  one compact frame (:mod:`twin.live.wire`) and its answer comes back already
  rendered; everything else (pages, Open311, the event feed, every refusal the
  fast path leaves to the application) is relayed unchanged to the writer's
  HTTP socket (:mod:`twin.live.proxy`).

So the fronts do the parsing, authentication and validation on their own
cores, and the writer applies and commits commands from all of them in shared
batches: every rule of the one-process server holds because the same process
applies every command.  A front remembers which account a token names (a
token, once issued, is never reassigned), but the writer looks the account up
again for each command.  Fronts that lose the writer exit; the writer restarts
a front that dies.  On SIGINT or SIGTERM the writer stops its fronts first (each
finishes the requests it took, which the writer still answers), then itself.
"""
import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from starlette.responses import JSONResponse, Response

from twin.live import wire
from twin.live.accounts import Principal
from twin.live.app import API, MAX_BODY_BYTES, PING, PONG, failure, media_type, request_models
from twin.live.fastpath import OperationFastPath
from twin.live.problems import problem
from twin.live.proxy import UnixProxy
from twin.live.serve import sigterm_exits


class WriterLost(ConnectionError):
    """The writer process closed the command connection: the command's fate is unknown."""


# ------------------------------------------------------------------ the front's side
class WriterLink(asyncio.Protocol):
    """A front's one connection to the writer's command socket, many requests in flight on it."""

    def __init__(self, path: str, on_lost=None):
        self.path = path
        self.on_lost = on_lost
        self.transport = None
        self.reader = wire.FrameReader()
        self.pending: dict[int, asyncio.Future] = {}
        self.ids = itertools.count(1)
        self._connecting = None

    async def connect(self) -> None:
        """Connect once (later calls wait for the same attempt)."""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        await asyncio.shield(self._connecting)

    async def call(self, *items) -> tuple[int, bytes]:
        """Send a request (``"op", ...`` or ``"who", token``); its ``(status, body)``."""
        if self.transport is None:
            await self.connect()
        if self.transport.is_closing():
            raise WriterLost("the writer is gone")
        rid = next(self.ids) % 2 ** 32
        future = asyncio.get_running_loop().create_future()
        self.pending[rid] = future
        self.transport.write(wire.request(rid, *items))
        return await future

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(100):  # the writer makes the socket before it starts fronts; a restart may race it
            try:
                await loop.create_unix_connection(lambda: self, self.path)
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise WriterLost(f"no writer at {self.path}")

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        try:
            replies = [wire.read_reply(payload) for payload in self.reader.feed(data)]
        except wire.FrameError:  # a stream that cannot be read: nothing on it can be trusted any more
            self.transport.close()
            return
        for rid, status, body in replies:
            future = self.pending.pop(rid, None)
            if future is not None and not future.done():
                future.set_result((status, body))

    def connection_lost(self, exc):
        for future in self.pending.values():
            if not future.done():
                future.set_exception(WriterLost("the writer closed the connection before answering"))
        self.pending.clear()
        if self.on_lost is not None:
            self.on_lost()


def front_app(commands: str, http: str, on_lost=None):
    """A front's ASGI application: the fast path to the writer's commands, the rest relayed to its HTTP."""
    link = WriterLink(commands, on_lost)
    known: dict[str, Principal] = {}

    async def authenticate(token: str):
        who = known.get(token)
        if who is None:
            try:
                status, body = await link.call("who", token)
            except WriterLost:
                return None  # the application behind answers (503 from the relay)
            if status != 200:
                return None
            role, id, name = json.loads(body)
            who = known[token] = Principal(role, id, name)
        return who

    async def execute(op, token, who, args, payload, key):
        try:
            status, body = await link.call("op", op.name, token, args, payload, key)
        except WriterLost:
            return problem(503, "writer-unavailable", "the writer did not answer; the request may or may not "
                                                      "have been applied: retry with the same Idempotency-Key")
        except Exception as exc:  # noqa: BLE001 - not sent, so not applied: a problem document, never a traceback
            return failure(exc)
        response = Response(body, status_code=status, media_type=media_type(status))
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    fast = OperationFastPath(UnixProxy(http, MAX_BODY_BYTES), authenticate=authenticate, execute=execute,
                             models=request_models(), max_body=MAX_BODY_BYTES)
    pong = JSONResponse(PONG)

    async def front(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == API + PING and scope["method"] == "GET":
            return await pong(scope, receive, send)
        if scope["type"] == "lifespan":  # connect now: the writer counts its fronts, the first request waits less
            await link.connect()
        await fast(scope, receive, send)

    return front


def _run_front(fd: int, commands: str, http: str) -> None:
    import uvicorn

    sock = socket.socket(fileno=fd)

    def writer_gone():
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's own graceful stop

    config = uvicorn.Config(front_app(commands, http, writer_gone), log_level="warning", access_log=False,
                            lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])


# ------------------------------------------------------------------ the writer's side
def serve_with_fronts(app, host: str, port: int, fronts: int, log_level: str = "warning") -> None:
    """Run ``app`` (the writer) behind ``fronts`` front processes on ``host:port`` until SIGINT/SIGTERM."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    listener.set_inheritable(True)
    try:
        with sigterm_exits(), tempfile.TemporaryDirectory(prefix="twin-serve-") as private:  # mode 0700
            stopped_by = asyncio.run(_writer(app, listener, Path(private), fronts, log_level))
            if stopped_by is not None:  # as uvicorn.run does: the signal goes on, here outside the loop
                signal.raise_signal(stopped_by)
    finally:
        listener.close()


async def _writer(app, listener, private: Path, fronts: int, log_level: str):
    """Serve until a signal; the signal that stopped it (or None)."""
    import uvicorn

    from twin.live.writer import start_command_server

    class Writer(uvicorn.Server):
        """On SIGINT/SIGTERM the fronts stop first, finishing what they took while the writer still answers.

        The signal is kept, not re-raised inside the serving task (there it would escape the loop).
        """

        draining = False
        stopped_by = None

        def handle_exit(self, sig, frame):
            self.stopped_by = self.stopped_by or sig
            if self.draining or not processes:  # a second signal, or no fronts: stop now
                self.force_exit = self.should_exit and sig == signal.SIGINT
                self.should_exit = True
                return
            self.draining = True
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._drain()))

        async def _drain(self):
            await asyncio.get_running_loop().run_in_executor(None, _stop, list(processes))
            self.should_exit = True

    loop = asyncio.get_running_loop()
    processes = []
    commands, http = str(private / "commands.sock"), str(private / "http.sock")
    command_server = await start_command_server(app, commands)
    server = Writer(uvicorn.Config(app, uds=http, log_level=log_level, access_log=False, lifespan="on"))
    serving = asyncio.ensure_future(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    try:
        if not serving.done():
            os.chmod(http, 0o600)
            processes += [_start_front(listener, commands, http) for _ in range(fronts)]
            while not serving.done():  # a front that died is started again
                await asyncio.wait([serving], timeout=0.5)
                for i, p in enumerate(processes):
                    if p.poll() is not None and not (server.should_exit or server.draining):
                        processes[i] = _start_front(listener, commands, http)
        await serving
    finally:
        _stop(processes)
        command_server.close()
    return server.stopped_by


def _start_front(listener, commands: str, http: str) -> subprocess.Popen:
    fd = listener.fileno()
    return subprocess.Popen([sys.executable, "-m", "twin.live.front", "--fd", str(fd), "--commands", commands,
                             "--http", http], pass_fds=[fd])


def _stop(processes) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twin.live.front", description="one front process "
                                     "(started by twin serve --fronts N; see twin.live.front)")
    parser.add_argument("--fd", type=int, required=True, help="the inherited listening socket")
    parser.add_argument("--commands", required=True, help="the writer's command socket")
    parser.add_argument("--http", required=True, help="the writer's HTTP socket")
    args = parser.parse_args(argv)
    _run_front(args.fd, args.commands, args.http)
    return 0


if __name__ == "__main__":
    sys.exit(main())
