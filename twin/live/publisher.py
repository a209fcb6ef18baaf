"""Every committed event, published on MQTT for the shadow twin and other consumers.

Topic ``community/{cid}/events/{service}`` (``points``, ``timebank``,
``repair``, ``voting``; ``ledger`` and ``engine`` for the rest), a JSON
object per event: ``seq`` (its place in the log, from 1), ``kind`` by name
and the numeric columns.  QoS 1, published after the commit, in log order;
events carry ids only, never free text.  A broker that is down delays
publication (paho queues and reconnects) but never a command.
"""
import json
from urllib.parse import urlparse

from paho.mqtt import client as mqtt

from twin.services.events import EventKind, as_json


def service_of(kind: int, by_kind: dict) -> str:
    """The service a kind belongs to (the topic's last level)."""
    name = by_kind.get(EventKind(kind))
    if name is not None:
        return name
    return "ledger" if kind < 10 else "engine"


class EventPublisher:
    """Publishes committed events to the broker at ``url`` (``mqtt://host:port``)."""

    def __init__(self, url: str, community: str, by_kind: dict, client_id: str | None = None):
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
            raise ValueError(f"a broker URL looks like mqtt://127.0.0.1:1883, got {url!r}")
        self.prefix = f"community/{community}/events/"
        self.by_kind = by_kind
        self.published = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"twin-serve-{community}")
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(1, 30)
        self.client.connect_async(parsed.hostname, parsed.port or 1883)
        self.client.loop_start()

    def publish(self, events, first_seq: int) -> None:
        """Publish ``events``, the first of which is the log's event number ``first_seq``."""
        for i, row in enumerate(events):
            topic = self.prefix + service_of(int(row["kind"]), self.by_kind)
            self.client.publish(topic, json.dumps(as_json(first_seq + i, row)), qos=1)
        self.published += len(events)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
