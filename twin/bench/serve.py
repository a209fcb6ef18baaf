"""The live server under load on loopback: durable writes/s and latency, group commit vs one transaction each.

Two servers run side by side in one benchmark, each over a fresh temporary
store (SQLite WAL, ``synchronous=FULL``) seeded with the demo community,
``residents`` more residents enrolled in points and the demo's accounts, and
each run as ``twin serve --fronts 2`` runs (``fronts``: HTTP front processes
before one writer process, :mod:`twin.live.front`; ``fronts=0``: one uvicorn
process):

* **group commit**: ``create_app(window_s=0.002, max_batch=512)``, as ``twin serve`` runs;
* **one transaction per request**: ``create_app(window_s=0, max_batch=1)``, the same fronts.

Against them, with ``connections`` concurrent keep-alive connections:

* no-op: ``GET /api/v1/ping`` (answered by the process that takes it — a front — with no store
  and no writer: the HTTP side's own ceiling);
* reads: ``GET /api/v1/repair/tickets/{id}`` as a resident (through the writer, like every read);
* writes: ``POST /api/v1/points/residents/{id}/earn`` as the coordinator, every body a distinct
  occurrence, so every request is a real command, committed (fsync) before its answer — on both
  servers; the events the store gained are counted from the server's health figures as a check;
* paced writes: the same at a fixed offered rate (``paced_rate``, default 1,000/s), for the latency
  goal: wrk's Lua ``delay()`` keeps a per-thread schedule (wrk2 is not in Debian), latency is
  measured from when each request is sent.

Server CPU figures add up the writer and its fronts.
The load comes from ``wrk`` (1 thread, a Lua script making distinct bodies and the
Authorization header) when it is installed; otherwise from a multi-process Python
asyncio client (raw HTTP/1.1 over keep-alive sockets), which the result says
(``serve_client``).  Both share the machine's cores with the server.

``run()`` returns a flat dict: ``serve_writes_per_s``, ``serve_write_p50_ms``,
``serve_write_p99_ms``, ``serve_single_tx_writes_per_s``, ``serve_noop_per_s``,
``serve_reads_per_s``, ``serve_group_vs_single`` and more (see :func:`run`), and
``goals``.  ``python -m twin.bench.serve --server ...`` is the server process itself.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from twin.bench.suite import meets

#: Goals of the live-services issue (not tests): key -> (comparison, target).
GOALS = {
    "serve_writes_per_s": (">=", 2000.0),
    "serve_paced_write_p99_ms": ("<", 100.0),
    "serve_group_vs_single": (">=", 2.0),
}

API = "/api/v1"
FIRST_RESIDENT = 1000
_MARK = "SERVEBENCH "


# ------------------------------------------------------------------ the server process
def _serve(store: str, port: int, window_s: float, max_batch: int, residents: int, ready: str,
           fronts: int = 0) -> None:
    """Seed a fresh store, say so in ``ready`` (tokens, a ticket), then serve until SIGINT/SIGTERM.

    ``fronts`` > 0: that many front processes before this one, as ``twin serve --fronts`` runs them.
    """
    import uvicorn

    from twin.live.app import create_app
    from twin.live.serve import seed_demo
    from twin.services.community import open_services

    with open_services(store) as services:
        tokens = seed_demo(services)
        with services.unit():
            services.points.enroll_batch(list(range(FIRST_RESIDENT, FIRST_RESIDENT + residents)))
            ticket = services.repair.submit("plumbing", "bench: kitchen tap dripping", building=1, unit=101,
                                            reporter=100)
        info = {"coordinator": tokens["coordinator"], "resident": tokens["resident"], "ticket": ticket,
                "events": len(services.log), "server": _server_kind(fronts)}
        Path(ready + ".tmp").write_text(json.dumps(info))
        os.replace(ready + ".tmp", ready)
        app = create_app(services, window_s=window_s, max_batch=max_batch)
        if fronts:
            from twin.live.front import serve_with_fronts

            serve_with_fronts(app, "127.0.0.1", port, fronts)
        else:
            uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _server_kind(fronts: int = 0) -> str:
    """What uvicorn picks with its defaults ("auto"): uvloop and httptools when installed."""
    import importlib.util

    import uvicorn

    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    processes = f"{fronts} front processes + 1 writer" if fronts else "1 process"
    return f"uvicorn {uvicorn.__version__} ({parser}, {loop}), {processes}"


class _Server:
    """A server subprocess on a free loopback port over a fresh store in ``workdir``."""

    def __init__(self, workdir: Path, name: str, window_s: float, max_batch: int, residents: int, fronts: int):
        self.dir = workdir / name
        self.dir.mkdir()
        self.port = _free_port()
        self.ready = self.dir / "ready.json"
        self.log = open(self.dir / "server.log", "wb")
        cmd = [sys.executable, "-m", "twin.bench.serve", "--server", str(self.dir / "store.sqlite"),
               "--port", str(self.port), "--window-s", repr(window_s), "--max-batch", str(max_batch),
               "--residents", str(residents), "--ready", str(self.ready), "--fronts", str(fronts)]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.fronts = fronts
        self.info: dict = {}

    def wait(self, timeout: float = 180.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the bench server exited ({self.proc.returncode}): {self._tail()}")
            if self.ready.exists() and not self.info:
                self.info = json.loads(self.ready.read_text())
            if self.info:
                try:
                    if self.health().get("fronts", 0) >= self.fronts:  # every front up: none starts mid-load
                        return self.info
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bench server did not start within {timeout:.0f} s: {self._tail()}")
            time.sleep(0.1)

    def health(self) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", API + "/health")
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise OSError(f"health answered {response.status}")
            return json.loads(body)
        finally:
            conn.close()

    def cpu_s(self) -> float:
        """CPU seconds the server's processes (the server and its fronts) have used so far (Linux), else NaN."""
        total, found = 0, False
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # a process that ended meanwhile
            if stat.parent.name == str(self.proc.pid) or fields[1] == str(self.proc.pid):
                total += int(fields[11]) + int(fields[12])
                found = True
        return total / os.sysconf("SC_CLK_TCK") if found else math.nan

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def _tail(self) -> str:
        self.log.flush()
        return (self.dir / "server.log").read_text(errors="replace")[-2000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ load: what is sent
def _load_spec(kind: str, info: dict, residents: int, base: int) -> dict:
    """One load's requests: kind 'noop', 'read' or 'write' (earns with occurrences from ``base`` up)."""
    if kind == "noop":
        return {"kind": kind, "method": "GET", "path": API + "/ping", "token": None}
    if kind == "read":
        return {"kind": kind, "method": "GET", "path": f"{API}/repair/tickets/{info['ticket']}",
                "token": info["resident"]}
    return {"kind": kind, "method": "POST", "token": info["coordinator"], "base": base,
            "first": FIRST_RESIDENT, "residents": residents}


_WRK_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } servebench_timespec;
int clock_gettime(int clk_id, servebench_timespec *tp);
]]
local ts = ffi.new("servebench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000.0 + tonumber(ts.tv_nsec) / 1.0e6
end

local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local kind, token, base, first, residents, interval_ms
local counter, next_at = 0, nil
local headers = {}
function init(args)
  kind, token = args[1], args[2]
  base, first, residents = tonumber(args[3]), tonumber(args[4]), tonumber(args[5])
  interval_ms = tonumber(args[6])
  if token ~= "-" then headers["Authorization"] = "Bearer " .. token end
  headers["Content-Type"] = "application/json"
  if kind ~= "write" then
    wrk.headers["Authorization"] = headers["Authorization"]
    req = wrk.format(nil, wrk.path)
  end
end

function request()
  if kind ~= "write" then return req end
  counter = counter + 1
  local occurrence = base + tid * 10000000 + counter
  local resident = first + occurrence % residents
  return wrk.format("POST", "/api/v1/points/residents/" .. resident .. "/earn", headers,
                    '{"activity":0,"occurrence":' .. occurrence .. '}')
end

if os.getenv("SERVEBENCH_PACED") == "1" then
  function delay()
    local t = now_ms()
    if next_at == nil or next_at < t - 1000.0 then next_at = t end
    next_at = next_at + interval_ms
    local d = next_at - t
    if d < 0 then return 0 end
    return d
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('SERVEBENCH {"requests":%.0f,"duration_s":%.6f,"status_errors":%.0f,' ..
    '"socket_errors":%.0f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f}\n',
    summary.requests, summary.duration / 1.0e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000.0, latency:percentile(90) / 1000.0, latency:percentile(99) / 1000.0,
    latency.max / 1000.0, latency.mean / 1000.0))
end
"""


def _wrk(port: int, spec: dict, connections: int, seconds: float, rate: float | None, script: Path) -> dict:
    """One wrk run (1 thread); returns rates and latencies (ms)."""
    threads = 1
    url = f"http://127.0.0.1:{port}{spec.get('path', '/')}"
    interval = (1000.0 * threads / rate) if rate else 0.0
    args = [spec["kind"], spec["token"] or "-", str(spec.get("base", 0)), str(spec.get("first", 0)),
            str(spec.get("residents", 1)), repr(interval)]
    env = {**os.environ, "SERVEBENCH_PACED": "1" if rate else "0"}
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
           "--timeout", "30s", "-s", str(script), url, "--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 120)
    line = next((x for x in out.stdout.splitlines() if x.startswith(_MARK)), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-1000:]} {out.stderr[-1000:]}")
    r = json.loads(line[len(_MARK):])
    ok = r["requests"] - r["status_errors"]
    return {"ok": int(ok), "failed": int(r["status_errors"] + r["socket_errors"]), "seconds": r["duration_s"],
            "per_s": ok / r["duration_s"], "p50_ms": r["p50_ms"], "p90_ms": r["p90_ms"], "p99_ms": r["p99_ms"],
            "max_ms": r["max_ms"]}


# ------------------------------------------------------------------ load: the Python fallback
def _py_load(port: int, spec: dict, connections: int, seconds: float, rate: float | None,
             processes: int) -> dict:
    """The same load from ``processes`` Python processes (asyncio, raw HTTP/1.1, keep-alive)."""
    import numpy as np

    processes = max(1, min(processes, connections))
    workers = []
    try:
        for w in range(processes):
            share = connections // processes + (1 if w < connections % processes else 0)
            job = {**spec, "port": port, "connections": share, "seconds": seconds,
                   "rate": (rate / processes) if rate else None, "worker": w}
            workers.append(subprocess.Popen([sys.executable, "-m", "twin.bench.serve", "--client-worker",
                                             json.dumps(job)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            text=True))
        for p in workers:  # every process connected: start them together
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a load process failed to connect (exit {p.wait()})")
        for p in workers:
            p.stdin.write("go\n")
            p.stdin.flush()
        parts = [json.loads(p.communicate(timeout=seconds + 120)[0].strip().splitlines()[-1]) for p in workers]
    finally:
        for p in workers:
            if p.poll() is None:
                p.kill()
                p.wait()
    lat = np.concatenate([np.asarray(p["latencies_ms"], float) for p in parts])
    ok = sum(p["ok"] for p in parts)
    span = max(p["seconds"] for p in parts)
    pct = (lambda q: float(np.percentile(lat, q))) if len(lat) else (lambda q: math.nan)
    return {"ok": ok, "failed": sum(p["failed"] for p in parts), "seconds": span, "per_s": ok / span,
            "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": pct(100)}


async def _py_client(job: dict) -> dict:
    """One load process: connect, say "ready", wait for "go" on stdin, load, return counts and latencies."""
    port, kind = job["port"], job["kind"]
    host = f"127.0.0.1:{port}"
    auth = f"Authorization: Bearer {job['token']}\r\n" if job["token"] else ""
    fixed = f"GET {job.get('path')} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()
    counter = [0]
    latencies, tally = [], {"ok": 0, "failed": 0}
    rate = job["rate"]
    schedule = [0]

    def next_request() -> bytes:
        if kind != "write":
            return fixed
        counter[0] += 1
        occurrence = job["base"] + job["worker"] * 10_000_000 + counter[0]
        resident = job["first"] + occurrence % job["residents"]
        body = f'{{"activity":0,"occurrence":{occurrence}}}'
        return (f"POST {API}/points/residents/{resident}/earn HTTP/1.1\r\nHost: {host}\r\n{auth}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode()

    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(job["connections"])]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    t0 = time.perf_counter()
    end = t0 + job["seconds"]

    async def connection(reader, writer):
        while True:
            if rate:
                slot = schedule[0]
                schedule[0] += 1
                wait = t0 + slot / rate - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
            if time.perf_counter() >= end:
                break
            sent = time.perf_counter()
            try:
                writer.write(next_request())
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError):
                tally["failed"] += 1
                break
            done = time.perf_counter()
            if done > end:
                break
            if status < 400:
                tally["ok"] += 1
                latencies.append((done - sent) * 1000.0)
            else:
                tally["failed"] += 1
        writer.close()

    await asyncio.gather(*(connection(r, w) for r, w in streams))
    return {**tally, "latencies_ms": latencies, "seconds": job["seconds"]}


# ------------------------------------------------------------------ the benchmark
def run(seconds: float = 5.0, paced_seconds: float = 5.0, warmup_seconds: float = 1.0, connections: int = 100,
        paced_rate: float = 1000.0, residents: int = 1000, client: str = "auto", processes: int = 2,
        fronts: int = 2, log=None) -> dict:
    """Both servers, side by side; returns the flat figures (rates per second, latencies in ms).

    ``client``: "wrk", "python" or "auto" (wrk when on the PATH).  ``seconds``: each closed-loop
    load (no-op, reads, writes on each server); ``paced_seconds``: the paced writes.  ``fronts``:
    front processes before each server's writer (``twin serve --fronts``; 0: one process each).
    """
    log = log or (lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True))
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    wrk_path = shutil.which("wrk")
    use_wrk = client == "wrk" or (client == "auto" and wrk_path is not None)
    if use_wrk and wrk_path is None:
        raise RuntimeError("client='wrk' but wrk is not on the PATH")
    workdir = Path(tempfile.mkdtemp(prefix="twin-serve-bench-"))
    script = workdir / "load.lua"
    script.write_text(_WRK_SCRIPT)
    if use_wrk:
        version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()
        client_name = f"wrk {version[1] if len(version) > 1 else ''}".strip() + ", 1 thread"
    else:
        client_name = (f"python asyncio, {processes} process{'es' if processes > 1 else ''}"
                       + (" (wrk not found: apt-get install wrk)" if client == "auto" else ""))

    def load(server, kind, secs, rate=None, base=0):
        spec = _load_spec(kind, server.info, residents, base)
        cpu = server.cpu_s()
        if use_wrk:
            r = _wrk(server.port, spec, connections, secs, rate, script)
        else:
            r = _py_load(server.port, spec, connections, secs, rate, processes)
        cpu = server.cpu_s() - cpu  # the server's CPU time: per request, and its share of one core
        r["cpu_ms_per_req"] = 1000.0 * cpu / r["ok"] if r["ok"] else math.nan
        r["cpu_share"] = cpu / r["seconds"]
        return r

    servers = {}
    try:
        log(f"serve: two servers on loopback over fresh stores ({residents:,} residents), client {client_name}")
        servers["group"] = _Server(workdir, "group", 0.002, 512, residents, fronts)
        servers["single"] = _Server(workdir, "single", 0.0, 1, residents, fronts)
        for s in servers.values():
            s.wait()
        group, single = servers["group"], servers["single"]

        def writes(server, secs, base, rate=None):
            before = server.health()
            r = load(server, "write", secs, rate=rate, base=base)
            after = server.health()
            r["events"] = after["events"] - before["events"]
            batches = after["batches"] - before["batches"]
            r["mean_batch"] = (after["commands"] - before["commands"]) / batches if batches else math.nan
            return r

        log("serve: warm-up (writes on both servers) ...")
        writes(group, warmup_seconds, base=1)
        writes(single, warmup_seconds, base=1)
        log(f"serve: no-op GET /health, {connections} connections ...")
        noop = load(group, "noop", seconds)
        log("serve: reads, GET a ticket ...")
        reads = load(group, "read", seconds)
        log("serve: durable writes, group commit ...")
        gw = writes(group, seconds, base=100_000_000)
        log("serve: durable writes, one transaction per request ...")
        sw = writes(single, seconds, base=100_000_000)
        log(f"serve: paced writes at {paced_rate:,.0f}/s, group commit ...")
        pw = writes(group, paced_seconds, base=200_000_000, rate=paced_rate)
    finally:
        for s in servers.values():
            s.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    def ratio(a, b):
        return a / b if b else math.nan

    out = {
        "serve_client": client_name,
        "serve_server": group.info.get("server"),
        "serve_connections": connections,
        "serve_noop_per_s": noop["per_s"], "serve_noop_p99_ms": noop["p99_ms"],
        "serve_reads_per_s": reads["per_s"], "serve_read_p50_ms": reads["p50_ms"], "serve_read_p99_ms": reads["p99_ms"],
        "serve_writes_per_s": gw["per_s"], "serve_write_p50_ms": gw["p50_ms"], "serve_write_p99_ms": gw["p99_ms"],
        "serve_write_mean_batch": gw["mean_batch"], "serve_write_events": gw["events"],
        "serve_write_acknowledged": gw["ok"],
        "serve_single_tx_writes_per_s": sw["per_s"], "serve_single_tx_write_p50_ms": sw["p50_ms"],
        "serve_single_tx_write_p99_ms": sw["p99_ms"], "serve_single_tx_write_events": sw["events"],
        "serve_single_tx_write_acknowledged": sw["ok"], "serve_single_tx_mean_batch": sw["mean_batch"],
        "serve_paced_rate": paced_rate, "serve_paced_writes_per_s": pw["per_s"],
        "serve_paced_write_p50_ms": pw["p50_ms"], "serve_paced_write_p99_ms": pw["p99_ms"],
        "serve_paced_mean_batch": pw["mean_batch"],
        "serve_group_vs_single": ratio(gw["per_s"], sw["per_s"]),
        "serve_writes_vs_noop": ratio(gw["per_s"], noop["per_s"]),
        "serve_single_tx_vs_noop": ratio(sw["per_s"], noop["per_s"]),
        "serve_reads_vs_noop": ratio(reads["per_s"], noop["per_s"]),
        "serve_noop_cpu_ms": noop["cpu_ms_per_req"], "serve_read_cpu_ms": reads["cpu_ms_per_req"],
        "serve_write_cpu_ms": gw["cpu_ms_per_req"], "serve_single_tx_write_cpu_ms": sw["cpu_ms_per_req"],
        "serve_write_cpu_share": gw["cpu_share"], "serve_noop_cpu_share": noop["cpu_share"],
        "serve_failed_requests": sum(r["failed"] for r in (noop, reads, gw, sw, pw)),
        "serve_cpus": os.cpu_count(),
        "serve_load_before": load_before, "serve_load_after": os.getloadavg()[0],
        "serve_s": time.perf_counter() - started,
    }
    out["goals"] = {k: meets(out.get(k), *goal) for k, goal in GOALS.items()}
    return out


def _f(x, digits=0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:,.{digits}f}"


def table_rows(r: dict) -> list[tuple[str, str]]:
    """The section's rows for ``twin bench``'s table, goals beside the figures."""
    goal = r.get("goals", {})

    def met(key):
        return "met" if goal.get(key) else "MISSED"

    return [
        (f"live server, {r['serve_connections']} connections", f"{r['serve_server']}; load from {r['serve_client']}"),
        ("  durable writes/s, group commit (p50 / p99 ms)",
         f"{_f(r['serve_writes_per_s'])} ({_f(r['serve_write_p50_ms'], 1)} / {_f(r['serve_write_p99_ms'], 1)}), "
         f"mean batch {_f(r['serve_write_mean_batch'], 1)}; goal >= 2,000 on 2 cores: {met('serve_writes_per_s')}"),
        ("  durable writes/s, one transaction per request (p50 / p99 ms)",
         f"{_f(r['serve_single_tx_writes_per_s'])} ({_f(r['serve_single_tx_write_p50_ms'], 1)} / "
         f"{_f(r['serve_single_tx_write_p99_ms'], 1)})"),
        ("  group commit vs one per request",
         f"{_f(r['serve_group_vs_single'], 2)}x; goal >= 2x: {met('serve_group_vs_single')}"),
        (f"  paced writes, {_f(r['serve_paced_rate'])}/s offered: achieved/s (p50 / p99 ms)",
         f"{_f(r['serve_paced_writes_per_s'])} ({_f(r['serve_paced_write_p50_ms'], 1)} / "
         f"{_f(r['serve_paced_write_p99_ms'], 1)}); goal p99 < 100 ms: {met('serve_paced_write_p99_ms')}"),
        ("  no-op GET /ping; reads (GET a ticket) per s",
         f"{_f(r['serve_noop_per_s'])}; {_f(r['serve_reads_per_s'])} (p99 {_f(r['serve_read_p99_ms'], 1)} ms)"),
        ("  vs no-op: group-commit writes, one-per-request writes, reads",
         f"{_f(r['serve_writes_vs_noop'], 2)}, {_f(r['serve_single_tx_vs_noop'], 2)}, "
         f"{_f(r['serve_reads_vs_noop'], 2)}"),
        ("  server CPU ms a request: no-op, read, write (group; one per request)",
         f"{_f(r['serve_noop_cpu_ms'], 2)}, {_f(r['serve_read_cpu_ms'], 2)}, {_f(r['serve_write_cpu_ms'], 2)}; "
         f"{_f(r['serve_single_tx_write_cpu_ms'], 2)}"),
        ("  machine: server's share of a core under write load; load average",
         f"{_f(r['serve_write_cpu_share'], 2)}; {_f(r['serve_load_before'], 1)} -> "
         f"{_f(r['serve_load_after'], 1)} on {r['serve_cpus']} CPUs"),
        ("  failed requests (non-2xx, socket errors)", _f(r["serve_failed_requests"])),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m twin.bench.serve",
                                     description="the live server under load (see the module docstring)")
    parser.add_argument("--server", metavar="STORE", help="be the server process over a fresh STORE")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--window-s", type=float, default=0.002)
    parser.add_argument("--max-batch", type=int, default=512)
    parser.add_argument("--residents", type=int, default=1000)
    parser.add_argument("--ready", help="file written (tokens, a ticket id) once the store is seeded")
    parser.add_argument("--seconds", type=float, default=5.0, help="each closed-loop load")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--fronts", type=int, default=2, help="front processes before each server's writer")
    parser.add_argument("--client-worker", metavar="JOB", help=argparse.SUPPRESS)  # one Python load process
    args = parser.parse_args(argv)
    if args.client_worker:
        print(json.dumps(asyncio.run(_py_client(json.loads(args.client_worker)))), flush=True)
        return 0
    if args.server:
        _serve(args.server, args.port, args.window_s, args.max_batch, args.residents, args.ready, args.fronts)
        return 0
    result = run(seconds=args.seconds, paced_seconds=args.seconds, residents=args.residents, client=args.client,
                 fronts=args.fronts)
    from twin.bench.suite import _jsonable

    rows = table_rows(result)
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows), flush=True)
    print(json.dumps(_jsonable(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
