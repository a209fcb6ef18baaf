"""The repair desk and its technicians as SimPy processes: the queueing oracle.

The ``queue_check`` scenario (``config.QueueCheckConfig``) turns the twin's
repair demand into a textbook M/M/c queue: Poisson arrivals, exponential
service, no travel, first come first served, every technician always on
shift.  Here the same queue is written the way SimPy's documentation writes a
bank: each ticket is a process that submits itself, requests one of ``c``
technicians from a :class:`simpy.PriorityResource` (equal priorities queue
first come, first served), and holds it for its service time.  Each step goes
through the real :class:`~twin.services.repair.RepairDesk` object layer
(``submit → dispatch → start → complete``), so the desk's rules are the ones
the twin runs.

:func:`run_desk` draws its own arrivals and service times (a numpy Generator
seeded from ``seed``, default the config's) or replays given ones, so the twin's
waits can be compared with SimPy's in distribution (independent draws) or
exactly (the twin's own arrivals and service times).  :func:`common_demand`
builds the demand from the twin's random numbers, but by the textbook's
transforms and the config's rates, not from the twin's output: on these
common random numbers a correct twin and the desk agree ticket by ticket,
and a twin whose service or arrivals stray from the config does not.
:func:`erlang_c_wait` gives the theoretical mean wait.
"""
from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

import numpy as np
import simpy

from twin import rng
from twin.engine.twin import S_QUEUE_N, S_QUEUE_T, S_SERVICE
from twin.services.events import EventLog
from twin.services.repair import RepairDesk, RepairPolicy


@dataclass
class DeskRun:
    """What one SimPy run of the desk produced; times in minutes, NaN: not reached by the horizon."""

    submitted: np.ndarray
    started: np.ndarray
    completed: np.ndarray
    desk_events: int      # events the repair desk emitted (submitted, dispatched, started, completed)
    kernel_events: int    # events SimPy's kernel processed
    wall_s: float

    @property
    def waits(self) -> np.ndarray:
        """Submitted → work started, for tickets started by the horizon, in arrival order."""
        ok = ~np.isnan(self.started)
        return self.started[ok] - self.submitted[ok]


def erlang_c_wait(arrivals_per_minute: float, service_minutes_mean: float, c: int) -> float:
    """Mean wait in queue of M/M/c (Erlang C; Kleinrock, Queueing Systems I, eq. 3.40-3.43), minutes."""
    mu = 1.0 / service_minutes_mean
    a = arrivals_per_minute / mu
    rho = a / c
    if rho >= 1:
        return math.inf
    top = a**c / math.factorial(c) / (1 - rho)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return p_wait / (c * mu - arrivals_per_minute)


def draw_demand(cfg, seed: int, until: float):
    """Poisson arrivals in ``[0, until)`` and their exponential service times, from ``cfg.queue_check``."""
    qc = cfg.queue_check
    rng = np.random.default_rng(seed)
    lam = qc.arrivals_per_hour / 60.0
    n = int(until * lam + 10 * math.sqrt(until * lam) + 10)
    t = np.cumsum(rng.exponential(1.0 / lam, n))
    t = t[t < until]
    return t, rng.exponential(qc.service_minutes_mean, len(t))


def common_demand(cfg, seed: int, until: float):
    """Arrivals in ``[0, until)`` and their service times, drawn from the twin's random-number streams.

    Day ``d`` brings the Poisson number of tickets (mean ``arrivals_per_hour * 24``)
    that the twin's arrival-count stream gives, at minutes uniform in the day
    (its arrival-time stream), taken in time order; the day's ``i``-th ticket
    is served for ``-mean * log(1 - u)`` minutes, ``u`` the ``i``-th uniform
    of the day on its service stream and ``mean`` the config's.
    """
    qc = cfg.queue_check
    arrivals, service = [], []
    for d in range(math.ceil(until / 1440.0)):
        k = rng.poisson(qc.arrivals_per_hour * 24.0, seed, S_QUEUE_N, d, 0)
        arrivals.append(np.sort(d * 1440.0 + rng.uniforms(seed, S_QUEUE_T, d, k) * 1440.0))
        service.append(-qc.service_minutes_mean * np.log1p(-rng.uniforms(seed, S_SERVICE, d, k)))
    arrivals, service = np.concatenate(arrivals), np.concatenate(service)
    keep = arrivals < until
    return arrivals[keep], service[keep]


def run_desk(cfg, *, seed: int | None = None, arrivals=None, service=None, until: float | None = None) -> DeskRun:
    """Run the desk with ``cfg.staff.technicians`` technicians until ``until`` (default ``sim.days``).

    ``arrivals`` and ``service`` (minutes, one per ticket, arrivals sorted)
    replay a given demand; by default it is drawn by :func:`draw_demand`.
    """
    until = cfg.sim.days * 1440.0 if until is None else float(until)
    if arrivals is None:
        arrivals, service = draw_demand(cfg, int(cfg.seed if seed is None else seed), until)
    arrivals, service = np.asarray(arrivals, float), np.asarray(service, float)
    c = int(cfg.staff.technicians)
    n = len(arrivals)
    submitted, started, completed = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    log = EventLog()
    desk = RepairDesk(log, RepairPolicy(reopen_window_minutes=cfg.policies.reopen_window_days * 1440.0),
                      n_workers=c)
    env = simpy.Environment()
    technicians = simpy.PriorityResource(env, capacity=c)
    idle = list(range(c))  # who is free: the lowest id takes the next ticket

    def ticket(i: int, priority: int = 0):
        tid = desk.submit(category="other", description="queue check", building=0, unit=0, channel="app",
                          priority=priority, t=env.now)
        submitted[i] = env.now
        with technicians.request(priority=-priority) as turn:
            yield turn
            worker = heapq.heappop(idle)
            desk.dispatch(tid, worker, env.now)
            desk.start(tid, env.now)
            started[i] = env.now
            yield env.timeout(service[i])
            desk.complete(tid, env.now)
            completed[i] = env.now
            heapq.heappush(idle, worker)

    def arrive():
        for i, t in enumerate(arrivals):
            yield env.timeout(t - env.now)
            env.process(ticket(i))

    env.process(arrive())
    t0 = time.perf_counter()
    kernel_events = 0
    while env.peek() < until:
        env.step()
        kernel_events += 1
    wall = time.perf_counter() - t0
    return DeskRun(submitted, started, completed, len(log), kernel_events, wall)
