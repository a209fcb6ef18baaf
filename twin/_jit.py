"""JIT flags in one place.

Every compiled kernel in the package is decorated with ``kernel`` (sequential)
or ``parallel_kernel`` (``prange`` over agents) so that caching and fastmath
policy are decided here and nowhere else.  ``NUMBA_DISABLE_JIT=1`` turns all of
them into plain Python for coverage runs.
"""
from numba import njit

#: Sequential kernels: services run commands in order, so no ``parallel``.
kernel = njit(cache=True, nogil=True)

#: Per-agent rules that are independent across agents.
parallel_kernel = njit(cache=True, nogil=True, parallel=True)

#: Small device-style helpers inlined into both of the above.
inline = njit(cache=True, nogil=True, inline="always")
