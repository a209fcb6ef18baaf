"""Staff: technicians and social workers, their shifts, positions and workload.

Work arrives as jobs (a repair ticket, an alert) with a time and a place.  Jobs
are assigned in arrival order by :func:`assign_jobs`: the dispatch policy's
score picks the worker, the worker starts when free (and on shift), walks
there, and works for the job's service time.  For FIFO with identical workers
and no travel this is exactly the first-come-first-served M/M/c queue, which
is what the queueing-theory tests check against Erlang C.
"""
import math
from dataclasses import dataclass

import numpy as np

from policies.dispatch import score as dispatch_score
from twin._jit import kernel

UNABLE = 1e300


@dataclass
class Staff:
    """Struct-of-arrays state of one kind of worker."""

    free_at: np.ndarray   # float64, minute the worker is next free
    x: np.ndarray         # float64, where the worker will be when free
    y: np.ndarray
    skills: np.ndarray    # int64 bitmask over repair categories
    busy_minutes: np.ndarray  # float64, accumulated work incl. travel

    @classmethod
    def at(cls, n: int, x: float, y: float, skills=None) -> "Staff":
        return cls(np.zeros(n), np.full(n, float(x)), np.full(n, float(y)),
                   np.asarray(skills if skills is not None else np.full(n, -1), np.int64), np.zeros(n))

    def __len__(self):
        return len(self.free_at)


def technician_skills(n: int, n_categories: int) -> np.ndarray:
    """Each technician masters two categories, round robin, so every category is covered."""
    skills = np.zeros(n, np.int64)
    for w in range(n):
        for c in (2 * w, 2 * w + 1):
            skills[w] |= 1 << (c % n_categories)
    if n < (n_categories + 1) // 2:  # too few to cover all by pairs: everyone does everything
        skills[:] = -1
    return skills


@kernel
def next_on_shift(t, start_min, end_min):
    """The first minute >= t inside the daily shift [start_min, end_min)."""
    day = math.floor(t / 1440.0)
    tod = t - day * 1440.0
    if tod < start_min:
        return day * 1440.0 + start_min
    if tod >= end_min:
        return (day + 1) * 1440.0 + start_min
    return t


@kernel
def assign_jobs(t, x, y, skill, service, free_at, wx, wy, wskills, busy,
                shift_start, shift_end, always_on, walk, travel_on, policy,
                out_worker, out_dispatch, out_start, out_done):
    """Assign jobs (sorted by ``t``) to workers; returns nothing, fills ``out_*``.

    ``policy`` is the dispatch policy's code (``policies.dispatch``); the
    lowest score wins, ties to the lowest id; if no worker can take a job, the
    one free first takes it.
    """
    n_w = free_at.shape[0]
    for k in range(t.shape[0]):
        best = -1
        best_s = UNABLE
        for w in range(n_w):
            s = dispatch_score(policy, t[k], x[k], y[k], skill[k], free_at[w], wx[w], wy[w], wskills[w], walk)
            if s < best_s:
                best_s = s
                best = w
        if best < 0:
            best = 0
            for w in range(1, n_w):
                if free_at[w] < free_at[best]:
                    best = w
        t0 = max(t[k], free_at[best])
        if not always_on:
            t0 = next_on_shift(t0, shift_start, shift_end)
        travel = math.hypot(x[k] - wx[best], y[k] - wy[best]) / walk if travel_on else 0.0
        done = t0 + travel + service[k]
        out_worker[k] = best
        out_dispatch[k] = t0
        out_start[k] = t0 + travel
        out_done[k] = done
        busy[best] += done - t0
        free_at[best] = done
        wx[best] = x[k]
        wy[best] = y[k]
