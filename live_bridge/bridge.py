"""The bridge: live MQTT messages into a shadow, durably, without ever stopping for bad input.

:class:`Bridge` subscribes (persistent session, QoS 1) to the community's
Sparkplug group, production's event feed and the JSON devices' topics.
Messages are taken in batches on one worker thread:

1. the batch is committed to the recording (when there is one),
2. only then is each message acknowledged to the broker (manual QoS 1 acks),
   so a message the broker counts as delivered is on disk, and one that was
   not is delivered again after a crash or restart,
3. each message goes to the shadow (the ingest counts and dead-letters the
   bad ones), the dead letters are published on
   ``community/{cid}/deadletter/{reason}``, and rebirths the Sparkplug session
   asks for are sent to their edge nodes;
4. once nothing more is waiting (after a restart, the broker's backlog is
   read first), days that ended are closed, and the recording notes where.

Time is the community's clock (:class:`Clock`): minutes since the epoch, at
real time times ``speed`` — the same convention ``twin devices`` paces by.
"""
from __future__ import annotations

import logging
import math
import queue
import threading
import time
import uuid
from collections import Counter

from live_bridge import mqtt
from live_bridge.ingest import dead_letter_message

log = logging.getLogger(__name__)
DETECT_EVERY_S = 0.25  # how often the detectors look at the open day as readings come in


class Clock:
    """Community minutes now: ``(wall - epoch) * speed``; a speed of 1 is live."""

    def __init__(self, epoch_ms: int, speed: float = 1.0, wall=time.time):
        if not speed > 0:
            raise ValueError(f"speed {speed!r}: a positive multiple of real time")
        self.epoch_ms, self.speed, self.wall = int(epoch_ms), float(speed), wall

    def __call__(self) -> float:
        return (self.wall() * 1000.0 - self.epoch_ms) * self.speed / 60_000.0


def subscriptions(community: str, registry) -> list[str]:
    """What the bridge listens to: the Sparkplug group, production's events, the JSON devices.

    JSON devices are subscribed by their topics' first level (``zigbee2mqtt/#``): one filter for
    thousands of devices, and a device added to the network but not to the registry is counted
    as unknown instead of going unseen.
    """
    bases = sorted({topic.split("/", 1)[0] for topic in registry.json})
    return [f"spBv1.0/{community}/#", f"community/{community}/events/#", *(f"{b}/#" for b in bases)]


class Bridge:
    """Feeds ``shadow`` from the broker at ``url``; see the module's docstring for the order of things."""

    def __init__(self, url, shadow, *, clock, recorder=None, community: str = "c1",
                 client_id: str | None = None, batch: int = 2000, tick_s: float = 0.05):
        self.shadow, self.clock, self.recorder, self.community = shadow, clock, recorder, community
        self.batch, self.tick_s = batch, tick_s
        self.counts: Counter = Counter()  # messages, batches, acked, dead_letters, rebirths, errors
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._letters: list[tuple[str, bytes]] = []
        self._stop = threading.Event()
        self._detected = -math.inf
        shadow.ingest.dead_letter = self._dead_letter
        self.client_id = client_id or f"twin-bridge-{community}"
        self.sync_topic = f"community/{community}/bridge/{self.client_id}/sync"
        self._synced_connection = 0  # the connection whose backlog has been read (see _sync)
        self._sync_sent: tuple[int, bytes] | None = None
        self.client = mqtt.connect(url, self.client_id, manual_ack=True,
                                   on_message=lambda _c, _u, m: self._inbox.put((m.topic, m.payload, m.mid, m.qos)),
                                   subscriptions=[*subscriptions(community, shadow.registry), self.sync_topic])
        self.publisher = mqtt.Publisher(self.client)
        self._worker = threading.Thread(target=self._run, name="bridge", daemon=True)
        self._worker.start()

    def inject(self, topic: str, payload: bytes) -> None:
        """A message from elsewhere than the broker (production's HTTP feed): recorded and ingested alike."""
        self._inbox.put((topic, payload, None, 0))

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until subscribed and the broker's backlog for this bridge (if any) has been read."""
        deadline = time.monotonic() + timeout
        self.client.wait_ready(timeout)
        while not self.caught_up and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.caught_up:
            raise TimeoutError(f"the bridge did not catch up with {self.client.url} within {timeout:g} s")

    @property
    def caught_up(self) -> bool:
        """Whether everything the broker held for this bridge when it (re)connected has been read.

        After every connection the bridge publishes a marker to a topic only it listens to; the
        broker queues it behind what it kept for the bridge's persistent session, so the marker's
        arrival means the backlog is in.  Days close only once caught up: a restarted bridge must
        not close a day before reading the readings that waited for it.
        """
        return self.client.ready and self._synced_connection == self.client.connections

    def _sync(self) -> None:
        """After a (re)connection, send the marker (once per connection)."""
        connection = self.client.connections
        if not self.client.ready or connection == self._synced_connection:
            return
        if self._sync_sent is None or self._sync_sent[0] != connection:
            nonce = f"{connection}-{uuid.uuid4().hex}".encode()
            self._sync_sent = (connection, nonce)
            self.client.publish(self.sync_topic, nonce, qos=1)

    # ----------------------------------------------------------------- loop
    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            try:
                self._sync()
                if batch:
                    self._process(batch)
                if self.caught_up and self._inbox.empty():  # nothing waiting: days that ended may close
                    now = self.clock()
                    if self.shadow.advance(now) and self.recorder is not None:
                        self.recorder.record_advance(now)
            except Exception:  # a bug, not bad input: keep the bridge alive and say so
                self.counts["errors"] += 1
                log.exception("bridge: a batch failed; its messages stay unacknowledged and come again")

    def _take(self) -> list:
        try:
            batch = [self._inbox.get(timeout=self.tick_s)]
        except queue.Empty:
            return []
        while len(batch) < self.batch:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _process(self, batch) -> None:
        mine = [m for m in batch if m[0] == self.sync_topic]
        if mine:
            batch = [m for m in batch if m[0] != self.sync_topic]
            for _, payload, mid, qos in mine:
                if self._sync_sent is not None and payload == self._sync_sent[1]:
                    self._synced_connection = self._sync_sent[0]
                self.client.ack(mid, qos)
            if not batch:
                return
        arrival = self.clock()
        if self.recorder is not None:
            self.recorder.record([(topic, payload) for topic, payload, _, _ in batch], arrival)
        for _, _, mid, qos in batch:
            if qos > 0:
                self.client.ack(mid, qos)
        self.counts["acked"] += len(batch)
        for topic, payload, _, _ in batch:
            self.counts["messages"] += 1
            self.shadow.handle(topic, payload, arrival)
        self.counts["batches"] += 1
        if time.monotonic() - self._detected >= DETECT_EVERY_S:  # at most a few times a second
            self._detected = time.monotonic()
            self.counts["live_alerts"] += len(self.shadow.detect_now(arrival))
        letters, self._letters = self._letters, []
        for topic, body in letters:
            self.publisher.publish(topic, body, qos=1)
        for msg in self.shadow.ingest.sparkplug.take_rebirths():
            self.publisher.publish(msg.topic, msg.payload, qos=msg.qos)
            self.counts["rebirths"] += 1

    def _dead_letter(self, reason, topic, payload, detail) -> None:
        self.counts["dead_letters"] += 1
        self._letters.append((f"community/{self.community}/deadletter/{reason}",
                              dead_letter_message(reason, topic, payload, detail)))

    def close(self) -> None:
        """Stop taking messages and disconnect; what was not acknowledged is the broker's to redeliver."""
        self._stop.set()
        self._worker.join(timeout=10)
        self.publisher.flush(10.0)
        mqtt.close(self.client)
        if self.recorder is not None:
            self.recorder.close()
