"""Sensors: household water and electricity meters, smoke alarms, building water mains and
trash bins, with hidden truth; and the detectors that read them.

A hidden ground truth (an elder living alone is incapacitated; a building's
pipe bursts) drives the readings, and water meters fail: they drop out
(silent), stick (repeat their last reading) or drift (add a growing bias).

The simulation and the detectors are separate kernels on purpose.  The
simulation (:func:`households_day`, :func:`buildings_day`) writes what the
devices would report, tick by tick, into :class:`DayReadings`; the detectors
(:func:`inactivity_alerts`, :func:`burst_alerts`) see only those arrays.  The
live bridge fills the same arrays from real devices (a silent device is NaN)
and calls the same detectors, so the twin and production detect by one logic.
"""
from dataclasses import dataclass

import math

import numpy as np

from numba import prange

from twin import rng
from twin._jit import inline, kernel, parallel_kernel

(S_INCAP, S_INCAP_T, S_AWAY, S_USE, S_FAULT, S_BURST, S_BURST_T, S_SMOKE, S_SMOKE_T,
 S_BIN) = range(300, 310)

NO_FAULT, DROPOUT, STUCK, DRIFT = 0, 1, 2, 3
DRIFT_LITRES_PER_DAY = 0.5  # how fast a drifting meter's bias grows
CARE_DAYS = 2.0  # after a rescue (or a missed incident) the elder is in care, the meter quiet


@inline
def household_day(h, seed, day, use_keys, tick_min, alone, size, incap_since, care_until, fault,
                  fault_until, last_reading, incap_p, away_p, litres, kwh, drop_p, stuck_p, drift_p, repair_days,
                  faults_on, smoke_p, hourly_use, water, power, electricity, onset_t, smoke_t):
    """Advance household ``h``'s meters by one day: the per-agent rule.

    Writes for the household: ``hourly_use[h, k]`` (true litres per tick), the
    meter's ``water[h, k]`` (what it reports: NaN when silent, the last value
    when stuck, biased when drifting), ``power[h, k]`` (kWh per tick: standby
    plus use while someone is active) and its day total ``electricity[h]``, a
    new incident's ``onset_t`` (or -1) and a smoke alarm time ``smoke_t`` (or -1).

    ``use_keys[k]`` is the water-use draw's :func:`twin.rng.tick_key` for tick
    ``k`` (:func:`use_keys_of`): every household's draw at a tick shares it.
    One plain function for both targets: :func:`households_day` runs it for
    every household on the CPU, ``twin.engine.cuda`` in one GPU thread each
    (no two-argument ``min``/``max`` here: numba's CUDA target fails to type
    them in device code).
    """
    n_ticks = hourly_use.shape[1]
    base = day * 1440.0
    if faults_on:
        if fault[h] != NO_FAULT and fault_until[h] <= base:
            fault[h] = NO_FAULT
        if fault[h] == NO_FAULT:
            u = rng.uniform(seed, S_FAULT, day, h)
            if u < drop_p:
                fault[h] = DROPOUT
                fault_until[h] = base + repair_days * 1440.0
            elif u < drop_p + stuck_p:
                fault[h] = STUCK
                fault_until[h] = base + repair_days * 1440.0
            elif u < drop_p + stuck_p + drift_p:
                fault[h] = DRIFT
                fault_until[h] = base + repair_days * 1440.0
    onset_t[h] = -1.0
    if alone[h] and incap_since[h] < 0 and care_until[h] <= base and \
            rng.uniform(seed, S_INCAP, day, h) < incap_p:
        incap_since[h] = base + rng.uniform(seed, S_INCAP_T, day, h) * 1440.0
        onset_t[h] = incap_since[h]
    away = alone[h] and rng.uniform(seed, S_AWAY, day, h) < away_p
    smoke_t[h] = base + rng.uniform(seed, S_SMOKE_T, day, h) * 1440.0 \
        if rng.uniform(seed, S_SMOKE, day, h) < smoke_p else -1.0
    # the household's state is read once into locals: nothing below writes it until the day's end,
    # and locals let the compiler keep it in registers instead of reloading it every tick
    incap, care, meter, people = incap_since[h], care_until[h], fault[h], size[h]
    last = last_reading[h]
    total = 0.0
    for k in range(n_ticks):
        t0 = base + k * tick_min
        hour = k * tick_min / 60.0
        in_care = care > t0
        present = 1.0
        if incap >= 0:  # only the part of the tick before the fall
            before = (incap - t0) / tick_min
            present = 0.0 if before < 0.0 else (1.0 if before > 1.0 else before)
        use = 0.0
        if not in_care and not (away and 8.0 <= hour < 20.0) and present > 0:
            p = 0.9 if 7.0 <= hour < 22.0 else 0.05
            u = rng.uniform_keyed(use_keys[k], h)  # = rng.uniform(seed, S_USE, day * n_ticks + k, h)
            if u < p:  # water is used; given that, u / p is again uniform and sets the amount
                use = litres * people * (tick_min / 60.0) * present * (0.5 + u / p)
        hourly_use[h, k] = use
        # electricity: standby, plus appliances in the ticks water is used
        used_kwh = kwh * (tick_min / 60.0) * (0.2 + (0.8 * people if use > 0 else 0.0))
        power[h, k] = used_kwh
        total += used_kwh
        reading = use
        if meter == DROPOUT:
            reading = math.nan
        elif meter == STUCK:
            reading = last
        else:
            if meter == DRIFT:  # the bias grows by the day since the fault began
                reading = use + DRIFT_LITRES_PER_DAY * (1.0 + day - (fault_until[h] - repair_days * 1440.0) / 1440.0)
            last = reading
        water[h, k] = reading
    electricity[h] = total
    last_reading[h] = last


@kernel
def use_keys_of(seed, day, n_ticks):
    """The day's water-use draw keys, one per tick (see :func:`household_day`)."""
    return rng.tick_keys(seed, S_USE, day * n_ticks, n_ticks)


@parallel_kernel
def households_day(seed, day, tick_min, alone, size, incap_since, care_until, fault, fault_until,
                   last_reading, incap_p, away_p, litres, kwh, drop_p, stuck_p, drift_p, repair_days, faults_on,
                   smoke_p, hourly_use, water, power, electricity, onset_t, smoke_t):
    """Advance every household's meters by one day: :func:`household_day` for each."""
    use_keys = use_keys_of(seed, day, hourly_use.shape[1])
    for h in prange(alone.shape[0]):
        household_day(h, seed, day, use_keys, tick_min, alone, size, incap_since, care_until, fault,
                      fault_until, last_reading, incap_p, away_p, litres, kwh, drop_p, stuck_p, drift_p,
                      repair_days, faults_on, smoke_p, hourly_use, water, power, electricity, onset_t, smoke_t)


@kernel
def inactivity_alerts(day, tick_min, water, watched, quiet_until, alert_hours, start_h, end_h, alert_t):
    """The elderly inactivity detector: no water for ``alert_hours`` inside the day's window.

    For each ``watched`` household (an elder living alone) not quiet (in care
    until ``quiet_until``), ``alert_t[h]`` is the end of the first tick at
    which the meter has read zero for ``alert_hours`` within ``[start_h,
    end_h)``, or -1.  A silent meter (NaN) tells nothing: it neither fills nor
    breaks a dry spell — which is also how ticks not yet heard from look live.

    Sequential, as are the two detectors below: only the watched households do
    work, a few dozen comparisons each, less than a parallel launch costs (measured
    126 us a day in parallel against 44 us on one thread, default community).
    """
    n_ticks = water.shape[1]
    base = day * 1440.0
    for h in range(water.shape[0]):
        alert_t[h] = -1.0
        if not watched[h]:
            continue
        dry = 0.0
        for k in range(n_ticks):
            t0 = base + k * tick_min
            hour = k * tick_min / 60.0
            if start_h <= hour < end_h and not quiet_until[h] > t0:
                reading = water[h, k]
                if reading <= 0.0:
                    dry += tick_min / 60.0
                elif reading > 0.0:
                    dry = 0.0
                if dry >= alert_hours:
                    alert_t[h] = t0 + tick_min
                    break


ACTIVE, IDLE, UNKNOWN = 1, 0, -1
USUAL_ACTIVITY_WEIGHT = 0.1  # how much a new day moves a household's usual activity (a few weeks' memory)
USUAL_ACTIVITY_CAP = 0.99  # one idle tick is never proof: its surprise is at most -log(1 - 0.99)
USUAL_ACTIVITY_PRIOR = 0.5  # what the detector assumes of a tick of day before it has learnt it


@inline
def tick_activity(water, power, tick_min, idle_kwh_per_hour):
    """What one tick says of a household: ACTIVE, IDLE or UNKNOWN.

    Electricity first: a meter above standby means someone is using an
    appliance.  Water meters fail more (stuck, drifting, silent), so water
    decides only a tick whose electricity was not heard; a tick with neither
    heard tells nothing.
    """
    if not math.isnan(power):
        return ACTIVE if power * 60.0 / tick_min > idle_kwh_per_hour else IDLE
    if not math.isnan(water):
        return ACTIVE if water > 0.0 else IDLE
    return UNKNOWN


@kernel
def activity_alerts(day, tick_min, water, power, watched, quiet_until, usual_active, idle_kwh_per_hour,
                    surprise, start_h, end_h, alert_t):
    """The combined elderly detector: idle ticks, weighed by how unusual idleness is at that time of day.

    Each idle tick inside ``[start_h, end_h)`` adds ``-log(1 - p)``, ``p`` the
    household's usual chance of being active in that tick of the day (learnt by
    :func:`learn_usual_activity`); an active tick starts the count again.  The
    alert comes at the end of the tick where the sum reaches ``surprise`` —
    that is, when a spell this idle would happen by chance with probability
    ``exp(-surprise)``.  An idle morning hour of someone always up by then weighs
    much; an idle hour of someone who often sleeps in weighs little.
    """
    n_ticks = water.shape[1]
    base = day * 1440.0
    for h in range(water.shape[0]):
        alert_t[h] = -1.0
        if not watched[h]:
            continue
        score = 0.0
        for k in range(n_ticks):
            t0 = base + k * tick_min
            hour = k * tick_min / 60.0
            if not (start_h <= hour < end_h) or quiet_until[h] > t0:
                continue
            a = tick_activity(water[h, k], power[h, k], tick_min, idle_kwh_per_hour)
            if a == ACTIVE:
                score = 0.0
            elif a == IDLE:
                score -= math.log1p(-min(USUAL_ACTIVITY_CAP, usual_active[h, k]))
                if score >= surprise:
                    alert_t[h] = t0 + tick_min
                    break


@kernel
def learn_usual_activity(day, tick_min, water, power, watched, quiet_until, idle_kwh_per_hour, usual_active):
    """Move each watched household's usual activity per tick of day toward what the day showed.

    A tick not heard from, or one while the household is in care, teaches nothing.
    """
    base = day * 1440.0
    for h in range(water.shape[0]):
        if not watched[h]:
            continue
        for k in range(water.shape[1]):
            if quiet_until[h] > base + k * tick_min:
                continue
            a = tick_activity(water[h, k], power[h, k], tick_min, idle_kwh_per_hour)
            if a != UNKNOWN:
                usual_active[h, k] += USUAL_ACTIVITY_WEIGHT * (a - usual_active[h, k])


WATER_ONLY, COMBINED, NO_DETECTOR = "water", "combined", "off"
ELDER_DETECTORS = (WATER_ONLY, COMBINED, NO_DETECTOR)


def elder_alerts(detector, readings, watched, quiet_until, usual_active, window, hours, idle_kwh_per_hour,
                 surprise, learn: bool = True) -> np.ndarray:
    """The day's elderly alerts (minute per household, -1 for none) by the named detector.

    The one entry point the twin's day step and the live shadow both call.
    ``window`` is ``(start_h, end_h)``; ``water`` uses ``hours`` without
    water, ``combined`` uses ``surprise`` over water and electricity (and,
    with ``learn``, updates ``usual_active`` in place — the shadow's
    mid-day look leaves it alone), ``off`` raises nothing.
    """
    if detector not in ELDER_DETECTORS:
        raise ValueError(f"elder detector {detector!r}; expected one of {', '.join(ELDER_DETECTORS)}")
    d, tick = readings.day, float(readings.tick_minutes)
    alert_t = np.full(readings.water.shape[0], -1.0)
    if detector == WATER_ONLY:
        inactivity_alerts(d, tick, readings.water, watched, quiet_until, hours, window[0], window[1], alert_t)
    elif detector == COMBINED:
        activity_alerts(d, tick, readings.water, readings.power, watched, quiet_until, usual_active,
                        idle_kwh_per_hour, surprise, window[0], window[1], alert_t)
        if learn:
            learn_usual_activity(d, tick, readings.water, readings.power, watched, quiet_until, idle_kwh_per_hour,
                                 usual_active)
    return alert_t


@parallel_kernel
def buildings_day(seed, day, tick_min, hh_start, hh_end, hourly_use, burst_since, burst_until, burst_ticketed,
                  burst_p, burst_lph, bin_fill, bin_rate, round_hours,
                  main_lph, bin_level, burst_onset_t, overflow_hours, peak_flow):
    """Advance every building's water main and bins by one day.

    A burst adds ``burst_lph`` to the building's flow from its onset until
    ``burst_until`` (set when the repair completes).  Writes the main's flow
    ``main_lph[b, k]`` (litres per hour) and the bin's fill ``bin_level[b, k]``
    at each tick's end.  Bins fill with use; cleaners empty them on their
    rounds (``round_hours``).
    """
    n_ticks = hourly_use.shape[1]
    base = day * 1440.0
    for b in prange(hh_start.shape[0]):
        burst_onset_t[b] = -1.0
        if burst_since[b] < 0 and rng.uniform(seed, S_BURST, day, b) < burst_p:
            burst_since[b] = base + rng.uniform(seed, S_BURST_T, day, b) * 1440.0
            burst_until[b] = math.inf
            burst_ticketed[b] = False
            burst_onset_t[b] = burst_since[b]
        overflow_hours[b] = 0.0
        peak_flow[b] = 0.0
        n_hh = hh_end[b] - hh_start[b]
        for k in range(n_ticks):
            t0 = base + k * tick_min
            t1 = t0 + tick_min
            flow = 0.0
            for h in range(hh_start[b], hh_end[b]):
                flow += hourly_use[h, k]
            if burst_since[b] >= 0:
                overlap = min(t1, burst_until[b]) - max(t0, burst_since[b])
                if overlap > 0:
                    flow += burst_lph * overlap / 60.0
            lph = flow * 60.0 / tick_min
            main_lph[b, k] = lph
            peak_flow[b] = max(peak_flow[b], lph)
            hour0 = k * tick_min / 60.0
            for r in range(round_hours.shape[0]):
                if hour0 <= round_hours[r] < hour0 + tick_min / 60.0:
                    bin_fill[b] = 0.0
            bin_fill[b] += bin_rate * (tick_min / 60.0) * n_hh / 50.0 * (0.5 + rng.uniform(seed, S_BIN, day * n_ticks + k, b))
            bin_level[b, k] = bin_fill[b]
            if bin_fill[b] >= 1.0:
                overflow_hours[b] += tick_min / 60.0


@kernel
def burst_alerts(day, tick_min, main_lph, usual_lph, armed, threshold, detect_t):
    """The pipe-burst detector: a building's main flowing ``threshold`` L/h above its usual.

    Daytime use of a whole building is far above any fixed threshold a burst
    could be told by, so the detector compares each tick's flow with the
    main's usual flow at that time of day (``usual_lph``, kept by
    :func:`learn_usual_flow`).  ``detect_t[b]`` is the end of the first tick
    whose excess exceeds the threshold in an ``armed`` building (no burst
    ticket open), or -1.  NaN — a silent main, or no usual flow learnt yet —
    never triggers.

    Sequential: a building's check is a few dozen comparisons, less than a parallel launch costs.
    """
    n_ticks = main_lph.shape[1]
    base = day * 1440.0
    for b in range(main_lph.shape[0]):
        detect_t[b] = -1.0
        if not armed[b]:
            continue
        for k in range(n_ticks):
            if main_lph[b, k] - usual_lph[b, k] > threshold:
                detect_t[b] = base + (k + 1) * tick_min
                break


USUAL_FLOW_WEIGHT = 0.3  # how much a new day moves the usual flow (about a week's memory)


@kernel
def learn_usual_flow(main_lph, usual_lph, threshold):
    """Move each main's usual flow per time of day toward the day's readings.

    A tick whose flow is ``threshold`` above the usual is left out (a burst
    must not become the new usual); a silent tick teaches nothing; the first
    reading of a tick of day starts its usual.  Sequential, as :func:`burst_alerts`.
    """
    for b in range(main_lph.shape[0]):
        for k in range(main_lph.shape[1]):
            x = main_lph[b, k]
            if math.isnan(x):
                continue
            u = usual_lph[b, k]
            if math.isnan(u):
                usual_lph[b, k] = x
            elif x - u <= threshold:
                usual_lph[b, k] = u + USUAL_FLOW_WEIGHT * (x - u)


@dataclass
class DayReadings:
    """One day of what every device reported, tick by tick (community minutes; NaN = silent).

    ``water`` litres and ``power`` kWh per household and tick, ``smoke_t`` the
    minute a household's smoke alarm went off (or -1), ``main_lph`` each
    building main's flow in litres per hour and ``bin_fill`` each bin's fill
    (0-1) at the tick's end.  Tick ``k`` of day ``d`` spans
    ``[d*1440 + k*tick_minutes, d*1440 + (k+1)*tick_minutes)``.
    """
    day: int
    tick_minutes: float
    water: np.ndarray
    power: np.ndarray
    smoke_t: np.ndarray
    main_lph: np.ndarray
    bin_fill: np.ndarray

    @classmethod
    def empty(cls, day: int, tick_minutes: float, households: int, buildings: int) -> "DayReadings":
        """A day nobody has reported yet: every reading NaN."""
        k = int(round(1440 / tick_minutes))
        return cls(day, float(tick_minutes), np.full((households, k), np.nan), np.full((households, k), np.nan),
                   np.full(households, -1.0), np.full((buildings, k), np.nan), np.full((buildings, k), np.nan))
