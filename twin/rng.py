"""Counter-based randomness: every draw is a pure function of its coordinates.

``draw(seed, stream, tick, agent)`` hashes the four integers with splitmix64
mixing.  Because no generator state is carried between draws, results do not
depend on thread count, chunking, iteration order or backend (CPU or CUDA):
the same seed and configuration always give the same run.

This module is a leaf: it imports nothing from the rest of the package, and
its functions are plain ``numba.njit`` functions that can equally be compiled
with ``numba.cuda.jit(device=True)``.

The mixing round :func:`_mix` is compiled once, on its own, and LLVM inlines it
into every kernel when the kernel is finalised (no kernel calls it at run
time).  numba's ``inline="always"`` on it copied its IR into each of the
hundreds of places a draw is made before typing them again: a cold start
took about 30% longer (31.9-33.1 s against 24.5-25.1 s on two
processes, three alternating pairs).  The wrappers below stay inlined by numba:
compiled on their own they would be compiled again for every stream constant a
caller passes (numba compiles a called kernel for literal arguments), about 80
signatures.

Streams name *what* a draw is for, so that adding a new decision never shifts
the numbers an existing one sees.  Each caller owns its stream constants.
"""
import math

import numpy as np
from numba import njit

_MASK = 0xFFFFFFFFFFFFFFFF
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INV_2_53 = 1.0 / 9007199254740992.0
_NORMAL_SALT = 0x6E6F726D616C  # "normal"


@njit(cache=True)  # not inline="always": see the module docstring
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def tick_key(seed, stream, tick):
    """The part of a draw's hash that (seed, stream, tick) fixes, shared by every agent's draw there.

    A kernel drawing for many agents at each of a few ticks works the keys out
    once (:func:`tick_keys`) and finishes each draw with :func:`uniform_keyed`:
    one mixing round a draw instead of four, the same numbers.
    """
    h = _mix(np.uint64(seed) + _GOLDEN)
    h = _mix(h ^ (np.uint64(stream) + _GOLDEN))
    return _mix(h ^ (np.uint64(tick) + _GOLDEN))


@njit(cache=True, inline="always")
def draw_keyed(key, agent):
    """:func:`draw` from its :func:`tick_key`."""
    return _mix(np.uint64(key) ^ (np.uint64(agent) + _GOLDEN))


@njit(cache=True, inline="always")
def draw(seed, stream, tick, agent):
    """A uniformly distributed ``uint64`` keyed by (seed, stream, tick, agent)."""
    return draw_keyed(tick_key(seed, stream, tick), agent)


@njit(cache=True, inline="always")
def uniform_keyed(key, agent):
    """:func:`uniform` from its :func:`tick_key`."""
    return float(draw_keyed(key, agent) >> np.uint64(11)) * _INV_2_53


@njit(cache=True, inline="always")
def uniform(seed, stream, tick, agent):
    """A float in [0, 1) with 53 random bits."""
    return uniform_keyed(tick_key(seed, stream, tick), agent)


@njit(cache=True, inline="always")
def bernoulli(p, seed, stream, tick, agent):
    """True with probability ``p``."""
    return uniform(seed, stream, tick, agent) < p


@njit(cache=True, inline="always")
def exponential_keyed(mean, key, agent):
    """:func:`exponential` from its :func:`tick_key`."""
    return -mean * math.log(1.0 - uniform_keyed(key, agent))


@njit(cache=True, inline="always")
def exponential(mean, seed, stream, tick, agent):
    """An exponential variate with the given mean (inverse transform)."""
    return exponential_keyed(mean, tick_key(seed, stream, tick), agent)


@njit(cache=True, inline="always")
def normal(seed, stream, tick, agent):
    """A standard normal variate (Box-Muller on two sub-draws)."""
    u1 = uniform(seed, stream, tick, agent)
    u2 = uniform(seed ^ _NORMAL_SALT, stream, tick, agent)  # a second, independent draw at the same coordinates
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True, inline="always")
def poisson(lam, seed, stream, tick, agent):
    """A Poisson variate: inversion for small means, a rounded normal for large ones."""
    if lam <= 0.0:
        return 0
    if lam > 60.0:
        k = int(lam + math.sqrt(lam) * normal(seed, stream, tick, agent) + 0.5)
        return k if k > 0 else 0
    u = uniform(seed, stream, tick, agent)
    p = math.exp(-lam)
    cdf = p
    k = 0
    while u > cdf and k < 1000:
        k += 1
        p *= lam / k
        cdf += p
    return k


@njit(cache=True, inline="always")
def choice(n, seed, stream, tick, agent):
    """An integer uniformly in [0, n)."""
    return int(uniform(seed, stream, tick, agent) * n)


@njit(cache=True)
def uniforms(seed, stream, tick, n):
    """``n`` uniforms for agents 0..n-1 (vectorised :func:`uniform`)."""
    key = tick_key(seed, stream, tick)
    out = np.empty(n, np.float64)
    for i in range(n):
        out[i] = uniform_keyed(key, i)
    return out


@njit(cache=True)
def tick_keys(seed, stream, first_tick, n):
    """:func:`tick_key` of ticks ``first_tick .. first_tick + n - 1``."""
    out = np.empty(n, np.uint64)
    for k in range(n):
        out[k] = tick_key(seed, stream, first_tick + k)
    return out


@njit(cache=True)
def uniforms_at(seed, stream, tick, agents):
    """The uniforms of the given agents only: ``uniforms(seed, stream, tick, n)[agents]`` without drawing
    for everyone else (a day's few dozen voters of thousands of residents)."""
    key = tick_key(seed, stream, tick)
    out = np.empty(agents.shape[0], np.float64)
    for j in range(agents.shape[0]):
        out[j] = uniform_keyed(key, agents[j])
    return out
