"""Production's event feed over HTTP, for a server that publishes no MQTT.

``twin serve`` keeps its log behind ``GET /api/v1/events?after=SEQ&wait=S`` (a
long-poll, staff only).  :class:`ServerFeed` follows it and hands each event
to the bridge as if it had come on ``community/{cid}/events/feed``: the same
JSON object the MQTT feed carries, so the ingest validates, orders and
deduplicates both the same way (an event seen on both counts as a duplicate).
The bridge and the server still talk only over the wire.
"""
from __future__ import annotations

import json
import threading
import time

import httpx

WAIT_S = 10.0  # how long the server holds a poll open when nothing is new
RETRY_S = (1.0, 30.0)  # back-off between failed polls, from the first to the longest


class FeedError(ValueError):
    """The server refused the feed (wrong token, not staff); the message says which."""


class ServerFeed:
    """Follows ``{server}/api/v1/events`` with ``token`` (a staff account's) and calls ``put(topic, payload)``."""

    def __init__(self, server: str, token: str, put, community: str = "c1", after: int = 0):
        self.url = server.rstrip("/") + "/api/v1/events"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.put, self.topic = put, f"community/{community}/events/feed"
        self.after = after
        self.polls = self.failures = 0
        self.last_failure: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="server-feed", daemon=True)

    def check(self) -> None:
        """One poll now, so a wrong URL or token is an error at start, not a silent retry loop."""
        try:
            self._poll(wait=0.0)
        except httpx.HTTPError as e:
            raise FeedError(f"{self.url}: cannot read production's event feed: {e}") from None

    def start(self) -> ServerFeed:
        self._thread.start()
        return self

    def _run(self) -> None:
        delay = RETRY_S[0]
        while not self._stop.is_set():
            try:
                self._poll(WAIT_S)
                delay = RETRY_S[0]
            except (httpx.HTTPError, ValueError) as e:  # the server away or answering oddly: try again later
                self.failures += 1
                self.last_failure = str(e)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_S[1])

    def _poll(self, wait: float) -> None:
        answer = httpx.get(self.url, params={"after": self.after, "wait": wait}, headers=self.headers,
                           timeout=wait + 10.0)
        if answer.status_code in (401, 403):
            raise FeedError(f"{self.url}: the server refused the feed ({answer.status_code}): "
                            f"{answer.json().get('detail', answer.text)[:200]}; it needs a staff account's token")
        answer.raise_for_status()
        body = answer.json()
        for event in body["events"]:
            self.put(self.topic, json.dumps(event).encode())
        self.after = int(body["next"])
        self.polls += 1

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=WAIT_S + 11.0)


def wait_for(feed: ServerFeed, events: int, timeout: float = 30.0) -> bool:
    """Wait until the feed has read past ``events`` events (tests and demos)."""
    deadline = time.monotonic() + timeout
    while feed.after < events and time.monotonic() < deadline:
        time.sleep(0.05)
    return feed.after >= events
