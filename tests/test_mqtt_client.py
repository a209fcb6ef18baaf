"""The bridge's MQTT client: reconnects and re-subscribes, keeps its session, bounds its publishes.

Real Mosquitto on a free loopback port (the ``mosquitto`` fixture), killed and restarted
under the clients; real client processes killed outright for the last will.
"""
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
from paho.mqtt import client as paho

from live_bridge.brokers import free_port
from live_bridge.mqtt import Publisher, Will, close, connect


def _until(condition, what: str, limit_s: float = 60):
    """Wait for ``condition``; the limit only stops a test that would hang, it never times anything."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.01)


def _subscriber(url, client_id, topics, **options):
    got = queue.Queue()
    client = connect(url, client_id, subscriptions=topics, on_message=lambda c, u, m: got.put(m.payload), **options)
    client.wait_ready()
    return client, got


def test_a_subscriber_survives_a_broker_kill_and_restart(mosquitto):
    """Killed, the broker forgets every session; the client reconnects and subscribes again."""
    wills = []
    sub, got = _subscriber(mosquitto.url, "survivor", ["live/#"],
                           will=lambda: wills.append(1) or Will("wills/survivor", str(len(wills))))
    # the trap this avoids: a client that subscribed once, after connecting
    once_got = queue.Queue()
    once = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="subscribed-once", clean_session=False)
    once.on_message = lambda c, u, m: once_got.put(m.payload)
    acknowledged = set()
    once.on_subscribe = lambda c, u, mid, codes, props: acknowledged.add(mid)
    once.reconnect_delay_set(1, 30)
    once.connect("127.0.0.1", mosquitto.port)
    once.loop_start()
    _, mid = once.subscribe("live/#", qos=1)
    pub = connect(mosquitto.url, "live-pub", clean_start=True)
    pub.wait_ready()
    # publishing before the broker's SUBACK would race the subscription itself
    _until(lambda: once.is_connected() and mid in acknowledged, "the subscribe-once client's SUBACK")
    pub.publish("live/x", b"before", qos=1)
    assert got.get(timeout=30) == b"before" and once_got.get(timeout=30) == b"before"

    mosquitto.kill()
    _until(lambda: not sub.ready and not pub.ready, "the clients to notice")
    mosquitto.start()
    sub.wait_ready(timeout=120)
    pub.wait_ready(timeout=120)
    _until(lambda: once.is_connected(), "the subscribe-once client to reconnect", 120)
    pub.publish("live/x", b"after", qos=1).wait_for_publish(30)
    assert got.get(timeout=30) == b"after"
    assert sub.connections == 2 and len(wills) >= 2  # a fresh will for each attempt to connect

    # the broker delivered "after" to every subscription it knew; the client that did not
    # subscribe again has none
    marker = connect(mosquitto.url, "marker", clean_start=True, subscriptions=["live/#"],
                     on_message=lambda c, u, m: got.put(m.payload))
    marker.wait_ready()
    pub.publish("live/x", b"last", qos=1).wait_for_publish(30)
    assert got.get(timeout=30) == b"last" and got.get(timeout=30) == b"last"
    assert once_got.empty()
    for client in (marker, pub, sub, once):
        close(client)


def test_publishes_while_the_broker_is_away_are_held_at_the_bound_and_all_arrive(mosquitto):
    """The publisher waits at its bound until the broker is back; nothing is lost, nothing reordered."""
    n, bound = 300, 40
    sub, got = _subscriber(mosquitto.url, "patient", ["held/#"])
    close(sub)  # its session keeps the subscription through the restart
    pub = connect(mosquitto.url, "held-pub")
    pub.wait_ready()
    publisher = Publisher(pub, bound=bound)
    mosquitto.stop()
    _until(lambda: not pub.ready, "the publisher to notice")

    producer = threading.Thread(target=lambda: [publisher.publish("held/x", str(i)) for i in range(n)], daemon=True)
    producer.start()
    _until(lambda: publisher.published >= bound, "the bound to fill")
    # publish() checks for room before it sends, so the producer can get no further
    assert publisher.published == bound and publisher.unacknowledged() == bound and producer.is_alive()

    mosquitto.start()
    producer.join(timeout=120)
    assert not producer.is_alive() and publisher.published == n
    assert publisher.flush(timeout=120) and publisher.unacknowledged() == 0
    sub, got = _subscriber(mosquitto.url, "patient", [])
    assert [got.get(timeout=30) for _ in range(n)] == [str(i).encode() for i in range(n)]
    close(sub)
    close(pub)


@pytest.mark.parametrize("bounded", [True, False], ids=["publisher", "plain-paho"])
def test_the_bound_holds_in_a_burst(mosquitto, bounded):
    """5,000 QoS 1 messages as fast as they go: never more than the bound unacknowledged.

    The plain client's run shows the measure can fail: it lets thousands pile up, which
    past 65,535 costs messages (paho's 16-bit ids, ERR_QUEUE_SIZE).
    """
    n, bound = 5000, 50
    sub, got = _subscriber(mosquitto.url, "burst-sub", ["burst/#"], clean_start=True)
    pub = connect(mosquitto.url, "burst-pub", clean_start=True)
    pub.wait_ready()
    publisher = Publisher(pub, bound=bound)
    send = publisher.publish if bounded else pub.publish
    peak = 0
    for i in range(n):
        info = send("burst/x", str(i), qos=1)
        assert info.rc in (paho.MQTT_ERR_SUCCESS,)
        peak = max(peak, publisher.unacknowledged())
    assert publisher.flush(timeout=120)
    assert [got.get(timeout=30) for _ in range(n)] == [str(i).encode() for i in range(n)]
    close(pub)
    close(sub)
    if bounded:
        assert peak <= bound
    else:
        assert peak > 10 * bound


def test_the_network_thread_is_refused_instead_of_deadlocked(mosquitto):
    """Publishing from a message callback at a full bound would wait for acks only that thread reads."""
    outcome = queue.Queue()

    def on_message(client, userdata, message):
        try:
            publisher.publish("echo/x", b"1")  # fills the bound: its ack cannot be read until we return
            publisher.publish("echo/x", b"2")
        except RuntimeError as error:
            outcome.put(str(error))
        else:
            outcome.put("published both")

    client = connect(mosquitto.url, "echo", clean_start=True, subscriptions=["in/#"], on_message=on_message)
    publisher = Publisher(client, bound=1)
    client.wait_ready()
    client.publish("in/x", b"go", qos=0)
    assert "network thread" in outcome.get(timeout=30)
    assert publisher.flush(timeout=60)
    close(client)


def test_the_last_will_arrives_when_a_client_process_is_killed(mosquitto):
    sub, got = _subscriber(mosquitto.url, "mourner", ["wills/#"], clean_start=True)
    edge = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from live_bridge.mqtt import Will, connect\n"
        f"c = connect({mosquitto.url!r}, 'edge-7', will=Will('wills/edge-7', b'gone', qos=1))\n"
        "c.wait_ready()\n"
        "print('up', flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert edge.stdout.readline().strip() == "up"
        assert got.empty()
    finally:
        edge.send_signal(signal.SIGKILL)
        edge.wait()
    assert got.get(timeout=30) == b"gone"
    close(sub)


def test_a_clean_close_sends_no_will(mosquitto):
    sub, got = _subscriber(mosquitto.url, "mourner", ["wills/#"], clean_start=True)
    client = connect(mosquitto.url, "tidy", will=Will("wills/tidy", b"gone"))
    client.wait_ready()
    close(client)
    marker = connect(mosquitto.url, "marker", clean_start=True)
    marker.wait_ready()
    marker.publish("wills/marker", b"marker", qos=1).wait_for_publish(30)
    assert got.get(timeout=30) == b"marker"
    close(marker)
    close(sub)


def test_a_broker_that_is_not_there_is_named_with_the_reason():
    port = free_port()
    client = connect(f"mqtt://127.0.0.1:{port}", "lonely")
    try:
        _until(lambda: client.last_failure is not None, "the first attempt to fail")
        with pytest.raises(TimeoutError, match=rf"mqtt://127.0.0.1:{port} did not accept client 'lonely'.*refused"):
            client.wait_ready(timeout=0.1)
    finally:
        close(client)


def test_connect_takes_only_broker_urls():
    with pytest.raises(ValueError, match="broker URL 'http://127.0.0.1:1883' has scheme 'http'"):
        connect("http://127.0.0.1:1883", "x")
    with pytest.raises(ValueError, match="bound must be between 1 and 65534"):
        Publisher(paho.Client(paho.CallbackAPIVersion.VERSION2), bound=70000)
