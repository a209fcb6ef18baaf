"""Double-entry ledger: accounts with a kind and a balance floor, and transfers.

Every change of value is a transfer between two accounts, so the sum of all
balances is zero at all times.  An issuing account (the points issuer, the
time bank's endowment) simply has no floor and goes negative by what it has
issued.  A transfer is refused when it would take the source below its floor.

Points and the time bank are both built on this kernel; the ledger itself does
not log service events (the service that asked for a transfer does), but it
keeps a journal of every applied transfer so each account has a history.

A transfer is checked in this order, and the first failure is its reason: an
account or amount that is not an integer (``NotAnInteger``: 2.5 points never
become 2) and a time that is not a finite number (``InvalidTime``), in
argument order (see :mod:`twin.services._inputs`); then an account that does
not exist (``UnknownAccount``), an amount <= 0 (``InvalidAmount``), the same
account twice (``SameAccount``), a source that would fall below its floor
(``InsufficientBalance``), a destination that could not hold the amount in an
int64 (``InvalidAmount``: balances never wrap around).  A batch refuses each
command on its own; the single commands raise the exception named after the
reason.
"""
import numpy as np

from twin._jit import inline, kernel
from twin.services import events as ev
from twin.services._batch import INT64_MIN, Outcome, batch_length, grow
from twin.services._inputs import finite_time, integer, integers, raise_first, times
from twin.services.reasons import Reason, raise_for

NO_FLOOR = INT64_MIN
_INT64_MAX = int(np.iinfo(np.int64).max)

_UNKNOWN_ACCOUNT = int(Reason.UnknownAccount)
_INVALID_AMOUNT = int(Reason.InvalidAmount)
_SAME_ACCOUNT = int(Reason.SameAccount)
_INSUFFICIENT = int(Reason.InsufficientBalance)


@kernel
def _check_transfer(balances, floors, n_accounts, s, d, a):
    """The reason a transfer of ``a`` from ``s`` to ``d`` would be refused, or 0."""
    if s < 0 or s >= n_accounts or d < 0 or d >= n_accounts:
        return _UNKNOWN_ACCOUNT
    if a <= 0:
        return _INVALID_AMOUNT
    if s == d:
        return _SAME_ACCOUNT
    # balance - a < floor, written so that nothing overflows (a > 0; floors reach INT64_MIN)
    if balances[s] < INT64_MIN + a or balances[s] - a < floors[s]:
        return _INSUFFICIENT
    if balances[d] > _INT64_MAX - a:
        return _INVALID_AMOUNT
    return 0


#: One applied transfer in the journal (:meth:`Ledger.history` reads it).
JOURNAL_DTYPE = np.dtype([("t", "f8"), ("src", "i8"), ("dst", "i8"), ("amount", "i8")])


@inline
def enter(journal, row, t, src, dst, amount):
    """Enter an applied transfer at ``row`` of ``journal`` from compiled code; return the next row.

    A service core that moves balances itself journals here, into the room
    :meth:`Ledger.reserve` made; ``row`` -1 is a ledger that keeps no journal.
    """
    if row < 0:
        return row
    entry = journal[row]
    entry["t"] = t
    entry["src"] = src
    entry["dst"] = dst
    entry["amount"] = amount
    return row + 1


@kernel
def _transfer_batch(balances, floors, n_accounts, src, dst, amount, out):
    """Apply transfers in command order; ``out[i]`` gets 0 or the refusal reason.

    Commands already refused by the input checks (``out[i] != 0``) keep their reason.
    """
    for i in range(src.shape[0]):
        if out[i] != 0:
            continue
        r = _check_transfer(balances, floors, n_accounts, src[i], dst[i], amount[i])
        out[i] = r
        if r == 0:
            balances[src[i]] -= amount[i]
            balances[dst[i]] += amount[i]


class Ledger:
    """Accounts and transfers.  Batch methods take arrays; ``transfer`` is one command.

    Parameters
    ----------
    log : EventLog, optional
        Where the ledger's own commands (``open_accounts``, ``transfer_batch``)
        are logged when it is used directly.  Services that build on a ledger
        pass ``None`` and log their own events.
    journal : bool
        Keep a journal of applied transfers for :meth:`history`.
    """

    def __init__(self, log=None, journal: bool = True):
        self.log = log
        self.n = 0
        self.balances = np.zeros(16, np.int64)
        self.floors = np.zeros(16, np.int64)
        self.kinds = np.zeros(16, np.int8)
        self._journal = journal
        self._j = np.zeros(0, JOURNAL_DTYPE)
        self._jn = 0

    # ----------------------------------------------------------------- accounts
    def open_accounts(self, kind=0, floor=0, count: int | None = None, t=0.0) -> np.ndarray:
        """Open accounts (one per element of ``kind``/``floor``/``t``, or ``count``); return their ids.

        The call opens all of them or none: a kind or floor that is not an
        integer raises ``NotAnInteger``, a time that is not finite ``InvalidTime``.
        """
        n = count if count is not None else batch_length(kind, floor, t)
        reasons = np.zeros(n, np.int16)
        kind, floor, t = integers(kind, n, reasons), integers(floor, n, reasons), times(t, n, reasons)
        raise_first(reasons, "open accounts")
        ids = np.arange(self.n, self.n + n, dtype=np.int64)
        need = self.n + n
        self.balances = grow(self.balances, need)
        self.floors = grow(self.floors, need)
        self.kinds = grow(self.kinds, need)
        self.floors[self.n : need] = floor
        self.kinds[self.n : need] = kind
        self.n = need
        if self.log is not None:
            self.log.append(ev.make(ev.EventKind.AccountOpened, t, actor=ids,
                                    code=self.kinds[ids], amount=self.floors[ids]))
        return ids

    def set_floor(self, account: int, floor: int, t=0.0) -> None:
        """Change an account's floor; raises ``NotAnInteger``, ``InvalidTime``, ``UnknownAccount``."""
        account, floor = integer(account, "account"), integer(floor, "floor")
        t = finite_time(t, f"set the floor of account {account}")
        if not 0 <= account < self.n:
            raise_for(Reason.UnknownAccount, f"account {account}")
        self.floors[account] = floor
        if self.log is not None:
            self.log.append(ev.make(ev.EventKind.FloorChanged, t, target=account, amount=floor))

    # ---------------------------------------------------------------- transfers
    def apply(self, src, dst, amount, t) -> np.ndarray:
        """Apply a batch of transfers without logging; return the reason codes.

        Services call it and log their own events; applied transfers enter
        the journal.  (A service's compiled core that moves balances itself
        enters them with :func:`enter`, into room :meth:`reserve` made; a
        Python caller, with :meth:`journal`.)
        """
        return self._apply(src, dst, amount, t)[0]

    def _apply(self, src, dst, amount, t):
        """:meth:`apply`, returning the reasons and the checked columns."""
        n = batch_length(src, dst, amount, t)
        out = np.zeros(n, np.int16)
        src, dst, amount = (integers(c, n, out) for c in (src, dst, amount))
        t = times(t, n, out)
        _transfer_batch(self.balances, self.floors, self.n, src, dst, amount, out)
        if self._journal:
            ok = out == 0
            self.journal(t[ok], src[ok], dst[ok], amount[ok])
        return out, src, dst, amount, t

    def journal(self, t, src, dst, amount) -> None:
        """Enter already-applied transfers in the journal (scalars broadcast)."""
        if not self._journal:
            return
        k = batch_length(t, src, dst, amount)
        self._j = grow(self._j, self._jn + k)
        rows = self._j[self._jn : self._jn + k]
        rows["t"], rows["src"], rows["dst"], rows["amount"] = t, src, dst, amount
        self._jn += k

    def reserve(self, k: int) -> tuple[np.ndarray, int]:
        """Room for ``k`` more journal entries, for a compiled core that enters them (:func:`enter`).

        Returns the journal and the row the next entry goes to (-1: no journal
        is kept); hand the row the core returns to :meth:`entered`.
        """
        if not self._journal:
            return self._j, -1
        self._j = grow(self._j, self._jn + k)
        return self._j, self._jn

    def entered(self, row: int) -> None:
        """Take the journal's length from a core that entered rows up to ``row`` (see :meth:`reserve`)."""
        if self._journal:
            self._jn = int(row)

    def transfer_batch(self, src, dst, amount, t=0.0) -> Outcome:
        """Transfers as ledger commands: applied in order, each logged as ``Transferred``."""
        reasons, src, dst, amount, t = self._apply(src, dst, amount, t)
        ok = reasons == 0
        events = ev.make(ev.EventKind.Transferred, t[ok], actor=src[ok], target=dst[ok], amount=amount[ok])
        if self.log is not None:
            self.log.append(events)
        return Outcome(reasons, events)

    def transfer(self, src: int, dst: int, amount: int, t: float = 0.0) -> None:
        """One transfer; raises ``InsufficientBalance``, ``UnknownAccount``, ... when refused."""
        self.transfer_batch([src], [dst], [amount], [t]).single(f"transfer {amount} from {src} to {dst}")

    # ------------------------------------------------------------------ queries
    def balance(self, account: int) -> int:
        account = integer(account, "account")
        if not 0 <= account < self.n:
            raise_for(Reason.UnknownAccount, f"account {account}")
        return int(self.balances[account])

    def total(self) -> int:
        """Sum of all balances: zero, always (the double-entry invariant)."""
        return int(self.balances[: self.n].sum())

    def history(self, account: int):
        """The account's applied transfers, oldest first, with signed amounts and running balance."""
        import pandas as pd

        j = self._j[: self._jn]
        rows = j[(j["src"] == account) | (j["dst"] == account)]
        signed = np.where(rows["dst"] == account, rows["amount"], -rows["amount"])
        return pd.DataFrame({
            "t": rows["t"], "counterparty": np.where(rows["dst"] == account, rows["src"], rows["dst"]),
            "amount": signed, "balance": np.cumsum(signed),
        })

    def replay(self, events: np.ndarray) -> None:
        """Re-execute this ledger's own logged commands (``Services.replay`` uses it)."""
        for kind, rows in ev.runs(events):
            if kind == ev.EventKind.AccountOpened:
                self.open_accounts(rows["code"], rows["amount"], t=rows["t"])
            elif kind == ev.EventKind.Transferred:
                self.transfer_batch(rows["actor"], rows["target"], rows["amount"], rows["t"])
            elif kind == ev.EventKind.FloorChanged:
                for r in rows:
                    self.set_floor(int(r["target"]), int(r["amount"]), float(r["t"]))
