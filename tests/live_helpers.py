"""Helpers for the live server's tests: a real uvicorn server on a free loopback port."""
import threading
import time

import httpx
import uvicorn

from live_bridge.brokers import free_port
from twin.live.accounts import add_account
from twin.live.app import create_app
from twin.services.community import open_services


class Server:
    """A real uvicorn server on a free loopback port, over a store opened for it.

    ``url`` is the API's base (``/api/v1``), ``root`` the server's; ``clock`` the
    live time in minutes (default: the store's).
    """

    def __init__(self, path, clock=None):
        self.path = path
        self.services = open_services(path)
        self.tokens = {}
        self.clock = clock

    def account(self, role, id):
        token = add_account(self.services, role, id)
        self.tokens[(role, id)] = token
        return token

    def __enter__(self):
        self.port = free_port()
        self.app = create_app(self.services, clock=self.clock)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = self.root + "/api/v1"
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.services.close()

    def client(self, token=None, base=None):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=base or self.url, headers=headers, timeout=30)
