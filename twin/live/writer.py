"""The writer process's end of the front protocol: commands from front processes into the one group commit.

With ``twin serve --fronts N`` the process that opened the store (and holds
its writer lock) stays the only one that touches the services.  Front
processes (:mod:`twin.live.front`) parse, authenticate and validate HTTP
requests and send the accepted operations here over a Unix socket
(:mod:`twin.live.wire`); each becomes a command for the same
:class:`~twin.live.committer.GroupCommitter` the pages and every other route
use, so commands from all fronts share batches and every guarantee holds as in
one process: applied in arrival order, answered only after the commit, a
refusal changes nothing, a failed commit answers 503 and leaves memory equal
to the store, ``Idempotency-Key`` answers kept in the same transaction.

The writer is the authority on who is calling: a command carries the caller's
token and the writer looks its account up again inside the batch, so a front's
cache of accounts only decides how early a request is refused.
"""
import asyncio
import collections
import json
import os

from twin.live import accounts as acc
from twin.live import wire
from twin.live.app import UNKNOWN_TOKEN, failure, rendered, unauthenticated
from twin.live.batching import OperationCommand
from twin.live.operations import OPERATIONS
from twin.live.problems import problem

_BY_NAME = {op.name: op for op in OPERATIONS}


def operation_command(op, token: str, args: dict, payload: dict, key, clock):
    """The command that runs ``op`` for the account of ``token``: ``(status, content)`` after the commit
    (``(401, None)`` for a token without an account, looked up in the writer, per command)."""
    return OperationCommand(op, args, payload, key, clock, token=token)


def _rendered(status: int, content) -> tuple[int, bytes]:
    if status == 401 and content is None:
        return 401, unauthenticated(UNKNOWN_TOKEN).body
    return status, rendered(status, content)


class _Outcome:
    """Where the committer puts one command's outcome (in its thread): the connection's answer queue."""

    __slots__ = ("connection", "answer", "rid")

    def __init__(self, connection, answer, rid):
        self.connection, self.answer, self.rid = connection, answer, rid

    def set_result(self, value):
        self.connection.finished(self.answer, self.rid, None, value)

    def set_exception(self, error):
        self.connection.finished(self.answer, self.rid, error, None)


def _is_rid(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 32


class _Connection(asyncio.Protocol):
    """One front's connection: frames in, each a command for the committer; replies out as commits finish."""

    def __init__(self, committer, clock, state):
        self.committer, self.clock, self.state = committer, clock, state
        self.reader = wire.FrameReader()
        self.transport = None
        self.loop = asyncio.get_running_loop()
        self._done = collections.deque()  # answers ready, filled by the committer's thread
        self._wake_pending = False

    def connection_made(self, transport):
        self.transport = transport
        self.state.fronts += 1

    def connection_lost(self, exc):
        self.state.fronts -= 1

    def data_received(self, data):
        try:
            frames = self.reader.feed(data)
        except wire.FrameError:  # the stream itself is broken: nothing after this can be read
            self.state.refused_frames += 1
            self.transport.close()
            return
        for payload in frames:
            try:
                items = json.loads(payload)
            except ValueError:
                items = None
            try:
                self._request(items)
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                # a bug in a front, never a client's doing: counted, skipped, answered if it has a request id
                self.state.refused_frames += 1
                rid = items[0] if isinstance(items, list) and items else None
                if _is_rid(rid):
                    self._send(rid, 400, problem(400, "bad-frame", f"{type(exc).__name__}: {exc}").body)

    def _request(self, items):
        if not isinstance(items, list) or len(items) < 3 or not _is_rid(items[0]):
            raise ValueError("a request is a JSON array [request id, kind, ...]")
        rid, kind = items[0], items[1]
        if kind == "who":
            token = str(items[2])
            self.committer.submit(lambda s: acc.principal_for(s, token), _Outcome(self, self._who, rid))
        elif kind == "op":
            op = _BY_NAME[items[2]]
            key = items[6]
            if key is not None and not isinstance(key, str):
                raise ValueError("an idempotency key is text or null")
            command = operation_command(op, str(items[3]), dict(items[4]), dict(items[5]), key, self.clock)
            self.committer.submit(command, _Outcome(self, self._answer, rid))
        else:
            raise ValueError(f"unknown request kind {kind!r}")

    def finished(self, answer, rid, error, value):
        """In the committer's thread: queue the answer; wake the loop once for a whole batch, not per command."""
        self._done.append((answer, rid, error, value))
        if not self._wake_pending and not self.loop.is_closed():
            self._wake_pending = True
            self.loop.call_soon_threadsafe(self._flush)

    def _flush(self):
        self._wake_pending = False
        replies = []
        while self._done:
            answer, rid, error, value = self._done.popleft()
            replies.append(wire.reply(rid, *answer(error, value)))
        if replies and not self.transport.is_closing():
            self.transport.write(b"".join(replies))

    @staticmethod
    def _who(error, who):
        if error is not None or who is None:
            return 404, b"null"
        return 200, json.dumps([who.role, who.id, who.name]).encode()

    @staticmethod
    def _answer(error, value):
        if error is not None:
            response = failure(error)
            return response.status_code, response.body
        return _rendered(*value)

    def _send(self, rid, status, body):
        if not self.transport.is_closing():
            self.transport.write(wire.reply(rid, status, body))


async def start_command_server(app, path: str):
    """Listen for the fronts of ``app`` (the writer's application) on the Unix socket ``path`` (this user's only).

    ``app.state.fronts`` counts the fronts connected (``/api/v1/health`` shows it).
    """
    state = app.state
    server = await asyncio.get_running_loop().create_unix_server(
        lambda: _Connection(state.committer, state.clock, state), path)
    os.chmod(path, 0o600)
    return server
