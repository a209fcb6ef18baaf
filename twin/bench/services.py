"""Service throughput: ledger transfers and repair-ticket transitions, batched and one at a time.

The twin calls the services with thousands of commands per tick; live
operation calls the same functions with a batch of one.  This measures both
paths, warm (after a JIT warm-up), best of a few repeats, one thread:

* ledger, batched: batches of ``BATCH`` transfers through ``Ledger.transfer_batch``
  (what a caller gets: reasons and ``Transferred`` events), and, to show where
  the time goes, through ``Ledger.apply`` (no events; journal kept) and the bare
  compiled kernel;
* ledger, single: ``Ledger.transfer`` in a loop (the object layer);
* tickets, batched: ``RepairDesk.dispatch_batch / start_batch / complete_batch /
  rate_batch`` on batches of ``BATCH`` tickets;
* tickets, single: ``RepairDesk.dispatch / start / complete / rate``.

``run()`` returns a flat dict of figures (rates in commands per second).
"""
import time

import numpy as np

from twin.services.ledger import NO_FLOOR, Ledger, _transfer_batch
from twin.services.repair import RepairDesk

BATCH = 10_000
ACCOUNTS = 10_000
TARGET_TRANSFERS_PER_S = 5_000_000


def _best(fn, repeats):
    """The shortest wall time of ``repeats`` calls of ``fn`` (each call sets itself up untimed)."""
    best = float("inf")
    for _ in range(repeats):
        best = min(best, fn())
    return best


# ------------------------------------------------------------------ ledger
def _funded_ledger(journal=True):
    """An issuer without floor and ``ACCOUNTS`` residents (floor 0) holding plenty to give."""
    ledger = Ledger(journal=journal)
    ledger.open_accounts(kind=0, floor=NO_FLOOR)
    residents = ledger.open_accounts(kind=1, floor=0, count=ACCOUNTS)
    ledger.apply(np.zeros(ACCOUNTS, np.int64), residents, np.full(ACCOUNTS, 10**12, np.int64), 0.0)
    return ledger


def _transfers(n_batches, seed=0):
    """Random resident-to-resident transfers, drawn once so drawing is not timed."""
    g = np.random.default_rng(seed)
    src = g.integers(1, ACCOUNTS + 1, (n_batches, BATCH))
    dst = g.integers(1, ACCOUNTS + 1, (n_batches, BATCH))
    amount = g.integers(1, 100, (n_batches, BATCH))
    t = np.arange(BATCH, dtype=np.float64)
    return src, dst, amount, t


def _time_ledger(path, n_batches, repeats):
    """Seconds for ``n_batches`` batches through ``path`` ('transfer_batch', 'apply' or 'kernel')."""
    src, dst, amount, t = _transfers(n_batches)

    def once():
        ledger = _funded_ledger()
        out = np.empty(BATCH, np.int16)
        start = time.perf_counter()
        for b in range(n_batches):
            if path == "transfer_batch":
                ledger.transfer_batch(src[b], dst[b], amount[b], t)
            elif path == "apply":
                ledger.apply(src[b], dst[b], amount[b], t)
            else:
                _transfer_batch(ledger.balances, ledger.floors, ledger.n, src[b], dst[b], amount[b], out)
        return time.perf_counter() - start

    return _best(once, repeats)


def _time_ledger_single(n, repeats):
    src, dst, amount, _ = _transfers(1)
    src, dst, amount = src[0, :n].tolist(), dst[0, :n].tolist(), amount[0, :n].tolist()

    def once():
        ledger = _funded_ledger()
        transfer = ledger.transfer
        start = time.perf_counter()
        for s, d, a in zip(src, dst, amount):
            if s != d:  # a refusal would raise; the object layer's happy path is what is timed
                transfer(s, d, a)
        return time.perf_counter() - start

    return _best(once, repeats), sum(s != d for s, d in zip(src, dst))


# ----------------------------------------------------------------- tickets
def _submitted_desk(n):
    desk = RepairDesk()
    g = np.random.default_rng(1)
    desk.submit_batch(g.integers(0, 5000, n), g.integers(0, 10, n), g.integers(0, 40, n),
                      g.integers(0, 600, n), 1, 1, True, 0.0)
    return desk


def _time_tickets(n_batches, repeats):
    """Seconds for dispatch, start, complete and rate of ``n_batches`` batches of tickets."""
    n = n_batches * BATCH
    workers = np.random.default_rng(2).integers(0, 50, n)
    ratings = np.random.default_rng(3).integers(1, 6, n)

    def once():
        desk = _submitted_desk(n)
        start = time.perf_counter()
        for b in range(n_batches):
            ids = np.arange(b * BATCH, (b + 1) * BATCH)
            desk.dispatch_batch(ids, workers[ids], 10.0)
            desk.start_batch(ids, 20.0)
            desk.complete_batch(ids, 30.0)
            desk.rate_batch(ids, ratings[ids], 40.0)
        elapsed = time.perf_counter() - start
        assert (desk.state.status[:n] == 4).all(), "every ticket should end rated"
        return elapsed

    return _best(once, repeats)


def _time_tickets_single(n, repeats):
    def once():
        desk = _submitted_desk(n)
        start = time.perf_counter()
        for ticket in range(n):
            desk.dispatch(ticket, ticket % 50, t=10.0)
            desk.start(ticket, t=20.0)
            desk.complete(ticket, t=30.0)
            desk.rate(ticket, 1 + ticket % 5, t=40.0)
        return time.perf_counter() - start

    return _best(once, repeats)


# --------------------------------------------------------------------- run
def _warm_up():
    """Compile (or load from cache) every kernel the timed paths use."""
    _time_ledger("transfer_batch", 1, 1)
    _time_ledger("kernel", 1, 1)
    _time_ledger_single(10, 1)
    _time_tickets(1, 1)
    _time_tickets_single(10, 1)


def run(n_batches: int = 50, n_single: int = 5_000, repeats: int = 3) -> dict:
    """Measure every path; rates are commands per second on one core."""
    _warm_up()
    transfers = n_batches * BATCH
    t_batch = _time_ledger("transfer_batch", n_batches, repeats)
    t_apply = _time_ledger("apply", n_batches, repeats)
    t_kernel = _time_ledger("kernel", n_batches, repeats)
    t_single, n_transfers_single = _time_ledger_single(n_single, repeats)

    ticket_batches = max(1, n_batches // 5)
    transitions = 4 * ticket_batches * BATCH
    t_tickets = _time_tickets(ticket_batches, repeats)
    n_tickets_single = max(1, n_single // 4)
    t_tickets_single = _time_tickets_single(n_tickets_single, repeats)

    ledger_batch = transfers / t_batch
    ledger_single = n_transfers_single / t_single
    tickets_batch = transitions / t_tickets
    tickets_single = 4 * n_tickets_single / t_tickets_single
    return {
        "batch_size": BATCH,
        "ledger_transfers_per_s": ledger_batch,
        "ledger_transfers_per_s_apply": transfers / t_apply,
        "ledger_transfers_per_s_kernel": transfers / t_kernel,
        "ledger_transfers_per_s_single": ledger_single,
        "ledger_batch_over_single": ledger_batch / ledger_single,
        "ledger_meets_5m_per_s": bool(ledger_batch >= TARGET_TRANSFERS_PER_S),
        # where a batch's time goes, in nanoseconds per transfer
        "ledger_ns_kernel": 1e9 * t_kernel / transfers,
        "ledger_ns_apply_overhead": 1e9 * (t_apply - t_kernel) / transfers,
        "ledger_ns_events": 1e9 * (t_batch - t_apply) / transfers,
        "ticket_transitions_per_s": tickets_batch,
        "ticket_transitions_per_s_single": tickets_single,
        "ticket_batch_over_single": tickets_batch / tickets_single,
    }
