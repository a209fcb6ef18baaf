"""One MQTT client setup for the bridge, the simulated devices and the shadow: :func:`connect`.

Every client here is paho 2.x speaking MQTT 3.1.1 and behaves the same way:

- **Persistent sessions.** A client with an id keeps its session (``clean_session=False``):
  QoS 1 messages published while it was away wait in the broker and arrive, in order,
  when it comes back with the same id.
- **Reconnect with back-off** (1 s doubling to 30 s), forever, by paho's own loop.
- **Subscribe on every connect.** A broker that restarted without its persistence has
  forgotten the session (``session_present`` false), so subscriptions are renewed in
  ``on_connect`` rather than made once.
- **A bound on unacknowledged publishes** (:class:`Publisher`): paho numbers QoS 1 messages
  with 16-bit ids, and past 65,535 unacknowledged ones it refuses with ``ERR_QUEUE_SIZE``
  and the messages are lost.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from paho.mqtt import client as paho

from live_bridge.brokers import BrokerURL, parse_broker_url

RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
INFLIGHT = 100  # QoS 1 messages on the wire before paho queues the rest (Mosquitto's own limit is the same)
KEEPALIVE_S = 30


class Will(NamedTuple):
    """The message the broker publishes for a client that vanishes (a Sparkplug death, say)."""

    topic: str
    payload: bytes | str | None = None
    qos: int = 1
    retain: bool = False


class Client(paho.Client):
    """A paho client that knows its broker and whether it is connected and subscribed.

    :meth:`wait_ready` lets a caller go on only once the broker has acknowledged the
    subscriptions, so that nothing published after it is missed.
    """

    def __init__(self, url: BrokerURL, client_id: str, clean_session: bool):
        super().__init__(paho.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session,
                         protocol=paho.MQTTv311)
        self.url = url
        self.client_id_text = client_id
        self.subscriptions: list[tuple[str, int]] = []
        self.connections = 0  # successful connections so far; above 1 after a reconnect
        self.last_failure: str | None = None
        self._ready = threading.Event()
        self._pending_subscribe: int | None = None
        self.loop_thread: threading.Thread | None = None

    def wait_ready(self, timeout: float | None = 30.0) -> None:
        """Wait until connected with every subscription acknowledged; TimeoutError naming the broker else."""
        if not self._ready.wait(timeout):
            why = f" (last: {self.last_failure})" if self.last_failure else ""
            raise TimeoutError(f"MQTT broker {self.url} did not accept client {self.client_id_text!r} "
                               f"within {timeout:g} s{why}")

    @property
    def ready(self) -> bool:
        return self._ready.is_set()


def connect(url: BrokerURL | str, client_id: str = "", *, clean_start: bool = False,
            on_message: Callable | None = None, subscriptions: Iterable[str | tuple[str, int]] = (),
            will: Will | Callable[[], Will] | None = None, manual_ack: bool = False) -> Client:
    """A client for ``url``, connecting in the background (see :meth:`Client.wait_ready`).

    ``client_id``: with one, the session persists unless ``clean_start``; without one the
    broker names the client and the session is clean (MQTT 3.1.1 allows nothing else).
    ``on_message(client, userdata, message)`` is paho's callback, run on the client's
    network thread. ``subscriptions``: topic filters, each a string (QoS 1) or
    ``(filter, qos)``, made again on every connect. ``will``: a :class:`Will`, or a function
    returning one, asked before every connection attempt (Sparkplug's death certificate
    carries a ``bdSeq`` that changes with each session). ``manual_ack``: QoS 1 messages are
    acknowledged only by ``client.ack(mid, qos)`` — after the receiver made them durable —
    instead of when ``on_message`` returns.
    """
    if isinstance(url, str):
        url = parse_broker_url(url)
    client = Client(url, client_id, clean_session=clean_start or not client_id)
    client.subscriptions = [(s, 1) if isinstance(s, str) else (s[0], int(s[1])) for s in subscriptions]
    if url.username is not None:
        client.username_pw_set(url.username, url.password)
    if url.tls:
        client.tls_set(ca_certs=url.ca, certfile=url.cert, keyfile=url.key)
    if callable(will):
        client.on_pre_connect = lambda c, _userdata: c.will_set(*will())
    elif will is not None:
        client.will_set(*will)
    client.on_connect = _on_connect
    client.on_subscribe = _on_subscribe
    client.on_disconnect = _on_disconnect
    client.on_connect_fail = _on_connect_fail
    client.enable_logger(_FailureLog(client))
    if on_message is not None:
        client.on_message = on_message
    client.manual_ack_set(manual_ack)
    client.max_inflight_messages_set(INFLIGHT)
    client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
    client.connect_async(url.host, url.port, keepalive=KEEPALIVE_S)
    client.loop_start()
    return client


def _on_connect(client: Client, _userdata, _flags, reason_code, _properties) -> None:
    if reason_code.is_failure:
        client.last_failure = f"refused: {reason_code}"
        return
    client.loop_thread = threading.current_thread()
    client.connections += 1
    client.last_failure = None
    if not client.subscriptions:
        client._ready.set()
        return
    _, client._pending_subscribe = client.subscribe(client.subscriptions)


def _on_subscribe(client: Client, _userdata, mid, reason_codes, _properties) -> None:
    if mid != client._pending_subscribe:
        return
    refused = [f for (f, _), code in zip(client.subscriptions, reason_codes) if code.is_failure]
    if refused:
        client.last_failure = f"subscriptions refused: {', '.join(refused)}"
        return
    client._ready.set()


def _on_disconnect(client: Client, _userdata, _flags, reason_code, _properties) -> None:
    client._ready.clear()
    if reason_code.is_failure and client.last_failure is None:
        client.last_failure = f"disconnected: {reason_code}"


def _on_connect_fail(client: Client, _userdata) -> None:
    # paho calls this inside its ``except OSError``: the error (refused, TLS) is the one in hand
    error = sys.exc_info()[1]
    client.last_failure = f"could not connect: {error}" if error is not None else "could not connect"


class _FailureLog(logging.Logger):
    """Keeps paho's last error as the client's ``last_failure``.

    paho reports a broken socket or TLS session only in its log (``on_disconnect`` gets a
    bare code). A logger, unlike ``on_log``, costs nothing per packet at the levels it
    ignores. Its loop's "not connected" between attempts says nothing new.
    """

    def __init__(self, client: Client):
        super().__init__(f"live_bridge.mqtt.{client.client_id_text}", logging.ERROR)
        self.client = client

    def handle(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if not text.startswith("Client is not connected"):
            self.client.last_failure = text


def close(client: paho.Client) -> None:
    """Disconnect cleanly (no will is published) and stop the network thread."""
    client.disconnect()
    client.loop_stop()


class Publisher:
    """QoS 1 publishing with at most ``bound`` messages unacknowledged at a time.

    :meth:`publish` waits while ``bound`` are outstanding, so a fast producer is held to
    the broker's pace instead of running paho out of message ids; :meth:`flush` waits
    until the broker has acknowledged everything. Works on any paho client, at any time;
    QoS 1/2 messages published on the client directly count against the bound too. A
    callback on the client's network thread cannot wait for acknowledgements that only
    that thread reads, so there a full window raises instead of blocking.
    """

    def __init__(self, client: Client | paho.Client, bound: int = 1000):
        if not 0 < bound < 65535:
            raise ValueError(f"bound must be between 1 and 65534 unacknowledged messages, got {bound}")
        self.client = client
        self.bound = bound
        self.published = 0
        self._acked = threading.Condition()
        earlier = client.on_publish

        def on_publish(c, userdata, mid, reason_code, properties) -> None:
            with self._acked:
                self._acked.notify_all()
            if earlier is not None:
                earlier(c, userdata, mid, reason_code, properties)

        client.on_publish = on_publish

    def unacknowledged(self) -> int:
        """QoS 1/2 messages that paho holds until the broker acknowledges them."""
        # paho keeps each one in this dict and offers no public count
        return len(self.client._out_messages)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> paho.MQTTMessageInfo:
        """Publish, first waiting for room among the unacknowledged (QoS 0 never waits).

        While the broker is away, messages are queued and sent on reconnect (paho's
        ``MQTT_ERR_NO_CONN`` in the returned info means just that), until the bound holds
        the producer back.
        """
        if qos > 0 and self.unacknowledged() >= self.bound:
            if threading.current_thread() is getattr(self.client, "loop_thread", None):
                raise RuntimeError(f"{self.bound} messages are unacknowledged and this is the MQTT network thread, "
                                   "which alone reads acknowledgements: publish from another thread")
            with self._acked:
                while self.unacknowledged() >= self.bound:
                    # woken by each acknowledgement; paho drops the message from its dict just
                    # after our callback, so a wake-up may find it still there: look again soon
                    self._acked.wait(0.05)
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
            raise RuntimeError(f"paho refused a message for {topic!r}: its queue is full (ERR_QUEUE_SIZE)")
        self.published += 1
        return info

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the broker has acknowledged everything published; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._acked:
            while self.unacknowledged():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._acked.wait(0.05 if left is None else min(0.05, left))
        return True
