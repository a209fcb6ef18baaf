"""The form of a command's inputs, checked the same way by every service.

Cast straight to ``int64``, a rating of 4.5 would become 4 and a building
``"3"`` would become 3; cast to ``float64``, a NaN time would reach the state.
So a column is read as it was given: an element that is not an integer the
services can hold (an ``int``, numpy's too, or a float without fraction,
inside int64; never a bool or a string) refuses its command with
``NotAnInteger``, a time that is not a finite number with ``InvalidTime``,
and a person's id outside ``[0, MAX_ID)`` with ``InvalidId``.  (Saturating
2**70 to int64's end instead would turn it into a valid worker id, claim
occurrence or amount.)  The other commands of the batch run; the
single commands of the object layer run as batches of one, so they raise the
same reasons as exceptions.

The column helpers take the batch's ``reasons`` (``int16``, 0 where not yet
refused) and mark only commands still unrefused: called in argument order,
the first failure is a command's reason.  numpy arrays are checked by dtype
(no Python loop on the twin's hot path); Python values one by one, so a list
mixing ``1`` and ``"3"`` refuses only the ``"3"``.
"""
import math
from numbers import Integral, Real

import numpy as np

from twin.services.reasons import Reason, raise_for

#: People (residents, reporters, actors) are ids ``0 .. MAX_ID - 1``.  Services keep
#: dense arrays indexed by id (about 80 bytes per id for points), so the bound is
#: also what a stray id may cost: the twin's largest benchmark community fits, a
#: city is sharded by community, and ``10**9`` is refused before anything grows.
MAX_ID = 10_000_000

_NOT_AN_INTEGER = int(Reason.NotAnInteger)
_INVALID_TIME = int(Reason.InvalidTime)
_INVALID_ID = int(Reason.InvalidId)
_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
_TWO_63 = 2.0 ** 63  # floats in [-2**63, 2**63) are exactly int64 values


def as_integer(value):
    """``value`` as an ``int`` if it is an integer (see the module docstring), else ``None``."""
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, Integral):
        value = int(value)
    elif isinstance(value, Real) and math.isfinite(value) and float(value).is_integer():
        value = int(value)
    else:
        return None
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def as_time(value):
    """``value`` as a ``float`` if it is a finite number of minutes (not a bool), else ``None``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real) or not math.isfinite(value):
        return None
    return float(value)


def integer(value, what: str) -> int:
    """One integer argument; raises ``NotAnInteger`` naming ``what``."""
    code = as_integer(value)
    if code is None:
        raise_for(Reason.NotAnInteger, f"{what} must be an integer, got {value!r}")
    return code


def finite_time(value, what: str) -> float:
    """One time argument; raises ``InvalidTime`` naming ``what``."""
    t = as_time(value)
    if t is None:
        raise_for(Reason.InvalidTime, f"{what}: t must be a finite number of minutes, got {value!r}")
    return t


def raise_first(reasons: np.ndarray, what: str) -> None:
    """For a call that refuses as a whole (no per-command outcome): raise its first row's refusal."""
    refused = np.flatnonzero(reasons)
    if len(refused):
        raise_for(reasons[refused[0]], f"{what} (row {refused[0]})")


def refuse(reasons: np.ndarray, mask: np.ndarray, reason) -> None:
    """Refuse the commands in ``mask`` with ``reason``, unless already refused."""
    if np.count_nonzero(mask):  # most batches refuse nothing: one pass instead of three (``any`` costs more)
        reasons[mask & (reasons == 0)] = int(reason)


def integers(values, n: int, reasons: np.ndarray) -> np.ndarray:
    """An ``int64`` column of ``values``; non-integers are refused (``NotAnInteger``, slot 0)."""
    if not isinstance(values, np.ndarray):
        if type(values) is int and _INT64_MIN <= values <= _INT64_MAX:  # one int for the whole batch (bools excluded)
            return np.full(n, values, np.int64)
        return _one_by_one(values, n, reasons, as_integer, _NOT_AN_INTEGER, np.int64, 0)
    a = _shaped(values, n)
    kind = a.dtype.kind
    if kind == "i":
        return np.ascontiguousarray(a, np.int64)
    if kind == "O":
        return _one_by_one(a, n, reasons, as_integer, _NOT_AN_INTEGER, np.int64, 0)
    if kind == "u":
        ok = a <= np.uint64(_INT64_MAX)
    elif kind == "f":
        ok = np.isfinite(a) & (a == np.trunc(a)) & (a >= -_TWO_63) & (a < _TWO_63)
    else:  # bools, strings, bytes, dates, complex numbers
        refuse(reasons, np.ones(n, np.bool_), _NOT_AN_INTEGER)
        return np.zeros(n, np.int64)
    refuse(reasons, ~ok, _NOT_AN_INTEGER)
    return np.where(ok, a, 0).astype(np.int64)


def person_ids(values, n: int, reasons: np.ndarray) -> np.ndarray:
    """A column of people's ids: integers (``NotAnInteger``) in ``[0, MAX_ID)`` (``InvalidId``)."""
    if type(values) is int and 0 <= values < MAX_ID:  # one valid id for the whole batch
        return np.full(n, values, np.int64)
    out = integers(values, n, reasons)
    refuse(reasons, out.view(np.uint64) >= MAX_ID, _INVALID_ID)  # a negative id reads as a huge unsigned one
    return out


def times(values, n: int, reasons: np.ndarray) -> np.ndarray:
    """A ``float64`` column of minutes; a time that is not a finite number is refused (``InvalidTime``, slot 0)."""
    if not isinstance(values, np.ndarray):
        if type(values) in (int, float) and math.isfinite(values):  # one time for the whole batch
            return np.full(n, float(values), np.float64)
        return _one_by_one(values, n, reasons, as_time, _INVALID_TIME, np.float64, 0.0)
    a = _shaped(values, n)
    kind = a.dtype.kind
    if kind == "O":
        return _one_by_one(a, n, reasons, as_time, _INVALID_TIME, np.float64, 0.0)
    if kind in "iu":
        return a.astype(np.float64)
    if kind != "f":  # bools, strings, bytes, dates, complex numbers
        refuse(reasons, np.ones(n, np.bool_), _INVALID_TIME)
        return np.zeros(n, np.float64)
    if math.isfinite(np.add.reduce(a, dtype=np.float64)):  # a NaN or an infinity makes the sum one
        return np.ascontiguousarray(a, np.float64)
    ok = np.isfinite(a)
    if ok.all():  # finite, but their sum overflowed
        return np.ascontiguousarray(a, np.float64)
    refuse(reasons, ~ok, _INVALID_TIME)
    return np.where(ok, a, 0.0).astype(np.float64)


def _shaped(a: np.ndarray, n: int) -> np.ndarray:
    if a.ndim == 0:
        return np.full(n, a[()], a.dtype)
    if a.shape != (n,):
        raise ValueError(f"expected {n} values, got shape {a.shape}")
    return a


def _one_by_one(values, n, reasons, read, code, dtype, missing) -> np.ndarray:
    if np.ndim(values) == 0:  # a scalar for the whole batch
        value = read(values)
        if value is None:
            refuse(reasons, np.ones(n, np.bool_), code)
        return np.full(n, missing if value is None else value, dtype)
    if np.shape(values) != (n,):
        raise ValueError(f"expected {n} values, got shape {np.shape(values)}")
    read_values = [read(v) for v in values]
    ok = np.array([v is not None for v in read_values], np.bool_)
    refuse(reasons, ~ok, code)
    return np.array([missing if v is None else v for v in read_values], dtype)
