"""Build a community: buildings on a map, households, residents and their social network.

Everything is generated from counter-based draws keyed by the seed, so the same
seed gives the same community at any size and thread count.  The social
network (household ties, building neighbours, small-world friendships along
the street) is generated straight into CSR arrays (``indptr``, ``indices``),
which is what the resident rule reads; :meth:`Community.graph` gives the
networkx view for analysis.
"""
from dataclasses import dataclass

import numpy as np

from twin import rng
from twin._jit import kernel

# draw streams of the community build
S_ELDER_HH, S_ALONE, S_HH_SIZE, S_AGE, S_APP, S_ENGAGE, S_BUILDING_TIE, S_REWIRE, S_ELEVATOR = range(100, 109)

FLAG_ADULT, FLAG_ELDER, FLAG_APP, FLAG_OLD_ELDER = 1, 2, 4, 8
OLD_ELDER_AGE = 75


@dataclass
class Community:
    """Struct-of-arrays state of the place and its people."""

    # buildings
    building_x: np.ndarray      # float32, metres
    building_y: np.ndarray
    has_elevator: np.ndarray    # bool
    # households
    hh_building: np.ndarray     # int32
    hh_first: np.ndarray        # int32: index of the household's first resident (residents are contiguous)
    hh_size: np.ndarray         # int8
    hh_alone_elder: np.ndarray  # bool
    # residents
    household: np.ndarray       # int32
    age: np.ndarray             # uint8
    flags: np.ndarray           # uint8: FLAG_* bits
    engagement: np.ndarray      # float32 0..1
    # social network, CSR over residents
    indptr: np.ndarray          # int64
    indices: np.ndarray         # int32

    @property
    def n_residents(self) -> int:
        return len(self.household)

    @property
    def n_households(self) -> int:
        return len(self.hh_building)

    @property
    def n_buildings(self) -> int:
        return len(self.building_x)

    def adults(self) -> np.ndarray:
        return (self.flags & FLAG_ADULT) != 0

    def graph(self):
        """The social network as a networkx Graph (for analysis; the engine reads the CSR)."""
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(range(self.n_residents))
        src = np.repeat(np.arange(self.n_residents), np.diff(self.indptr))
        g.add_edges_from(zip(src.tolist(), self.indices.tolist()))
        return g

    def nbytes(self) -> int:
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))


def build_community(cfg, seed: int, elevator_share: float | None = None) -> Community:
    """The community described by ``cfg`` (a ``CommunityConfig``).

    ``elevator_share`` is the share of buildings with an elevator (default: the
    ``facilities`` section's default).
    """
    if elevator_share is None:
        from twin.config import FacilitiesConfig

        elevator_share = FacilitiesConfig().elevator_share
    H, B = cfg.households, cfg.buildings
    side = int(np.ceil(np.sqrt(B)))
    b = np.arange(B)
    building_x = ((b % side) * cfg.spacing_m).astype(np.float32)
    building_y = ((b // side) * cfg.spacing_m).astype(np.float32)
    has_elevator = rng.uniforms(seed, S_ELEVATOR, 0, B) < elevator_share
    # households fill buildings in order (so a building's residents are contiguous)
    hh_building = (np.arange(H) * B // H).astype(np.int32)
    # an elder-headed household is one or two elders; others are 1..6 people
    elder_hh_share = min(0.95, cfg.elder_share * cfg.mean_household_size / 1.7)
    elder_hh = rng.uniforms(seed, S_ELDER_HH, 0, H) < elder_hh_share
    alone = elder_hh & (rng.uniforms(seed, S_ALONE, 0, H) < cfg.elders_alone_share)
    mean_other = max(1.0, (cfg.mean_household_size - elder_hh_share * (2 - cfg.elders_alone_share))
                     / max(1e-9, 1 - elder_hh_share))
    size = _household_sizes(seed, H, mean_other)
    size = np.where(elder_hh, np.where(alone, 1, 2), size).astype(np.int8)
    hh_first = np.zeros(H, np.int32)
    hh_first[1:] = np.cumsum(size)[:-1]
    household = np.repeat(np.arange(H, dtype=np.int32), size)
    age, flags, engagement = _residents(seed, household, elder_hh, hh_first, cfg.app_literacy_adult,
                                        cfg.app_literacy_elder)
    res_building = hh_building[household]
    b_first = np.searchsorted(res_building, np.arange(B)).astype(np.int64)
    b_last = np.searchsorted(res_building, np.arange(B), side="right").astype(np.int64)
    indptr, indices = social_network(seed, household, hh_first, size, res_building, b_first, b_last,
                                     cfg.friends_per_resident, cfg.rewire_p)
    return Community(building_x, building_y, has_elevator, hh_building, hh_first, size, alone,
                     household, age, flags, engagement, indptr, indices)


@kernel
def _household_sizes(seed, H, mean):
    # sequential, as _residents: built once per run, and a parallel loop costs seconds more to compile
    out = np.empty(H, np.int8)
    for h in range(H):
        k = 1 + rng.poisson(mean - 1.0, seed, S_HH_SIZE, 0, h)
        out[h] = min(k, 6)
    return out


@kernel
def _residents(seed, household, elder_hh, hh_first, app_adult, app_elder):
    """Each resident's age, flags and engagement: a few draws each, once per run; sequential, since a
    parallel loop costs seconds more to compile, and the loop is a few draws per resident."""
    n = household.shape[0]
    age = np.empty(n, np.uint8)
    flags = np.zeros(n, np.uint8)
    engagement = np.empty(n, np.float32)
    for i in range(n):
        h = household[i]
        u = rng.uniform(seed, S_AGE, 0, i)
        if elder_hh[h]:
            a = 60 + int(u * 31)
        elif i == hh_first[h] or u < 0.6:
            a = 18 + int(rng.uniform(seed, S_AGE, 1, i) * 42)  # first member is an adult
        else:
            a = int(rng.uniform(seed, S_AGE, 1, i) * 18)
        age[i] = a
        f = 0
        if a >= 18:
            f |= 1
        if a >= 60:
            f |= 2
        if a >= 75:
            f |= 8
        p_app = app_elder if a >= 60 else app_adult
        if a >= 12 and rng.uniform(seed, S_APP, 0, i) < p_app:
            f |= 4
        flags[i] = f
        engagement[i] = rng.uniform(seed, S_ENGAGE, 0, i) ** 1.5
    return age, flags, engagement


@kernel
def _ties(seed, household, hh_first, hh_size, res_building, b_first, b_last, k, rewire_p):
    """Undirected ties, each once from one end: household cliques, two random building neighbours, a
    rewired ring of friends (repeats possible; :func:`social_network` removes them)."""
    n = household.shape[0]
    half = k // 2
    cap = n * (6 + 2 + half) * 2
    src = np.empty(cap, np.int64)
    dst = np.empty(cap, np.int64)
    m = 0
    for i in range(n):
        h = household[i]
        for j in range(hh_first[h], hh_first[h] + hh_size[h]):
            if j > i:
                src[m] = i; dst[m] = j; m += 1
        b = res_building[i]
        span = b_last[b] - b_first[b]
        for t in range(2):
            j = b_first[b] + rng.choice(span, seed, S_BUILDING_TIE, t, i)
            if j != i and household[j] != h:
                src[m] = i; dst[m] = j; m += 1
        for t in range(1, half + 1):
            j = (i + t) % n
            if rng.uniform(seed, S_REWIRE, t, i) < rewire_p:
                j = rng.choice(n, seed, S_REWIRE, t + 1000, i)
            if j != i:
                src[m] = i; dst[m] = j; m += 1
    return src[:m], dst[:m]


def social_network(seed, household, hh_first, hh_size, res_building, b_first, b_last, k, rewire_p):
    """The residents' ties (:func:`_ties`) both ways as CSR (``indptr``, ``indices``), repeats removed,
    each row sorted.

    The tie list is made in a kernel, the CSR in NumPy: numba's ``np.unique`` costs seconds of
    compiling on every cold start, and NumPy's sort is as fast."""
    n = household.shape[0]
    src, dst = _ties(seed, household, hh_first, hh_size, res_building, b_first, b_last, k, rewire_p)
    key = np.unique(np.concatenate((src * n + dst, dst * n + src)))
    s = key // n
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(s, minlength=n), out=indptr[1:])
    return indptr, (key - s * n).astype(np.int32)
