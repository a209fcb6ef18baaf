"""The front protocol's framing: how a front process and the writer process talk over a Unix socket.

Every message is a frame: a 4-byte big-endian length, then that many bytes.

- A request (front → writer) is a JSON array whose first two items are a
  request id (chosen by the front, unique on its connection) and a kind:
  ``[rid, "op", operation, token, path_args, payload, idempotency_key]`` runs
  an operation of :data:`twin.live.operations.OPERATIONS` for the account the
  token names; ``[rid, "who", token]`` asks which account a token names.
- A reply (writer → front) is the request id (4 bytes), an HTTP status
  (2 bytes), then the answer's body exactly as the client is to get it (a JSON
  document, already rendered): so a front neither parses nor re-renders it.

Many requests may be in flight on one connection; replies come in commit
order, matched by request id.  JSON keeps the requests readable and needs
nothing outside the standard library; they are small (an operation's
arguments), so a binary encoding would save little.
"""
import json
import struct

_LENGTH = struct.Struct(">I")
_REPLY = struct.Struct(">IH")
#: A frame larger than this is a broken peer, not a request (bodies are limited far below it).
MAX_FRAME = 16 * 1024 * 1024


class FrameError(ValueError):
    """A frame that cannot be read: the connection is closed, nothing of it applied."""


def frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


def request(*items) -> bytes:
    """A request frame: ``request(rid, "op", ...)`` (see the module docstring)."""
    # ASCII JSON: text the store cannot encode (a lone surrogate) crosses as an escape, for the writer to refuse
    return frame(json.dumps(items, separators=(",", ":")).encode())


def reply(rid: int, status: int, body: bytes) -> bytes:
    """A reply frame: request id, status and the rendered body."""
    return frame(_REPLY.pack(rid, status) + body)


def read_reply(payload: bytes) -> tuple[int, int, bytes]:
    """``(rid, status, body)`` of a reply frame's payload."""
    if len(payload) < _REPLY.size:
        raise FrameError(f"a reply is at least {_REPLY.size} bytes, got {len(payload)}")
    rid, status = _REPLY.unpack_from(payload)
    return rid, status, payload[_REPLY.size:]


class FrameReader:
    """Splits a byte stream into frame payloads (feed it what arrives; it yields the whole frames)."""

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out = []
        while len(self._buf) >= _LENGTH.size:
            (n,) = _LENGTH.unpack_from(self._buf)
            if n > MAX_FRAME:
                raise FrameError(f"a frame of {n} bytes is over the limit of {MAX_FRAME}")
            if len(self._buf) < _LENGTH.size + n:
                break
            out.append(bytes(self._buf[_LENGTH.size:_LENGTH.size + n]))
            del self._buf[:_LENGTH.size + n]
        return out
