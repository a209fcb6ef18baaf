"""twin.rng: counter-based draws are pure, uniform, correctly distributed and independent.

Statistical tests use fixed seeds (so they are deterministic) and a stated
significance level; a well-behaved generator fails a given one with
probability ``ALPHA`` over the choice of seed, so a failure here is a real
defect, not flakiness.
"""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import njit
from scipy import stats

from twin import rng

ALPHA = 1e-3
N = 40_000
MASK = (1 << 64) - 1
U64 = st.integers(0, (1 << 63) - 1)  # the kernels take int64 coordinates


# ----------------------------------------------------------- the naive twin
def _mix_ref(z):
    """splitmix64's finaliser on Python ints, masked by hand."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def draw_ref(seed, stream, tick, agent):
    """The hash spelled out: mix the seed, then fold in stream, tick and agent."""
    golden = 0x9E3779B97F4A7C15
    h = _mix_ref((seed + golden) & MASK)
    for coordinate in (stream, tick, agent):
        h = _mix_ref(h ^ ((coordinate + golden) & MASK))
    return h


# ------------------------------------------------- vectorised sample helpers
@njit(cache=True)
def _grid_uniform(seed, stream, ticks, agents):
    out = np.empty((ticks.shape[0], agents.shape[0]))
    for i in range(ticks.shape[0]):
        for j in range(agents.shape[0]):
            out[i, j] = rng.uniform(seed, stream, ticks[i], agents[j])
    return out


@njit(cache=True)
def _sample(which, param, seed, stream, n):
    """``n`` draws of one helper along the agent axis (tick fixed at 7)."""
    out = np.empty(n)
    for a in range(n):
        if which == 0:
            out[a] = rng.uniform(seed, stream, 7, a)
        elif which == 1:
            out[a] = rng.exponential(param, seed, stream, 7, a)
        elif which == 2:
            out[a] = rng.poisson(param, seed, stream, 7, a)
        elif which == 3:
            out[a] = rng.choice(int(param), seed, stream, 7, a)
        elif which == 4:
            out[a] = rng.bernoulli(param, seed, stream, 7, a)
        else:
            out[a] = rng.normal(seed, stream, 7, a)
    return out


UNIFORM, EXPONENTIAL, POISSON, CHOICE, BERNOULLI, NORMAL = range(6)


# ------------------------------------------------------------------- purity
@given(U64, U64, U64, U64)
def test_draw_equals_the_spelled_out_splitmix_hash(seed, stream, tick, agent):
    assert int(rng.draw(seed, stream, tick, agent)) == draw_ref(seed, stream, tick, agent)


@given(U64, U64, U64, U64)
def test_uniform_is_the_top_53_bits_of_the_draw(seed, stream, tick, agent):
    assert rng.uniform(seed, stream, tick, agent) == (draw_ref(seed, stream, tick, agent) >> 11) / 2.0**53


@given(U64, U64, U64, U64)
def test_a_keyed_draw_is_the_same_draw(seed, stream, tick, agent):
    """A kernel that works a tick's key out once (rng.tick_key) gets the draws it would have had."""
    key = np.uint64(rng.tick_key(seed, stream, tick))  # (numba hands a uint64 back to Python as an int)
    assert int(rng.draw_keyed(key, agent)) == draw_ref(seed, stream, tick, agent)
    assert rng.uniform_keyed(key, agent) == (draw_ref(seed, stream, tick, agent) >> 11) / 2.0**53


def test_tick_keys_are_each_ticks_key():
    keys = rng.tick_keys(7, 301, 2**40, 30)
    assert [int(k) for k in keys] == [int(rng.tick_key(7, 301, 2**40 + k)) for k in range(30)]


def test_draws_do_not_depend_on_evaluation_order_or_chunking():
    ticks, agents = np.arange(50), np.arange(80)
    whole = _grid_uniform(3, 1, ticks, agents)
    # reversed order, and agents in two chunks, must give the very same numbers
    reversed_ = _grid_uniform(3, 1, ticks[::-1], agents[::-1])[::-1, ::-1]
    chunked = np.hstack([_grid_uniform(3, 1, ticks, agents[:33]), _grid_uniform(3, 1, ticks, agents[33:])])
    assert np.array_equal(whole, reversed_)
    assert np.array_equal(whole, chunked)
    assert np.array_equal(whole, _grid_uniform(3, 1, ticks, agents))  # and again


def test_each_coordinate_changes_the_draw():
    base = rng.draw(1, 2, 3, 4)
    for changed in [(9, 2, 3, 4), (1, 9, 3, 4), (1, 2, 9, 4), (1, 2, 3, 9)]:
        assert rng.draw(*changed) != base
    # the coordinates are not interchangeable: swapping two must change the value
    assert rng.draw(1, 2, 4, 3) != base and rng.draw(2, 1, 3, 4) != base


# ------------------------------------------------------------- distributions
@pytest.mark.parametrize("seed", [0, 20260101])
def test_uniform_lies_in_unit_interval_and_passes_ks_and_chi_square(seed):
    u = _sample(UNIFORM, 0.0, seed, 5, N)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert stats.kstest(u, "uniform").pvalue > ALPHA
    counts = np.bincount((u * 100).astype(int), minlength=100)
    assert stats.chisquare(counts).pvalue > ALPHA


def test_uniform_along_the_tick_and_seed_axes_passes_ks():
    along_ticks = _grid_uniform(11, 0, np.arange(N), np.array([42]))[:, 0]
    along_seeds = np.array([rng.uniform(s, 0, 0, 0) for s in range(5_000)])
    assert stats.kstest(along_ticks, "uniform").pvalue > ALPHA
    assert stats.kstest(along_seeds, "uniform").pvalue > ALPHA


def _python(kernel):
    """The kernel's own Python source (what ``NUMBA_DISABLE_JIT=1`` runs); it looks ``rng``'s globals up."""
    return getattr(kernel, "py_func", kernel)


@pytest.mark.parametrize("hashed, u", [(MASK, 1.0 - 2.0**-53), (0, 0.0)])
def test_uniform_and_exponential_at_the_extreme_draws(monkeypatch, hashed, u):
    # rng's own conversion code, with the hash replaced by its largest and smallest outputs:
    # the largest maps to 1 - 2**-53 (53 bits, not float(draw) / 2**64, which rounds to 1.0),
    # so log(1 - u) stays finite
    assert float(np.uint64(MASK)) / 2.0**64 == 1.0
    monkeypatch.setattr(rng, "draw_keyed", lambda key, agent: np.uint64(hashed))
    monkeypatch.setattr(rng, "uniform_keyed", _python(rng.uniform_keyed))
    monkeypatch.setattr(rng, "uniform", _python(rng.uniform))
    monkeypatch.setattr(rng, "exponential_keyed", _python(rng.exponential_keyed))
    assert rng.uniform(1, 2, 3, 4) == u
    assert _python(rng.exponential)(2.0, 1, 2, 3, 4) == pytest.approx(-2.0 * math.log1p(-u), rel=1e-12)
    assert math.isfinite(_python(rng.exponential)(2.0, 1, 2, 3, 4))


def _within(estimate, expected, standard_error, k=5.0):
    return abs(estimate - expected) < k * standard_error


@pytest.mark.parametrize("mean", [0.5, 30.0])
def test_exponential_mean_and_shape(mean):
    x = _sample(EXPONENTIAL, mean, 9, 6, N)
    assert x.min() >= 0.0 and np.isfinite(x).all()
    assert _within(x.mean(), mean, mean / math.sqrt(N))
    assert stats.kstest(x, "expon", args=(0, mean)).pvalue > ALPHA


@pytest.mark.parametrize("lam", [0.3, 4.0, 25.0, 59.0, 61.0, 400.0])
def test_poisson_mean_and_variance(lam):
    # both sides of the switch from inversion (<= 60) to the rounded normal
    k = _sample(POISSON, lam, 13, 7, N)
    assert (k >= 0).all() and np.array_equal(k, np.round(k))
    assert _within(k.mean(), lam, math.sqrt(lam / N))
    # Var(s^2) ~ (mu4 - sigma^4) / n with mu4 = lam (1 + 3 lam) for a Poisson
    assert _within(k.var(ddof=1), lam, math.sqrt((lam + 2 * lam * lam) / N))


def test_poisson_of_non_positive_mean_is_zero():
    assert rng.poisson(0.0, 1, 2, 3, 4) == 0
    assert rng.poisson(-2.0, 1, 2, 3, 4) == 0


def test_poisson_small_mean_matches_the_pmf():
    lam = 2.5
    k = _sample(POISSON, lam, 17, 8, N).astype(int)
    observed = np.bincount(np.minimum(k, 8), minlength=9)
    pmf = stats.poisson.pmf(np.arange(8), lam)
    expected = np.append(pmf, 1 - pmf.sum()) * N
    assert stats.chisquare(observed, expected).pvalue > ALPHA


def test_choice_is_uniform_over_its_range():
    c = _sample(CHOICE, 7, 19, 9, N).astype(int)
    assert c.min() == 0 and c.max() == 6
    assert stats.chisquare(np.bincount(c, minlength=7)).pvalue > ALPHA


def test_bernoulli_frequency():
    b = _sample(BERNOULLI, 0.3, 23, 10, N)
    assert _within(b.mean(), 0.3, math.sqrt(0.3 * 0.7 / N))


def test_normal_mean_variance_and_shape():
    z = _sample(NORMAL, 0.0, 29, 11, N)
    assert _within(z.mean(), 0.0, 1 / math.sqrt(N))
    assert _within(z.var(ddof=1), 1.0, math.sqrt(2 / N))
    assert stats.kstest(z, "norm").pvalue > ALPHA


# --------------------------------------------------------------- independence
def _correlation_is_negligible(x, y):
    # under independence r ~ N(0, 1/n); 4.5 sigma is about ALPHA / 100 two-sided
    r = np.corrcoef(x, y)[0, 1]
    return abs(r) < 4.5 / math.sqrt(len(x))


def test_adjacent_agents_are_uncorrelated():
    u = _grid_uniform(31, 0, np.arange(200), np.arange(201))
    assert _correlation_is_negligible(u[:, :-1].ravel(), u[:, 1:].ravel())


def test_adjacent_ticks_are_uncorrelated():
    u = _grid_uniform(37, 0, np.arange(201), np.arange(200))
    assert _correlation_is_negligible(u[:-1].ravel(), u[1:].ravel())


def test_streams_and_seeds_are_uncorrelated():
    ticks, agents = np.arange(100), np.arange(200)
    a = _grid_uniform(41, 0, ticks, agents).ravel()
    assert _correlation_is_negligible(a, _grid_uniform(41, 1, ticks, agents).ravel())
    assert _correlation_is_negligible(a, _grid_uniform(42, 0, ticks, agents).ravel())


def test_adjacent_agent_pairs_fill_the_unit_square_evenly():
    # correlation only sees linear dependence; a 10x10 chi-square on pairs sees more
    u = _grid_uniform(43, 0, np.arange(200), np.arange(201))
    x, y = u[:, :-1].ravel(), u[:, 1:].ravel()
    cells = np.bincount((x * 10).astype(int) * 10 + (y * 10).astype(int), minlength=100)
    assert stats.chisquare(cells).pvalue > ALPHA


def test_uniforms_at_draws_the_agents_own_uniforms():
    import numpy as np

    from twin import rng

    agents = np.array([4_999, 0, 17, 17, 2_500], np.int64)
    assert np.array_equal(rng.uniforms_at(7, 3, 11, agents), rng.uniforms(7, 3, 11, 5_000)[agents])
    assert not np.array_equal(rng.uniforms_at(7, 3, 11, agents), rng.uniforms_at(7, 3, 12, agents))


def test_the_mixing_round_is_inlined_into_a_kernel_by_llvm():
    """``_mix`` is compiled on its own (a cold start compiles less) but no kernel calls it at run time:
    a kernel compiled here, uncached so its code can be read, draws without a call.  (With
    ``NUMBA_OPT=0``, which inlines nothing, the same kernel makes three calls and this fails.)"""
    draws = njit(rng.uniforms.py_func)
    assert np.array_equal(draws(3, 7, 11, 5), rng.uniforms(3, 7, 11, 5))
    (ir,) = draws.inspect_llvm().values()
    calls = [line.strip() for line in ir.splitlines() if "call" in line and "_mix" in line]
    assert calls == [], calls
