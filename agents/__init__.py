"""The populations: residents, sensors, staff and facilities.

Each population is struct-of-arrays state plus per-agent step rules compiled
with numba; no Python object per agent.  Rules draw randomness only from
``twin.rng`` (counter-based), so results do not depend on thread count.
"""
