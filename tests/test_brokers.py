"""Brokers: URLs good and bad, Mosquitto started, stopped, killed and restarted, TLS, the embedded one.

Everything runs against real brokers on free loopback ports: Debian's Mosquitto and
amqtt in its own process.
"""
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from live_bridge.brokers import (
    BrokerURL,
    EmbeddedBroker,
    Mosquitto,
    TLSFiles,
    broker,
    free_port,
    mosquitto_missing,
    parse_broker_url,
)
from live_bridge.mqtt import close, connect

# ---------------------------------------------------------------------------------------
# URLs


@pytest.mark.parametrize("url, expected", [
    ("mqtt://127.0.0.1", BrokerURL("mqtt", "127.0.0.1", 1883)),
    ("mqtt://broker.example:1884", BrokerURL("mqtt", "broker.example", 1884)),
    ("MQTT://Broker.Example", BrokerURL("mqtt", "broker.example", 1883)),
    ("mqtts://broker.example", BrokerURL("mqtts", "broker.example", 8883)),
    ("mqtt://ops:s3cret@10.0.0.5:2000/", BrokerURL("mqtt", "10.0.0.5", 2000, "ops", "s3cret")),
    ("mqtt://ops@host", BrokerURL("mqtt", "host", 1883, "ops")),
    ("mqtt://user%40site:p%3Ass@host", BrokerURL("mqtt", "host", 1883, "user@site", "p:ss")),
    ("mqtt://[::1]:1999", BrokerURL("mqtt", "::1", 1999)),
])
def test_broker_urls_are_read_with_their_default_ports(url, expected):
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize("url, why", [
    ("http://127.0.0.1:1883", "scheme 'http'"),
    ("127.0.0.1:1883", "scheme"),
    ("tcp://127.0.0.1", "scheme 'tcp'"),
    ("mqtt://", "names no host"),
    ("mqtt://:1883", "names no host"),
    ("mqtt://host:99999", "Port out of range"),
    ("mqtt://host:0", "port 0"),
    ("mqtt://host:port", "not valid"),
    ("mqtt://host/topic", "a path"),
    ("mqtt://host?x=1", "query"),
])
def test_a_bad_url_is_named_with_the_allowed_forms(url, why):
    with pytest.raises(ValueError) as error:
        parse_broker_url(url)
    message = str(error.value)
    assert f"broker URL {url!r}" in message and why in message
    assert "mqtt://[user:pass@]host[:port]" in message and "mqtts://" in message


def test_passwords_never_show():
    url = parse_broker_url("mqtt://ops:hunter2@host:1884")
    assert url.password == "hunter2"
    assert "hunter2" not in repr(url) and "hunter2" not in str(url)
    assert str(url) == "mqtt://ops:***@host:1884"
    with pytest.raises(ValueError) as error:
        parse_broker_url("mqtt://ops:hunter2@host/extra")
    assert "hunter2" not in str(error.value) and "ops:***@host" in str(error.value)


def test_tls_files_need_mqtts_and_must_exist(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("-")
    assert parse_broker_url("mqtts://host", ca=ca) == BrokerURL("mqtts", "host", 8883, ca=str(ca))
    assert parse_broker_url("mqtts://host", ca=ca).tls and not parse_broker_url("mqtt://host").tls
    with pytest.raises(ValueError, match="--ca is for a TLS broker.*not mqtts://"):
        parse_broker_url("mqtt://host", ca=ca)
    with pytest.raises(ValueError, match="--key needs --cert"):
        parse_broker_url("mqtts://host", key=ca)
    with pytest.raises(ValueError, match=r"--cert .*nowhere\.crt: no such file"):
        parse_broker_url("mqtts://host", cert=tmp_path / "nowhere.crt")


def test_a_command_gets_its_url_or_an_embedded_broker():
    with broker("mqtt://host:1999") as url:
        assert url == BrokerURL("mqtt", "host", 1999)
    with pytest.raises(ValueError, match="need --broker mqtts://"):
        with broker(None, ca="ca.crt"):
            pass
    with broker(None) as url:
        assert url.host == "127.0.0.1" and _listeners(url.port)
        assert _round_trip(url)
    assert not _listeners(url.port)  # gone with the command


# ---------------------------------------------------------------------------------------
# Mosquitto

def _round_trip(url, **options) -> bool:
    """One QoS 1 message through the broker at ``url`` from one client to another."""
    got = queue.Queue()
    sub = connect(url, "rt-sub", clean_start=True, subscriptions=["rt/#"],
                  on_message=lambda c, u, m: got.put(m.payload), **options)
    pub = connect(url, "rt-pub", clean_start=True, **options)
    try:
        sub.wait_ready()
        pub.wait_ready()
        pub.publish("rt/x", b"hello", qos=1)
        return got.get(timeout=30) == b"hello"
    finally:
        close(pub)
        close(sub)


def _listeners(port: int) -> set:
    """The addresses something listens on at ``port``, this machine over."""
    return {c.laddr.ip for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN
            and c.laddr.port == port}


def test_mosquitto_listens_on_loopback_only_and_carries_messages(mosquitto):
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    assert _listeners(mosquitto.port) == {"127.0.0.1"}
    assert _round_trip(mosquitto.url)


def test_mosquitto_stop_and_start_keep_a_persistent_sessions_queued_messages(mosquitto):
    """Published while the subscriber was away and the broker restarted: all arrive, in order."""
    got = queue.Queue()
    sub = connect(mosquitto.url, "keeper", subscriptions=["keep/#"], on_message=lambda c, u, m: got.put(m.payload))
    sub.wait_ready()
    close(sub)  # a clean disconnect: the session stays, with its subscription

    pub = connect(mosquitto.url, "keep-pub", clean_start=True)
    pub.wait_ready()
    infos = [pub.publish("keep/x", str(i), qos=1) for i in range(500)]
    for info in infos:
        info.wait_for_publish(30)  # acknowledged: the broker holds them for "keeper"
    close(pub)

    port = mosquitto.port
    mosquitto.stop()
    mosquitto.start()
    assert mosquitto.port == port

    sub = connect(mosquitto.url, "keeper", on_message=lambda c, u, m: got.put(m.payload))  # no new subscription
    sub.wait_ready()
    received = [got.get(timeout=30) for _ in range(500)]
    close(sub)
    assert received == [str(i).encode() for i in range(500)]
    assert got.empty()


def test_a_clean_session_gets_nothing_that_was_queued(mosquitto):
    """The test above can fail: the same steps with a clean session lose the messages."""
    got = queue.Queue()
    sub = connect(mosquitto.url, "forgetful", subscriptions=["keep/#"], on_message=lambda c, u, m: got.put(m.payload))
    sub.wait_ready()
    close(sub)
    pub = connect(mosquitto.url, "keep-pub", clean_start=True)
    pub.wait_ready()
    pub.publish("keep/x", b"lost", qos=1).wait_for_publish(30)
    close(pub)
    marker = connect(mosquitto.url, "forgetful", clean_start=True, subscriptions=["keep/#"],
                     on_message=lambda c, u, m: got.put(m.payload))
    marker.wait_ready()
    sender = connect(mosquitto.url, "after", clean_start=True)
    sender.wait_ready()
    sender.publish("keep/x", b"after", qos=1).wait_for_publish(30)
    assert got.get(timeout=30) == b"after"  # the first message to come is the one sent after
    close(sender)
    close(marker)


def test_mosquitto_killed_and_restarted_on_the_same_port(mosquitto):
    port = mosquitto.port
    mosquitto.kill()
    assert not mosquitto.running and not _listeners(port)
    mosquitto.start()
    assert mosquitto.port == port and _round_trip(mosquitto.url)


def test_mosquitto_that_cannot_start_says_why(tmp_path, require_tool):
    require_tool("mosquitto", mosquitto_missing())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))  # bound, not listening: only the broker's own bind finds out
        with pytest.raises(RuntimeError, match=rf"could not listen on 127.0.0.1:{taken.getsockname()[1]}.*in use"):
            Mosquitto(port=taken.getsockname()[1]).start()
    missing = TLSFiles(tmp_path / "no-ca.crt", tmp_path / "no.crt", tmp_path / "no.key")
    with pytest.raises(RuntimeError, match=r"(?s)mosquitto exited with status \d+ .*its output:\n.*Error"):
        Mosquitto(tls=missing).start()


# ---------------------------------------------------------------------------------------
# TLS (mqtts://), with certificates made by the openssl command

def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def certificates(tmp_path, require_tool):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    require_tool("openssl", None if shutil.which("openssl") else "the openssl command is not installed")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=Test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             cwd=tmp_path)
    (tmp_path / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                         "authorityKeyIdentifier=keyid\nextendedKeyUsage=serverAuth\n")
    (tmp_path / "client.ext").write_text("basicConstraints=CA:FALSE\nauthorityKeyIdentifier=keyid\n"
                                         "extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=tmp_path)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=tmp_path)
    return tmp_path


def test_mqtts_with_a_ca_and_a_client_certificate(certificates, require_tool):
    require_tool("mosquitto", mosquitto_missing())
    c = certificates
    tls = TLSFiles(c / "ca.crt", c / "server.crt", c / "server.key", require_certificate=True)
    with Mosquitto(tls=tls) as mosquitto:
        assert mosquitto.url.startswith("mqtts://127.0.0.1:")
        url = parse_broker_url(mosquitto.url, ca=c / "ca.crt", cert=c / "client.crt", key=c / "client.key")
        assert _round_trip(url)

        # the same broker refuses a client that shows no certificate, and a client that does
        # not trust the broker's CA refuses the broker
        no_certificate = parse_broker_url(mosquitto.url, ca=c / "ca.crt")
        wrong_ca = parse_broker_url(mosquitto.url, ca=c / "server.crt", cert=c / "client.crt", key=c / "client.key")
        for refused, why in ((no_certificate, "certificate required"), (wrong_ca, "certificate verify failed")):
            client = connect(refused, "refused", clean_start=True)
            try:
                failure = _first_failure(client)
                assert why in failure
                with pytest.raises(TimeoutError, match=f"{mosquitto.url} did not accept client 'refused'.*{why}"):
                    client.wait_ready(timeout=0.1)
            finally:
                close(client)


def _first_failure(client) -> str:
    """Wait for the client's first failure to connect and say what it was."""
    deadline = time.monotonic() + 60
    while client.last_failure is None and not client.ready:
        assert time.monotonic() < deadline, "the client neither connected nor failed"
        time.sleep(0.02)
    assert not client.ready
    return client.last_failure


def test_plain_mqtt_does_not_reach_a_tls_listener(certificates, require_tool):
    require_tool("mosquitto", mosquitto_missing())
    c = certificates
    with Mosquitto(tls=TLSFiles(c / "ca.crt", c / "server.crt", c / "server.key")) as mosquitto:
        assert _round_trip(parse_broker_url(mosquitto.url, ca=c / "ca.crt"))  # no client certificate needed here
        client = connect(f"mqtt://127.0.0.1:{mosquitto.port}", "plain", clean_start=True)
        try:
            assert _first_failure(client)
        finally:
            close(client)


# ---------------------------------------------------------------------------------------
# the embedded broker

def test_embedded_broker_carries_messages_and_listens_on_loopback_only():
    with EmbeddedBroker() as embedded:
        assert embedded.process.pid != os.getpid()  # its own process
        assert _listeners(embedded.port) == {"127.0.0.1"}
        assert _round_trip(embedded.url)
        port = embedded.port
        embedded.stop()
        assert not embedded.running and not _listeners(port)
        embedded.start()
        assert embedded.port == port and _round_trip(embedded.url)


def test_embedded_broker_ends_with_its_owner(tmp_path):
    """An owner killed outright leaves no broker behind holding the port."""
    owner = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from live_bridge.brokers import EmbeddedBroker\n"
        "b = EmbeddedBroker().start()\n"
        "print(b.process.pid, b.port, b.workdir, flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    pid, port, workdir = owner.stdout.readline().split()
    pid, port = int(pid), int(port)
    assert _listeners(port) == {"127.0.0.1"}
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    child = psutil.Process(pid)
    try:
        child.wait(timeout=60)
    except psutil.TimeoutExpired:
        child.kill()
        pytest.fail("the embedded broker outlived its owner")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # its owner could not
    assert not _listeners(port)


@pytest.mark.parametrize("listening", [False, True], ids=["bound", "listening"])
def test_embedded_broker_that_cannot_start_says_why(listening):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        if listening:
            taken.listen()  # else only the broker's own bind finds out
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"amqtt could not listen on 127.0.0.1:{port}: the port is in use"):
            EmbeddedBroker(port=port).start()


def test_free_ports_are_free():
    port = free_port()
    assert not _listeners(port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
