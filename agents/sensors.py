"""Sensors: household water and electricity meters, smoke alarms, building water mains and
trash bins, with hidden truth.

A hidden ground truth (an elder living alone is incapacitated; a building's
pipe bursts) drives the readings, and water meters fail: they drop out
(silent), stick (repeat their last reading) or drift (add a growing bias).  The
detectors — the elderly inactivity alert and the pipe-burst detector — see
only readings.  One compiled call covers one day of hourly ticks:
:func:`households_day` in parallel over households, then
:func:`buildings_day` in parallel over buildings (reading the households'
hourly water use).
"""
import math

from numba import prange

from twin import rng
from twin._jit import parallel_kernel

(S_INCAP, S_INCAP_T, S_AWAY, S_USE, S_FAULT, S_BURST, S_BURST_T, S_SMOKE, S_SMOKE_T,
 S_BIN) = range(300, 310)

NO_FAULT, DROPOUT, STUCK, DRIFT = 0, 1, 2, 3
DRIFT_LITRES_PER_DAY = 0.5  # how fast a drifting meter's bias grows
CARE_DAYS = 2.0  # after a rescue (or a missed incident) the elder is in care, the meter quiet


@parallel_kernel
def households_day(seed, day, tick_min, alone, size, incap_since, care_until, fault, fault_until,
                   last_reading, incap_p, away_p, litres, kwh, drop_p, stuck_p, drift_p, repair_days, faults_on,
                   alert_hours, alert_start_h, alert_end_h, smoke_p,
                   hourly_use, electricity, alert_t, alert_true, onset_t, smoke_t):
    """Advance every household's meters and detector by one day.

    Writes per household: ``hourly_use[h, k]`` (true litres per tick), the day's
    metered ``electricity[h]`` (kWh: standby plus use while someone is active), the day's
    first ``alert_t`` (or -1) and whether the elder was really incapacitated
    then (``alert_true``), a new incident's ``onset_t`` (or -1) and a smoke
    alarm time ``smoke_t`` (or -1).
    """
    n_ticks = hourly_use.shape[1]
    base = day * 1440.0
    for h in prange(alone.shape[0]):
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
        dry = 0.0
        electricity[h] = 0.0
        alert_t[h] = -1.0
        alert_true[h] = False
        for k in range(n_ticks):
            t0 = base + k * tick_min
            t1 = t0 + tick_min
            hour = k * tick_min / 60.0
            in_care = care_until[h] > t0
            present = 1.0
            if incap_since[h] >= 0:  # only the part of the tick before the fall
                present = min(1.0, max(0.0, (incap_since[h] - t0) / tick_min))
            use = 0.0
            if not in_care and not (away and 8.0 <= hour < 20.0) and present > 0:
                p = 0.9 if 7.0 <= hour < 22.0 else 0.05
                u = rng.uniform(seed, S_USE, day * n_ticks + k, h)
                if u < p:  # water is used; given that, u / p is again uniform and sets the amount
                    use = litres * size[h] * (tick_min / 60.0) * present * (0.5 + u / p)
            hourly_use[h, k] = use
            # electricity: standby, plus appliances in the ticks water is used
            electricity[h] += kwh * (tick_min / 60.0) * (0.2 + (0.8 * size[h] if use > 0 else 0.0))
            reading = use
            if fault[h] == DROPOUT:
                reading = math.nan
            elif fault[h] == STUCK:
                reading = last_reading[h]
            else:
                if fault[h] == DRIFT:  # the bias grows by the day since the fault began
                    reading = use + DRIFT_LITRES_PER_DAY * (1.0 + day - (fault_until[h] - repair_days * 1440.0) / 1440.0)
                last_reading[h] = reading
            if alone[h] and alert_start_h <= hour < alert_end_h and not in_care:
                # a silent meter tells nothing: it neither fills nor breaks a dry spell
                if reading <= 0.0:
                    dry += tick_min / 60.0
                elif reading > 0.0:
                    dry = 0.0
                if dry >= alert_hours and alert_t[h] < 0:
                    alert_t[h] = t1
                    alert_true[h] = incap_since[h] >= 0 and incap_since[h] < t1


@parallel_kernel
def buildings_day(seed, day, tick_min, hh_start, hh_end, hourly_use, burst_since, burst_until, burst_ticketed,
                  burst_p, burst_lph, threshold, detect_on, bin_fill, bin_rate, round_hours,
                  detect_t, burst_onset_t, overflow_hours, peak_flow):
    """Advance every building's water main and bins by one day.

    A burst adds ``burst_lph`` to the building's flow from its onset until
    ``burst_until`` (set when the repair completes).  ``detect_t`` is when the
    flow first exceeds ``threshold`` during a burst not yet ticketed (or -1).
    Bins fill with use; cleaners empty them on their rounds (``round_hours``).
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
        detect_t[b] = -1.0
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
            peak_flow[b] = max(peak_flow[b], lph)
            if detect_on and burst_since[b] >= 0 and not burst_ticketed[b] and lph > threshold \
                    and detect_t[b] < 0 and burst_since[b] < t1:
                detect_t[b] = t1
            hour0 = k * tick_min / 60.0
            for r in range(round_hours.shape[0]):
                if hour0 <= round_hours[r] < hour0 + tick_min / 60.0:
                    bin_fill[b] = 0.0
            bin_fill[b] += bin_rate * (tick_min / 60.0) * n_hh / 50.0 * (0.5 + rng.uniform(seed, S_BIN, day * n_ticks + k, b))
            if bin_fill[b] >= 1.0:
                overflow_hours[b] += tick_min / 60.0
