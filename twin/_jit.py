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

from numba import njit  # noqa: E402

#: Sequential kernels: services run commands in order, so no ``parallel``.
kernel = njit(cache=True, nogil=True)

#: Per-agent rules that are independent across agents.
parallel_kernel = njit(cache=True, nogil=True, parallel=True)

#: Small device-style helpers inlined into both of the above.
inline = njit(cache=True, nogil=True, inline="always")
