"""Facilities: pipes, wiring, lights and elevators that fail and create repair demand.

Each day every household may have an in-home fault and every building a
public-area or elevator fault.  A fault becomes a ticket when a resident
notices and reports it: the reporter, the delay and the channel are drawn
here from the residents' state (who lives there, who uses the app).

These kernels are sequential on purpose: a day's work is a draw or two per
household, less than what waking the thread pool for a parallel loop costs.
"""
import numpy as np

from twin import rng
from twin._jit import kernel
from agents.community import FLAG_APP, FLAG_ELDER
from twin.services.events import Channel
from twin.services.repair import Category

(S_HH_FAULT, S_HH_FAULT_T, S_HH_CAT, S_REPORTER, S_DELAY, S_CHANNEL, S_PUB_FAULT, S_PUB_T,
 S_ELEV_FAULT, S_ELEV_T, S_PUB_DELAY, S_ELEV_DELAY, S_PUB_REPORTER, S_ELEV_REPORTER) = range(400, 414)

_APP, _HOTLINE, _GRID = int(Channel.app), int(Channel.hotline), int(Channel.grid_worker)
_PLUMBING, _ELECTRICAL, _ELEVATOR, _PUBLIC = (int(Category.plumbing), int(Category.electrical),
                                              int(Category.elevator), int(Category.public_area))


@kernel
def channel_of(seed, flags, resident, key):
    """How a resident reports: the app if they use it, else the hotline or a grid worker."""
    out = np.empty(resident.shape[0], np.int8)
    for k in range(resident.shape[0]):
        f = flags[resident[k]]
        if f & FLAG_APP:
            out[k] = _APP
        elif (f & FLAG_ELDER) or rng.uniform(seed, S_CHANNEL, key, k) < 0.5:
            out[k] = _HOTLINE
        else:
            out[k] = _GRID
    return out


@kernel
def household_faults(seed, day, p_fault, hh_first, hh_size, report_delay_mean,
                     out_t, out_reporter, out_category):
    """At most one in-home fault per household per day; ``out_t`` = report time or -1."""
    base = day * 1440.0
    for h in range(hh_first.shape[0]):
        out_t[h] = -1.0
        if rng.uniform(seed, S_HH_FAULT, day, h) < p_fault:
            t = base + rng.uniform(seed, S_HH_FAULT_T, day, h) * 1440.0
            out_t[h] = t + rng.exponential(report_delay_mean, seed, S_DELAY, day, h)
            out_reporter[h] = hh_first[h] + rng.choice(hh_size[h], seed, S_REPORTER, day, h)
            out_category[h] = _PLUMBING if rng.uniform(seed, S_HH_CAT, day, h) < 0.55 else _ELECTRICAL


@kernel
def building_faults(seed, day, p_public, p_elevator, has_elevator, res_start, res_end, notice_per_hour,
                    out_t, out_reporter, out_category):
    """At most one public-area and one elevator fault per building per day (slots 2b, 2b+1).

    The report delay is the first of the building's residents to notice:
    exponential with rate ``notice_per_hour`` x residents.
    """
    base = day * 1440.0
    for b in range(has_elevator.shape[0]):
        n_res = res_end[b] - res_start[b]
        mean_delay = 60.0 / max(1e-9, notice_per_hour * n_res)
        for slot in range(2):
            s = 2 * b + slot
            out_t[s] = -1.0
            public = slot == 0
            p = p_public if public else (p_elevator if has_elevator[b] else 0.0)
            if n_res > 0 and rng.uniform(seed, S_PUB_FAULT if public else S_ELEV_FAULT, day, b) < p:
                t = base + rng.uniform(seed, S_PUB_T if public else S_ELEV_T, day, b) * 1440.0
                out_t[s] = t + rng.exponential(mean_delay, seed, S_PUB_DELAY if public else S_ELEV_DELAY, day, b)
                out_reporter[s] = res_start[b] + rng.choice(n_res, seed, S_PUB_REPORTER if public else S_ELEV_REPORTER,
                                                            day, b)
                out_category[s] = _PUBLIC if public else _ELEVATOR
