"""Committed events reach MQTT: an embedded broker (amqtt), the server, a paho subscriber."""
import asyncio
import json
import queue
import threading
import time

from live_helpers import Server, free_port
from paho.mqtt import client as mqtt

from twin.live.publisher import EventPublisher


class Broker:
    """amqtt on its own event loop in a thread, on a free loopback port."""

    def __enter__(self):
        from amqtt.broker import Broker as AmqttBroker

        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                  "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}

        async def start():
            self.broker = AmqttBroker(config)
            await self.broker.start()
            started.set()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert started.wait(30), "the broker did not start"
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.broker.shutdown(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_every_committed_event_is_published_in_order_without_free_text(tmp_path):

    with Broker() as broker:
        got = queue.Queue()
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="watcher")
        sub.on_connect = lambda c, u, f, rc, p: c.subscribe("community/c1/events/#", qos=1)
        sub.on_message = lambda c, u, m: got.put((m.topic, json.loads(m.payload)))
        sub.connect("127.0.0.1", broker.port)
        sub.loop_start()
        time.sleep(0.3)
        with Server(tmp_path / "pub.db") as server:
            publisher = EventPublisher(f"mqtt://127.0.0.1:{broker.port}", "c1", server.services.service_of)
            server.app.state.committer.on_commit.append(publisher.publish)
            li = server.client(server.account("resident", 17))
            office = server.client(server.account("coordinator", 6))
            assert li.post("/repair/tickets", json={"category": "plumbing", "description": "secret leak",
                                                     "building": 1, "unit": 101}).status_code == 201
            assert office.post("/points/residents/17/enroll").status_code == 201
            assert li.post("/repair/tickets/0/rate", json={"rating": 5}).status_code == 409  # refused: no event
            messages = [got.get(timeout=10) for _ in range(2)]
            publisher.close()
        sub.loop_stop()
    assert [(t, m["kind"], m["seq"]) for t, m in messages] == [
        ("community/c1/events/repair", "TicketSubmitted", 1), ("community/c1/events/points", "ResidentEnrolled", 2)]
    assert messages[0][1]["actor"] == 17 and "secret" not in json.dumps(messages)
    assert got.empty()
