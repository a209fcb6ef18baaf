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
import queue
import threading
import time
from collections import Counter

from live_bridge import mqtt
from live_bridge.ingest import dead_letter_message

log = logging.getLogger(__name__)


class Clock:
    """Community minutes now: ``(wall - epoch) * speed``; a speed of 1 is live."""

    def __init__(self, epoch_ms: int, speed: float = 1.0, wall=time.time):
        if not speed > 0:
            raise ValueError(f"speed {speed!r}: a positive multiple of real time")
        self.epoch_ms, self.speed, self.wall = int(epoch_ms), float(speed), wall

    def __call__(self) -> float:
        return (self.wall() * 1000.0 - self.epoch_ms) * self.speed / 60_000.0


def subscriptions(community: str, registry) -> list[str]:
    """What the bridge listens to: the Sparkplug group, production's events, the JSON devices."""
    return [f"spBv1.0/{community}/#", f"community/{community}/events/#", *sorted(registry.json)]


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
        shadow.ingest.dead_letter = self._dead_letter
        self.client = mqtt.connect(url, client_id or f"twin-bridge-{community}", manual_ack=True,
                                   on_message=lambda _c, _u, m: self._inbox.put((m.topic, m.payload, m.mid, m.qos)),
                                   subscriptions=subscriptions(community, shadow.registry))
        self.publisher = mqtt.Publisher(self.client)
        self._worker = threading.Thread(target=self._run, name="bridge", daemon=True)
        self._worker.start()

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.client.wait_ready(timeout)

    # ----------------------------------------------------------------- loop
    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            try:
                if batch:
                    self._process(batch)
                if self._inbox.empty():  # caught up with the broker: days that ended may close
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
