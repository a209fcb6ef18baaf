"""A front's way to everything but the fast path: the request, as it came, to the writer's own HTTP server.

Pages, Open311, the ``/api/repairs`` alias, the event feed, accounts, the
OpenAPI document and every request the fast path declines are answered by the
writer process's full application (:func:`twin.live.app.create_app`), which
listens on a private Unix socket.  :class:`UnixProxy` is an ASGI application
that sends each such request there over a fresh HTTP/1.1 connection and
streams the answer back (a long-poll's answer arrives when it is ready).
The client's address goes along as ``X-Forwarded-For`` (any the client sent
is dropped first).
"""
import asyncio

from twin.live.app import too_large
from twin.live.problems import problem

_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"te", b"trailer", b"upgrade",
        b"proxy-connection", b"x-forwarded-for", b"x-forwarded-proto"}
#: Headers the front's own server adds to every answer: the writer's copies are dropped, not doubled.
_OWN = {b"date", b"server"}


class UnixProxy:
    """Forwards HTTP requests to the server on the Unix socket ``path``; bodies over ``max_body`` get a 413."""

    def __init__(self, path: str, max_body: int):
        self.path = path
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] != "http":  # the application has no websockets
            return await send({"type": "websocket.close", "code": 1000})
        body, over = await _body(receive, self.max_body)
        if over:
            return await too_large(self.max_body)(scope, receive, send)
        try:
            reader, writer = await asyncio.open_unix_connection(self.path)
        except OSError:
            return await problem(503, "writer-unavailable", "the server is restarting; retry")(scope, receive, send)
        try:
            writer.write(_head(scope, len(body)) + body)
            await _relay(reader, send)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            # the writer went away mid-answer: if nothing was sent yet, say so; else the client sees a cut
            await _try(send, problem(503, "writer-unavailable",
                                     "the writer did not answer; with an Idempotency-Key a retry is safe"),
                       scope, receive)
        finally:
            writer.close()


def _head(scope, length: int) -> bytes:
    target = scope.get("raw_path") or scope["path"].encode()
    if scope.get("query_string"):
        target += b"?" + scope["query_string"]
    lines = [scope["method"].encode() + b" " + target + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in scope["headers"] if name.lower() not in _HOP]
    client = scope.get("client")
    if client:
        lines.append(b"x-forwarded-for: " + str(client[0]).encode())
    lines += [b"content-length: " + str(length).encode(), b"connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _relay(reader, send) -> None:
    """The response on ``reader`` to the ASGI ``send``: the head, then the body as it arrives."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers, chunked, length = [], False, None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"content-length":
            length = int(value)
        if name not in _OWN and (name not in _HOP or name == b"content-length"):
            headers.append((name, value))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            await send({"type": "http.response.body", "body": chunk[:-2], "more_body": True})
    elif length is not None:
        await send({"type": "http.response.body", "body": await reader.readexactly(length), "more_body": True})
    else:
        while chunk := await reader.read(65536):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _body(receive, limit: int) -> tuple[bytes, bool]:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return b"", True
        if not message.get("more_body", False):
            return b"".join(chunks), False


async def _try(send, response, scope, receive) -> None:
    try:
        await response(scope, receive, send)
    except RuntimeError:  # the response had already started: the cut connection says it
        pass


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
