"""Dispatch policies: which worker takes the next ticket.

A dispatch policy is a compiled *score*; the staff kernel gives each new
ticket, in arrival order, to the worker with the lowest score (ties go to the
lowest worker id).  Scores take plain numbers only, so the same functions can
be compiled for the GPU::

    score(t, x, y, skill_needed, free_at, wx, wy, wskills, walk_m_per_min) -> float

``t`` the ticket's arrival minute, ``(x, y)`` its place, ``free_at`` when the
worker is next free, ``(wx, wy)`` where the worker will be then.

The staff kernel calls :func:`score` with the policy's ``code``, which
branches to the policy's own kernel.  (Passing the kernel itself as an
argument would be neater, but numba then misses its cache in every new
process and the cache grows with each run.)  A new policy is one more class
here, registered with ``@dispatch_policy``, one more branch in :func:`score`,
and its name in the scenario config.
"""
import math

from twin._jit import kernel

from policies.base import Policy

DISPATCH_POLICIES: dict[str, type] = {}
UNABLE = 1e300  # a score meaning "cannot take this ticket"


def dispatch_policy(cls):
    """Register a dispatch policy class under its ``name``."""
    DISPATCH_POLICIES[cls.name] = cls
    return cls


@kernel
def _fifo_score(t, x, y, skill_needed, free_at, wx, wy, wskills, walk):
    # whoever is free first; arrival order is the queue order
    return free_at


@kernel
def _nearest_score(t, x, y, skill_needed, free_at, wx, wy, wskills, walk):
    # a free worker always beats a busy one; among free ones, the nearest
    travel = math.hypot(x - wx, y - wy) / walk
    if free_at <= t:
        return travel
    return 1e9 + free_at + travel


@kernel
def _skill_score(t, x, y, skill_needed, free_at, wx, wy, wskills, walk):
    # only workers with the skill; among them, nearest available
    if (wskills >> skill_needed) & 1 == 0:
        return UNABLE
    return _nearest_score(t, x, y, skill_needed, free_at, wx, wy, wskills, walk)


FIFO, NEAREST, SKILL = 0, 1, 2


@kernel
def score(code, t, x, y, skill_needed, free_at, wx, wy, wskills, walk):
    """The score of policy ``code`` (lower wins)."""
    if code == FIFO:
        return _fifo_score(t, x, y, skill_needed, free_at, wx, wy, wskills, walk)
    if code == NEAREST:
        return _nearest_score(t, x, y, skill_needed, free_at, wx, wy, wskills, walk)
    return _skill_score(t, x, y, skill_needed, free_at, wx, wy, wskills, walk)


@dispatch_policy
class FifoDispatch(Policy):
    """First come, first served to the first free worker (the M/M/c queue discipline)."""

    name = "fifo"
    code = FIFO


@dispatch_policy
class NearestDispatch(Policy):
    """The nearest free worker; if none is free, the one who can be there first."""

    name = "nearest"
    code = NEAREST


@dispatch_policy
class SkillDispatch(Policy):
    """The nearest free worker with the ticket category's skill (falls back to anyone)."""

    name = "skill"
    code = SKILL
