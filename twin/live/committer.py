"""Group commit: one writer thread applies what has arrived as one durable unit, then answers.

Requests become commands (functions of the services).  The writer takes
every command that arrived within ``window_s`` of the first (at most
``max_batch``), applies them in arrival order inside one
``Services.unit()`` — one SQLite transaction, one fsync — and only after the
commit resolves each command's future.

Runs.  A command may carry a ``run_key`` (an operation's name) and an
``apply_run(services, commands, tally)``: contiguous commands of the batch
with the same key are handed over together, and the operation is applied with
ONE call of its service's batch method (``Points.earn_batch`` for a run of
earns; :mod:`twin.live.batching`).  Anything else — other operations, pages,
reads, a run of one — is applied alone, at its place, so arrival order holds.

The outcome per command equals applying them one by one.  A refused command
(a ``ServiceError``) changes nothing: the services check before they change
state, and a batch method applies its rows in order, each seeing the ones
before it.  If the commit fails (a full disk, an I/O error), the services roll
back to the store and every command of the batch fails with ``WriteFailed``:
nothing unacknowledged was applied and nothing acknowledged was lost.  A
command that raises anything else is a bug: the batch is rolled back and the
others are applied again, each alone (a run that raises: all of its batch,
each alone, so the command at fault fails by itself).

Reads go through the same writer, so a read sees every write answered
before it, and nothing reads the services while they change.
"""
import asyncio
import collections
import queue
import threading
from concurrent.futures import Future

from twin.services.events import WriteFailed
from twin.services.reasons import ServiceError


class Stopped(RuntimeError):
    """The committer has been stopped; the command was not applied."""


class GroupCommitter:
    """The one writer of a server's services (see the module docstring)."""

    def __init__(self, services, window_s: float = 0.002, max_batch: int = 512):
        self.services = services
        self.window_s = window_s
        self.max_batch = max_batch
        self.batches = 0
        self.commands = 0
        #: Runs applied with one batch call (of two commands or more), and the commands in them.
        self.batched_runs = 0
        self.batched_commands = 0
        #: Called as ``f(events, first_seq)`` with each batch's new events after its commit.
        self.on_commit = []
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    def submit(self, command, future=None) -> Future:
        """Queue ``command(services)``; the future holds its result (or its exception) after the commit.

        ``future``: anything with ``set_result`` and ``set_exception`` to take the outcome instead
        (called in the writer's thread; the front protocol's answers skip a Future's locks).
        """
        future = Future() if future is None else future
        if not self._thread.is_alive():
            future.set_exception(Stopped("the server is shutting down"))
        else:
            self._queue.put((command, future))
        return future

    async def run(self, command):
        """Await ``command(services)`` applied and committed."""
        return await asyncio.wrap_future(self.submit(command))

    def stop(self) -> None:
        """Apply what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join()

    # ------------------------------------------------------------- the writer
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = self._gather(batch)
            self._apply(batch)
            if stop:
                return

    def _gather(self, batch) -> bool:
        """Add what arrives within the window to ``batch``; True if a stop came with it."""
        try:
            while len(batch) < self.max_batch:
                item = self._queue.get(timeout=self.window_s) if len(batch) == 1 else self._queue.get_nowait()
                if item is None:
                    return True
                batch.append(item)
        except queue.Empty:
            pass
        return False

    def _apply(self, batch) -> None:
        outcomes = []
        tally = collections.Counter()
        before = len(self.services.log)
        try:
            with self.services.unit():
                for start, stop in _runs(batch):
                    if stop - start == 1:
                        outcomes.append(_outcome(batch[start][0], self.services))
                        if isinstance(outcomes[-1], _Bug):
                            raise outcomes[-1].error
                    else:
                        commands = [command for command, _ in batch[start:stop]]
                        outcomes.extend(commands[0].apply_run(self.services, commands, tally))
        except WriteFailed as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        except Exception:
            # a bug: everything was rolled back; the command at fault fails, the others are applied again,
            # each alone (a run that raised names no command: all of its batch again, each alone)
            bad = len(outcomes) - 1 if outcomes and isinstance(outcomes[-1], _Bug) else None
            if bad is not None:
                batch[bad][1].set_exception(outcomes[bad].error)
            for i, item in enumerate(batch):
                if i != bad:
                    self._apply([item])
            return
        self.batches += 1
        self.commands += len(batch)
        self.batched_runs += tally["runs"]
        self.batched_commands += tally["commands"]
        if self.on_commit and len(self.services.log) > before:
            new = self.services.log.events[before:].copy()
            for callback in self.on_commit:
                callback(new, before + 1)
        self.services.checkpoint_if_due()  # keeps the next open fast
        for (_, future), outcome in zip(batch, outcomes):
            if isinstance(outcome, (ServiceError, ValueError)):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


def _runs(batch):
    """``(start, stop)`` of each contiguous slice of ``batch`` whose commands share a ``run_key`` (None: alone)."""
    start = 0
    while start < len(batch):
        key = getattr(batch[start][0], "run_key", None)
        stop = start + 1
        if key is not None:
            while stop < len(batch) and getattr(batch[stop][0], "run_key", None) == key:
                stop += 1
        yield start, stop
        start = stop


class _Bug:
    def __init__(self, error):
        self.error = error


def _outcome(command, services):
    try:
        return command(services)
    except (ServiceError, ValueError) as refused:  # the services check input before changing state
        return refused
    except Exception as error:  # noqa: BLE001 - anything else is a bug, handled by the batch
        return _Bug(error)
