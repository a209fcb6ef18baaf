"""What every batch operation returns, and helpers the services share."""
from dataclasses import dataclass, field

import numpy as np

from twin.services.events import common_length, empty
from twin.services.reasons import Reason, raise_for

INT64_MIN = np.iinfo(np.int64).min


@dataclass(frozen=True)
class Outcome:
    """Per command: a reason code (0 = accepted); plus the events emitted.

    ``ids`` holds, for commands that create something (a ticket, a record, a
    topic), the new id or -1 when refused.
    """

    reasons: np.ndarray
    events: np.ndarray = field(default_factory=empty)
    ids: np.ndarray | None = None

    @property
    def accepted(self) -> np.ndarray:
        return self.reasons == 0

    def __len__(self) -> int:
        return len(self.reasons)

    def counts(self) -> dict[str, int]:
        """How many commands ended with each reason, by name."""
        codes, n = np.unique(self.reasons, return_counts=True)
        return {Reason(int(c)).name: int(k) for c, k in zip(codes, n)}

    def single(self, what: str = ""):
        """For a batch of one: raise the refusal, else return the new id (if any)."""
        raise_for(self.reasons[0], what)
        return None if self.ids is None else int(self.ids[0])


def column(values, n: int, dtype) -> np.ndarray:
    """A contiguous array of length ``n`` from a scalar or an array-like."""
    a = np.asarray(values, dtype=dtype)
    if a.ndim == 0:
        return np.full(n, a, dtype=dtype)
    if a.shape != (n,):
        raise ValueError(f"expected {n} values, got shape {a.shape}")
    return np.ascontiguousarray(a)


def batch_length(*columns) -> int:
    """The common length of the array-like arguments of a batch (scalars broadcast)."""
    return common_length(columns, "batch")


def grow(a: np.ndarray, need: int, fill=0) -> np.ndarray:
    """``a`` with room for at least ``need`` rows (doubling), new rows = ``fill``."""
    if need <= len(a):
        return a
    shape = (max(need, 2 * len(a), 16),) + a.shape[1:]
    # np.zeros takes lazily zeroed pages from the OS; np.full writes every element
    # (slowly for structured dtypes such as the ledger's journal, ~10 ns a row)
    out = np.zeros(shape, a.dtype) if fill == 0 else np.full(shape, fill, dtype=a.dtype)
    out[: len(a)] = a
    return out
