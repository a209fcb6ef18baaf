"""Snapshots of the services' state, so that a store with years of events opens in seconds.

Replaying a community-year takes seconds; ten years would take a minute.
A snapshot keeps, at one point of the log, the events so far (as one
array) and the state of the four services, so opening a store restores the
snapshot and replays only the events after it.

A snapshot is used only when its **fingerprint** matches: the policies the
services are opened with and the source of the services' rules
(``twin/services/*.py``).  Otherwise the store is replayed in full, which
either reproduces the log or fails loudly (``ReplayMismatch``): a snapshot
never stands in for rules that have changed.  Tests check a restored
snapshot against a full replay.

State is pickled with the shared event log (and its details, which the
repair desk reads in place) replaced by references, and read
back by an unpickler that builds only numpy arrays, plain containers and the
services' own classes: a damaged or hostile snapshot cannot run code.
"""
import hashlib
import io
import pickle
from pathlib import Path

import numpy as np
from numba.typed import Dict

from twin._jit import kernel

SERVICE_NAMES = ("points", "timebank", "repair", "voting")
_RULES = Path(__file__).resolve().parent
_NUMPY_MODULES = frozenset({"numpy", "numpy._core.multiarray", "numpy.core.multiarray", "numpy._core.numeric",
                            "numpy.core.numeric", "numpy.dtypes"})
_NUMPY_NAMES = frozenset({"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}) | {
    f"{k}{b}DType" for k in ("Int", "UInt", "Float", "Bool", "Void", "Str", "Bytes", "Complex", "Object")
    for b in ("", "8", "16", "32", "64", "128")}
_COLLECTIONS = frozenset({"OrderedDict", "defaultdict", "deque", "Counter"})
_SAFE_BUILTINS = frozenset({"set", "frozenset", "dict", "list", "tuple", "slice", "complex", "bytearray",
                            "range", "bool", "int", "float", "str", "bytes", "object"})


def fingerprint(policies) -> str:
    """What a snapshot is valid for: the policies and the source of the services' rules."""
    h = hashlib.sha256(repr(policies).encode())
    for path in sorted(_RULES.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def dumps(services) -> bytes:
    """The services' state (not the log) as bytes."""
    out = io.BytesIO()
    _Pickler(out, services.log, protocol=5).dump({name: getattr(services, name).__dict__ for name in SERVICE_NAMES})
    return out.getvalue()


def restore(services, blob: bytes) -> None:
    """Put the state of :func:`dumps` back into ``services`` (in place; their log is kept)."""
    state = _Unpickler(io.BytesIO(blob), services.log).load()
    if set(state) != set(SERVICE_NAMES):
        raise pickle.UnpicklingError(f"a snapshot holds {sorted(state)}, not the four services")
    for name in SERVICE_NAMES:
        getattr(services, name).__dict__.update(state[name])


class _Pickler(pickle.Pickler):
    """Pickles the services' state; the shared log, and its details that services alias, by reference."""

    def __init__(self, file, log, **kwargs):
        super().__init__(file, **kwargs)
        self._shared = {id(log): "log", id(log.details): "log.details"}

    def persistent_id(self, obj):
        return self._shared.get(id(obj))

    def reducer_override(self, obj):
        if isinstance(obj, Dict):  # the points' claims: a typed set of (resident, activity, occurrence)
            keys = np.empty((len(obj), 3), np.int64)
            _claim_keys(obj, keys)
            return _claims_from, (keys,)
        return NotImplemented


def _claims_from(keys: np.ndarray):
    from twin.services.points import new_claims

    claims = new_claims()
    _fill_claims(claims, np.ascontiguousarray(keys, np.int64))
    return claims


@kernel
def _claim_keys(claims, out):
    i = 0
    for key in claims.keys():
        out[i, 0], out[i, 1], out[i, 2] = key
        i += 1


@kernel
def _fill_claims(claims, keys):
    for i in range(keys.shape[0]):
        claims[(keys[i, 0], keys[i, 1], keys[i, 2])] = True


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, log):
        super().__init__(file)
        self._log = log

    def persistent_load(self, pid):
        if pid == "log":
            return self._log
        if pid == "log.details":
            return self._log.details
        raise pickle.UnpicklingError(f"unknown reference {pid!r} in a snapshot")

    def find_class(self, module, name):
        if (module, name) == (__name__, "_claims_from"):
            return _claims_from
        allowed = (module in _NUMPY_MODULES and name in _NUMPY_NAMES or
                   module == "collections" and name in _COLLECTIONS or
                   module == "copyreg" and name == "_reconstructor" or
                   module == "builtins" and name in _SAFE_BUILTINS or
                   module.startswith("twin.services."))
        found = super().find_class(module, name) if allowed else None
        if found is None or module.startswith("twin.services.") and not isinstance(found, type):
            raise pickle.UnpicklingError(f"a snapshot may not build {module}.{name}")
        return found
