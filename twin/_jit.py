"""JIT flags in one place.

Every compiled kernel in the package is decorated with ``kernel`` (sequential)
or ``parallel_kernel`` (``prange`` over agents) so that caching and fastmath
policy are decided here and nowhere else.  ``NUMBA_DISABLE_JIT=1`` turns all of
them into plain Python for coverage runs.
"""
import os

# The engine launches a few parallel regions per simulated day.  OpenMP's
# default busy-waiting makes each launch cost milliseconds when the cores are
# shared (measured 5 ms vs 30 us per launch on 2 cores); passive waiting keeps
# launches cheap.  Must be set before the OpenMP runtime first loads.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import sys  # noqa: E402

from numba import njit  # noqa: E402


def _load_numpy_support_without_the_blas_probe() -> None:
    """Let numba load its NumPy support now, with its BLAS probe answered "no".

    The first kernel a process compiles or loads makes numba import its NumPy
    support, which probes for BLAS by importing ``scipy.linalg`` (0.3-0.5 s of
    every start).  The probe decides one thing: whether ``np.convolve`` and
    ``np.correlate`` inside kernels take their inner products from BLAS.  No
    kernel here calls them, so the one import is blocked while that module
    loads; ``np.dot`` and ``np.linalg`` in anyone's kernels still find BLAS
    when they are compiled, and ``scipy.linalg`` imports as usual afterwards.
    """
    probe = "scipy.linalg.cython_blas"
    if "numba.np.arraymath" in sys.modules or probe in sys.modules:
        return  # loaded already, or scipy.linalg is: nothing to save
    sys.modules[probe] = None  # an import of it raises ImportError
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        if probe in sys.modules and sys.modules[probe] is None:
            del sys.modules[probe]


_load_numpy_support_without_the_blas_probe()

#: Sequential kernels: services run commands in order, so no ``parallel``.
kernel = njit(cache=True, nogil=True)

#: Per-agent rules that are independent across agents.
parallel_kernel = njit(cache=True, nogil=True, parallel=True)

#: Small device-style helpers inlined into both of the above.
inline = njit(cache=True, nogil=True, inline="always")
