"""``Twin``: one community, advanced one compiled day at a time through the real services."""
from __future__ import annotations

import math
import time

import numpy as np

from agents import facilities, residents, sensors, staff
from agents.community import FLAG_ADULT, FLAG_ELDER, build_community
from policies import PolicySet
from policies.elder_care import ElderCareDetection
from policies.forecast import fault_factor
from twin import memory, parallel_compile, rng
from twin.engine import schedule, services_day
from twin.engine.chainlink import ChainLink
from twin.engine.kpis import DailyKpis
from twin.engine.topics import MAX_OPEN, TopicCycle
from twin.services import events as ev
from twin.services.community import ServicePolicies, Services
from twin.services.events import Channel, EventKind
from twin.services.repair import Action, Category, RepairPolicy, Status
from twin.services.timebank import ServiceKind

# engine-level draw streams
S_QUEUE_N, S_QUEUE_T, S_SERVICE, S_RATE, S_BURST_NOTICE = range(500, 505)
S_CALL = 507  # does an elder answer the automated call (505, 506: a fork's held work)

ALERT_INACTIVITY, ALERT_SMOKE = 0, 1
FAMILY_FINDS_AFTER_MINUTES = 36 * 60.0
TB_OFFSET = 2  # time-bank member id = resident id + 2 (0 is the admin, 1 the endowment)

#: the kinds of help residents give, by (giver + day) modulo their number
HELP_KINDS = np.array([ServiceKind.companionship, ServiceKind.meal_delivery, ServiceKind.cleaning], np.int64)
_OPEN = int(Status.in_progress)  # statuses up to this one are open tickets

# what residents feel about what happened to them (satisfaction points)
FEEL_ACTIVITY, FEEL_REDEEM, FEEL_HELPED, FEEL_RESCUED, FEEL_RATING = 0.3, 1.5, 1.0, 4.0, 2.0


class Twin:
    """A simulated community running the real services.

    >>> from twin import load_scenario
    >>> result = Twin(load_scenario("default", ["sim.days=30"])).run()
    """

    def __init__(self, cfg, community=None, services=None):
        # ``community`` and ``services`` given: a fork of production's roster and state (see start_from)
        self.cfg = cfg
        self.seed = int(cfg.seed)
        t0 = time.perf_counter()
        parallel_compile.prepare(progress=cfg.progress)  # a cold cache: the kernels compile on every core first
        self.community = c = community if community is not None else build_community(
            cfg.community, self.seed, cfg.facilities.elevator_share)
        self.policies = p = PolicySet.from_config(cfg.policies)
        self.services = s = services if services is not None else Services(ServicePolicies(
            points=p.points.rules(),
            timebank=p.timebank.services_policy(),
            repair=RepairPolicy(reopen_window_minutes=cfg.policies.reopen_window_days * 1440.0),
            voting=p.voting.services_policy()))
        self.log = s.log
        # room for about the run's events now (the estimate and a quarter): growing copies the whole log
        s.log.reserve(len(s.log) + int(1.25 * memory.events_estimate(c.n_households, cfg.sim.days,
                                                                       c.n_residents / max(1, c.n_households))))
        n = c.n_residents
        adults = np.flatnonzero(c.adults())
        s.points.enroll_batch(adults)
        elders = np.flatnonzero((c.flags & FLAG_ELDER) != 0)
        s.timebank.register_batch(s.timebank.admin, elders + TB_OFFSET, 0, c.household[elders])
        self._old_elders = np.flatnonzero(c.age >= p.timebank.elder_age)  # the overdraft policy's elders
        if p.timebank.elder_floor_minutes < 0 and len(self._old_elders):
            s.timebank.set_floor_batch(s.timebank.admin, self._old_elders + TB_OFFSET, p.timebank.elder_floor_minutes)

        # resident state beyond the community's static arrays
        self.rule = residents.ResidentRule(c, cfg.residents, p.points, cfg.sim.tick_minutes, self.seed, MAX_OPEN)
        self.households_day = sensors.households_day  # the households' meters (sim.engine=cuda: on the GPU)
        self.satisfaction = np.full(n, cfg.residents.satisfaction_baseline, np.float32)
        self.experience = np.zeros(n, np.float32)
        self.topics = TopicCycle(s.voting, c, p.voting, self.seed, cfg.residents.propose_rate_per_month,
                                 self.experience)
        # sensors
        H, B = c.n_households, c.n_buildings
        self.incap_since = np.full(H, -1.0)
        self.incident_id = np.full(H, -1, np.int64)
        self.care_until = np.zeros(H)
        self.fault = np.zeros(H, np.int8)
        self.fault_until = np.zeros(H)
        self.last_reading = np.zeros(H, np.float32)
        self.burst_since = np.full(B, -1.0)
        self.burst_until = np.full(B, math.inf)
        self.burst_ticketed = np.zeros(B, np.bool_)
        self.bin_fill = np.zeros(B, np.float32)
        self.usual_lph = np.full((B, 1440 // cfg.sim.tick_minutes), np.nan)  # the burst detector's reference
        self.elder_care = ElderCareDetection.from_config(cfg.policies)
        # the combined elderly detector's reference: each household's usual activity per tick of day
        self.usual_active = np.full((H, 1440 // cfg.sim.tick_minutes), sensors.USUAL_ACTIVITY_PRIOR)
        self._hourly_use = np.empty((H, 1440 // cfg.sim.tick_minutes), np.float32)  # one day's, reused
        self.hh_start = np.searchsorted(c.hh_building, np.arange(B)).astype(np.int64)
        self.hh_end = np.searchsorted(c.hh_building, np.arange(B), side="right").astype(np.int64)
        res_building = c.hh_building[c.household]
        self.res_start = np.searchsorted(res_building, np.arange(B)).astype(np.int64)
        self.res_end = np.searchsorted(res_building, np.arange(B), side="right").astype(np.int64)
        # minutes until some resident of a building notices a burst (mean): constant over the run
        self._burst_notice_mean = 60.0 / np.maximum(
            1e-9, cfg.residents.fault_notice_per_hour * np.maximum(self.res_end - self.res_start, 1))
        self._adults = np.flatnonzero((c.flags & FLAG_ADULT) != 0)  # (indices: a mask costs a pass a day)
        # staff work from the community office in the middle of the map
        ox, oy = float(c.building_x.mean()), float(c.building_y.mean())
        st = cfg.staff
        self.technicians = staff.Staff.at(st.technicians, ox, oy,
                                          staff.technician_skills(st.technicians, len(Category)))
        self.social_workers = staff.Staff.at(max(1, st.social_workers), ox, oy)
        # the staffing hook: (twin, day) -> how many technicians (the first ones) work that day; None: all
        self.technicians_on_shift = None
        if cfg.policies.staffing == "forecast":
            from policies.staffing import ForecastStaffing

            self.technicians_on_shift = ForecastStaffing(utilisation=cfg.policies.staffing_utilisation).technicians
        self.office = (ox, oy)
        self._service_mean = np.array([st.service_minutes.get(k.name, st.service_minutes.get("other", 60.0))
                                       for k in Category])  # minutes, by repair category
        self.transitions = schedule.TransitionQueue()
        self.n_incidents = 0
        self.n_alerts = 0
        self.kpis = DailyKpis()
        self.extras = {}  # files a run adds to its folder (chain anchors, ...)
        self.chain = ChainLink(cfg.chain) if cfg.chain.mode != "off" else None
        self.readings = None  # the last day's sensors.DayReadings
        # the live bridge's hook: given the simulated day, return the day's readings with live devices' in place
        self.live_readings = None
        self.timings = {"build_s": time.perf_counter() - t0}
        self.day = 0
        if cfg.sim.engine == "cuda":  # the same per-agent rules, one GPU thread per agent
            from twin.engine import cuda

            cuda.attach(self)

    # ------------------------------------------------------------------ run
    def run(self, progress: bool | None = None):
        """Advance every day of the scenario and return a :class:`~twin.results.Result`."""
        from twin.results import Result

        days = self.cfg.sim.days
        show = self.cfg.progress if progress is None else progress
        t0 = time.perf_counter()
        if show and self.day < days:
            from twin.warmup import compile_notice

            with compile_notice():  # the first day compiles what the cache lacks; the bar's ETA starts after it
                self.step()
        it = range(self.day, days)
        if show:
            from tqdm.auto import tqdm

            it = tqdm(it, desc=f"{self.cfg.name}", unit="day", leave=False, initial=self.day, total=days)
        for _ in it:
            self.step()
        self.timings["run_s"] = time.perf_counter() - t0
        if self.chain is not None:
            t1 = time.perf_counter()
            self.extras.update(self.chain.finish(self))
            self.timings["chain_s"] = time.perf_counter() - t1
        return Result.from_twin(self)

    def step(self) -> None:
        """Advance one day: sensors, detectors, residents, services, staff, KPIs."""
        d = self.day
        self.kpis.begin(d, len(self.log))
        self._sensors(d)
        self._repair_demand(d)
        self._residents(d)
        self._flush_transitions(d)
        self.topics.step(d)
        self._day_end(d)
        if self.chain is not None:
            self.chain.day_end(self, d)
        self.day += 1

    # -------------------------------------------------------------- sensors
    def _sensors(self, d):
        """Simulate the day's devices, let the live bridge replace what it heard, then detect."""
        readings = self._simulate_sensors(d)
        if self.live_readings is not None:
            readings = self.live_readings(readings)
        self.readings = readings
        alert_t, detect_t = self.detect(readings)
        alert_true = (alert_t >= 0) & (self.incap_since >= 0) & (self.incap_since < alert_t)
        self._alerts(d, alert_t, alert_true, readings.smoke_t)
        self._burst_reports = (detect_t, self._burst_onsets)

    def detect(self, readings: sensors.DayReadings, learn: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The detectors over a day's readings: elderly alerts by household, burst detections by building.

        The minute of each (-1 for none).  ``learn``: let the detectors learn from the day (a
        household's usual activity, a main's usual flow), as the day step does; the live shadow's
        look at a day still under way does not.
        """
        c, p, ec = self.community, self.policies, self.elder_care
        alert_t = sensors.elder_alerts(ec.detector, readings, c.hh_alone_elder, self.care_until, self.usual_active,
                                       (p.alert.day_start_hour, p.alert.day_end_hour), p.alert.hours,
                                       ec.idle_kwh_per_hour, ec.surprise, learn=learn)
        detect_t = np.empty(c.n_buildings)
        threshold = p.pipe_burst.threshold_litres_per_hour
        sensors.burst_alerts(readings.day, float(readings.tick_minutes), readings.main_lph, self.usual_lph,
                             p.pipe_burst.enabled & ~self.burst_ticketed, threshold, detect_t)
        if learn:
            sensors.learn_usual_flow(readings.main_lph, self.usual_lph, threshold)
        return alert_t, detect_t

    def _simulate_sensors(self, d) -> sensors.DayReadings:
        """The day's hidden truth (incidents, bursts) and what every device reports of it."""
        c, cfg = self.community, self.cfg
        sc = cfg.sensors
        H, B = c.n_households, c.n_buildings
        tick = cfg.sim.tick_minutes
        K = self._hourly_use.shape[1]
        water, power = np.empty((H, K)), np.empty((H, K))
        onset_t, smoke_t = np.empty(H), np.empty(H)
        electricity = np.empty(H)
        self.households_day(
            self.seed, d, float(tick), c.hh_alone_elder, c.hh_size, self.incap_since, self.care_until,
            self.fault, self.fault_until, self.last_reading, sc.incapacitation_per_elder_year / 365.0,
            sc.away_day_prob, sc.water_litres_per_hour, sc.kwh_per_hour, sc.dropout_per_device_day,
            sc.stuck_per_device_day, sc.drift_per_device_day, sc.repair_device_days, sc.faults,
            sc.smoke_per_household_year / 365.0, self._hourly_use, water, power, electricity, onset_t, smoke_t)
        onsets = np.flatnonzero(onset_t >= 0)
        if len(onsets):
            ids = np.arange(self.n_incidents, self.n_incidents + len(onsets))
            self.n_incidents += len(onsets)
            self.incident_id[onsets] = ids
            self.log.append(ev.make(EventKind.IncidentStarted, onset_t[onsets], actor=onsets, subject=ids))
        # buildings: water mains (bursts) and bins
        main_lph, bin_level = np.empty((B, K)), np.empty((B, K))
        onset_b, overflow, peak = np.empty(B), np.empty(B), np.empty(B)
        sensors.buildings_day(
            self.seed, d, float(tick), self.hh_start, self.hh_end, self._hourly_use, self.burst_since,
            self.burst_until, self.burst_ticketed, sc.pipe_burst_per_building_year / 365.0,
            sc.burst_litres_per_hour, self.bin_fill, sc.bin_fill_per_hour,
            np.asarray(cfg.staff.cleaner_round_hours, np.float64), main_lph, bin_level, onset_b, overflow, peak)
        self._burst_onsets = onset_b
        self.kpis.add(bin_overflow_hours=float(overflow.sum()), water_m3=float(self._hourly_use.sum()) / 1000.0,
                      electricity_kwh=float(electricity.sum()), faulty_meters=int((self.fault != 0).sum()))
        return sensors.DayReadings(d, float(tick), water, power, smoke_t, main_lph, bin_level)

    def _alerts(self, d, alert_t, alert_true, smoke_t):
        """Alerts go to social workers (on call around the clock); their arrival ends an incident."""
        c, cfg = self.community, self.cfg
        hh_a = np.flatnonzero(alert_t >= 0)
        hh_s = np.flatnonzero(smoke_t >= 0)
        hh = np.concatenate((hh_a, hh_s))
        if len(hh) == 0:
            return
        t = np.concatenate((alert_t[hh_a], smoke_t[hh_s]))
        kind = np.concatenate((np.full(len(hh_a), ALERT_INACTIVITY), np.full(len(hh_s), ALERT_SMOKE)))
        true = np.concatenate((alert_true[hh_a], np.ones(len(hh_s), np.bool_)))
        order = np.argsort(t, kind="stable")
        hh, t, kind, true = hh[order], t[order], kind[order], true[order]
        ids = np.arange(self.n_alerts, self.n_alerts + len(hh))
        self.n_alerts += len(hh)
        incident = np.where(true & (kind == ALERT_INACTIVITY), self.incident_id[hh], -1)
        self.log.append(ev.make(EventKind.AlertRaised, t, actor=hh, subject=ids, code=kind, extra=true,
                                target=incident, channel=int(Channel.sensor)))
        # the elder-care policy's call before a visit: a well elder may answer; an incapacitated one cannot
        ec = self.elder_care
        inactivity = kind == ALERT_INACTIVITY
        answered = inactivity & ~true & (rng.uniforms_at(self.seed, S_CALL, d, hh)
                                         < cfg.residents.call_answer_prob)
        go = ec.visits(answered)
        hh, t, kind, true, ids = hh[go], t[go], kind[go], true[go], ids[go]
        setout = np.where(kind == ALERT_INACTIVITY, ec.delay_minutes(), 0.0)
        b = c.hh_building[hh]
        x, y = c.building_x[b].astype(np.float64), c.building_y[b].astype(np.float64)
        sw = self.social_workers
        n = len(hh)
        worker, disp, start, done = np.empty(n, np.int64), np.empty(n), np.empty(n), np.empty(n)
        st = cfg.staff
        staff.assign_jobs(t + setout + st.alert_setout_minutes, x, y, np.zeros(n, np.int64), np.full(n, st.alert_visit_minutes),
                          sw.free_at, sw.x, sw.y,
                          sw.skills, sw.busy_minutes, st.shift_start_hour * 60, st.shift_end_hour * 60,
                          st.on_call_social_workers, st.walk_m_per_min, True,
                          self.policies.dispatch.code, worker, disp, start, done)
        self.log.append(ev.make(EventKind.AlertAttended, start, actor=worker, subject=ids, target=hh,
                                amount=np.round(start - t).astype(np.int64), code=kind, extra=true))
        rescued = hh[(kind == ALERT_INACTIVITY) & true]
        when = start[(kind == ALERT_INACTIVITY) & true]
        self.incap_since[rescued] = -1.0
        self.incident_id[rescued] = -1
        self.care_until[rescued] = when + sensors.CARE_DAYS * 1440.0
        if len(rescued):  # the whole household is relieved
            relieved = np.zeros(c.n_households, np.bool_)
            relieved[rescued] = True
            self.experience[relieved[c.household]] += FEEL_RESCUED
        self.kpis.add(alerts=n, alert_response_minutes_sum=float((start - t).sum()))

    # --------------------------------------------------------------- repair
    def _repair_demand(self, d):
        """New tickets of the day, submitted to the desk in time order, then dispatched."""
        arrivals = self._textbook_arrivals(d) if self.cfg.queue_check.enabled else self._reported_faults(d)
        order = np.argsort(arrivals[0], kind="stable")
        t, reporter, cat, building, channel, burst = (a[order] for a in arrivals)
        if len(t) == 0:
            return
        priority = np.where(burst, 2, np.where(cat == int(Category.elevator), 1, 0))
        ids = services_day.submit_day(self.services.repair, reporter, cat, building, channel, priority, t, self.log)
        ok = ids >= 0  # a refused ticket (none expected: the engine fills every field) is not dispatched
        self.kpis.add(tickets_opened=int(ok.sum()))
        self._dispatch(d, ids[ok], t[ok], cat[ok], building[ok], burst[ok])

    def _textbook_arrivals(self, d):
        """``queue_check``: Poisson arrivals at the office, their minutes drawn uniformly in the day."""
        qc = self.cfg.queue_check
        k = int(rng.poisson(qc.arrivals_per_hour * 24.0, self.seed, S_QUEUE_N, d, 0))
        t = d * 1440.0 + rng.uniforms(self.seed, S_QUEUE_T, d, k) * 1440.0
        zeros = np.zeros(k, np.int64)
        return (t, zeros, np.full(k, int(Category.other)), zeros, np.full(k, int(Channel.app)),
                np.zeros(k, np.bool_))

    def _reported_faults(self, d):
        """Faults residents report (homes, public areas, elevators) and pipe bursts."""
        c, cfg = self.community, self.cfg
        H, B = c.n_households, c.n_buildings
        fc = cfg.facilities
        season = fault_factor(self.seed, d, fc.faults_per_degree, fc.weekend_fault_factor, fc.holiday_fault_factor)
        t_h, rep_h, cat_h = np.empty(H), np.empty(H, np.int64), np.empty(H, np.int64)
        facilities.household_faults(self.seed, d, season * fc.household_faults_per_year / 365.0, c.hh_first,
                                    c.hh_size, 120.0, t_h, rep_h, cat_h)
        t_b, rep_b, cat_b = np.empty(2 * B), np.empty(2 * B, np.int64), np.empty(2 * B, np.int64)
        facilities.building_faults(self.seed, d, season * fc.public_faults_per_building_year / 365.0,
                                   season * fc.elevator_faults_per_building_year / 365.0, c.has_elevator,
                                   self.res_start, self.res_end, cfg.residents.fault_notice_per_hour,
                                   t_b, rep_b, cat_b)
        hi, bi = np.flatnonzero(t_h >= 0), np.flatnonzero(t_b >= 0)
        reporter = np.concatenate((rep_h[hi], rep_b[bi]))
        burst_t, burst_b, by_sensor = self._burst_reports_today(d)
        n_faults, n_bursts = len(reporter), len(burst_b)
        return (np.concatenate((t_h[hi], t_b[bi], burst_t)),
                np.concatenate((reporter, self.res_start[burst_b])),  # a burst is filed in the building's name
                np.concatenate((cat_h[hi], cat_b[bi], np.full(n_bursts, int(Category.plumbing)))),
                np.concatenate((c.hh_building[hi], bi // 2, burst_b)).astype(np.int64),
                np.concatenate((facilities.channel_of(self.seed, c.flags, reporter, d),
                                np.where(by_sensor, int(Channel.sensor), int(Channel.hotline)))),
                np.concatenate((np.zeros(n_faults, bool), np.ones(n_bursts, bool))))

    def _burst_reports_today(self, d):
        """Bursts reported today: by the sensor policy's detector or by residents, whichever comes first."""
        c = self.community
        detect_t, onset_b = self._burst_reports
        u = rng.uniforms(self.seed, S_BURST_NOTICE, d, c.n_buildings)
        # residents see a new burst
        notice = np.where(onset_b >= 0, onset_b - self._burst_notice_mean * np.log1p(-u), math.inf)
        sensed = detect_t >= 0
        first = np.where(sensed, np.minimum(np.where(sensed, detect_t, math.inf), notice), notice)
        buildings = np.flatnonzero(sensed | (onset_b >= 0))
        self.burst_ticketed[buildings] = True
        return first[buildings], buildings, sensed[buildings] & (detect_t[buildings] <= notice[buildings])

    def _dispatch(self, d, ids, t, cat, building, burst):
        c, cfg = self.community, self.cfg
        st = cfg.staff
        n = len(ids)
        qc = cfg.queue_check.enabled
        if qc:
            mean = np.full(n, cfg.queue_check.service_minutes_mean)
            x, y = np.full(n, self.office[0]), np.full(n, self.office[1])
        else:
            mean = self._service_mean[cat]
            x = c.building_x[building].astype(np.float64)
            y = c.building_y[building].astype(np.float64)
        u = rng.uniforms(self.seed, S_SERVICE, d, n)
        service = -mean * np.log1p(-u)
        tech = self.technicians
        on = slice(0, self.technicians_working(d))  # views: the kernel's updates reach the crew's arrays
        worker, disp, start, done = np.empty(n, np.int64), np.empty(n), np.empty(n), np.empty(n)
        staff.assign_jobs(t, x, y, cat, service, tech.free_at[on], tech.x[on], tech.y[on], tech.skills[on],
                          tech.busy_minutes[on],
                          st.shift_start_hour * 60, st.shift_end_hour * 60, qc, st.walk_m_per_min, not qc,
                          self.policies.dispatch.code, worker, disp, start, done)
        q = self.transitions
        q.push(disp, Action.dispatch, ids, worker)
        q.push(start, Action.start, ids)
        q.push(done, Action.complete, ids)
        # the reporter rates some completed tickets, later
        rated = rng.uniforms(self.seed, S_RATE, d, n) < st.rating_prob
        stars = np.empty(n, np.int64)
        residents.ratings(self.seed, d, start - t, done - t, stars)
        q.push(done[rated] + st.rating_delay_minutes, Action.rate, ids[rated], stars[rated])
        self.burst_until[building[burst]] = done[burst]  # the burst flows until the repair is done

    def _flush_transitions(self, d):
        due = self.transitions.pop_until((d + 1) * 1440.0)
        # (queue-check tickets have no real reporter to feel anything about a rating)
        feel = 0.0 if self.cfg.queue_check.enabled else FEEL_RATING
        completed = services_day.repair_day(self.services.repair, due, feel, self.experience, self.log)
        self.kpis.add(tickets_completed=completed)
        # bursts repaired today stop flowing (and a ticket the detector raised on no burst closes too)
        fixed = self.burst_ticketed & (self.burst_until < (d + 1) * 1440.0)
        self.burst_since[fixed] = -1.0
        self.burst_until[fixed] = math.inf
        self.burst_ticketed[fixed] = False

    # ------------------------------------------------------------ residents
    def _residents(self, d):
        """The residents' decisions of the day, handed to the services as command batches."""
        c, s = self.community, self.services
        rule = self.rule
        balances = np.zeros(c.n_residents, np.int64)
        rb = s.points.resident_balances()[: c.n_residents]  # the service's arrays may run past the residents
        balances[: len(rb)] = rb
        open_slots = self.topics.open_slots()
        rule.decide(d, balances, open_slots, self.topics.voted)
        out_act, out_redeem = rule.act, rule.redeem
        n_act = out_act.shape[1]
        base = d * 1440.0
        # points: one claim per resident per activity occurrence, in time order; then the day's redemptions
        who, act = np.nonzero(out_act)
        t = base + rule.hour[act] * 60.0
        order = np.argsort(t, kind="stable")
        who, act, t = who[order], act[order], t[order]
        # units per activity (a few), then per claim (hundreds)
        units = np.where(rule.per_hour_unit, np.maximum(1, np.round(rule.minutes / 60.0)), 1).astype(np.int64)
        red = np.flatnonzero(out_redeem >= 0)
        services_day.points_day(s.points, who, act, d * n_act + act, units[act], t, red,
                                out_redeem[red].astype(np.int64), np.full(len(red), base + 19 * 60.0), FEEL_ACTIVITY,
                                FEEL_REDEEM, self.experience, self.log)
        self._timebank(d, rule.help, rule.help_minutes, rule.help_t)
        self.topics.cast(d, rule.vote, rule.vote_t)

    def _timebank(self, d, out_help, out_help_min, out_help_t):
        cfg, tb = self.cfg, self.services.timebank
        p = self.policies.timebank
        if p.endowment_minutes_per_month > 0 and d % 30 == 0 and len(self._old_elders):
            tb.endow_batch(tb.admin, self._old_elders + TB_OFFSET, p.endowment_minutes_per_month, d * 1440.0)
        giver = np.flatnonzero(out_help >= 0)
        if len(giver) == 0:
            return
        order = np.argsort(out_help_t[giver], kind="stable")
        giver = giver[order]
        minutes, refused = services_day.timebank_day(
            tb, giver + TB_OFFSET, out_help[giver] + TB_OFFSET, out_help_min[giver],
            HELP_KINDS[(giver + d) % len(HELP_KINDS)], out_help_t[giver], cfg.residents.confirm_delay_minutes,
            TB_OFFSET, FEEL_HELPED, self.experience, self.log)
        self.kpis.add(timebank_minutes=minutes, timebank_refused=refused)

    # -------------------------------------------------------------- day end
    def _day_end(self, d):
        cfg = self.cfg
        end = (d + 1) * 1440.0
        # incidents nobody was alerted to: the family finds the elder
        missed = np.flatnonzero((self.incap_since >= 0) & (end - self.incap_since >= FAMILY_FINDS_AFTER_MINUTES))
        self.incap_since[missed] = -1.0
        self.incident_id[missed] = -1
        self.care_until[missed] = end + sensors.CARE_DAYS * 1440.0
        residents.update_satisfaction(self.satisfaction, cfg.residents.satisfaction_baseline,
                                      cfg.residents.satisfaction_memory, self.experience)
        tech = self.technicians
        shift = 1440.0 if cfg.queue_check.enabled else (cfg.staff.shift_end_hour - cfg.staff.shift_start_hour) * 60
        self.kpis.end(self.log.events, satisfaction=float(self.satisfaction[self._adults].mean()),
                      technician_busy_minutes=float(tech.busy_minutes.sum()),
                      technician_shift_minutes=self.technicians_working(d) * shift,
                      backlog=self._open_tickets())

    def technicians_working(self, d) -> int:
        """Technicians working day ``d``: the staffing hook's count (1 .. all), or all of them."""
        n = len(self.technicians)
        return n if self.technicians_on_shift is None else max(1, min(n, int(self.technicians_on_shift(self, d))))

    def _open_tickets(self) -> int:
        """Tickets submitted, dispatched or in progress right now (read off the desk)."""
        desk = self.services.repair
        status = desk.state.status[: desk.n_tickets]
        return int(np.count_nonzero(status <= _OPEN))

    # -------------------------------------------------------------- forking
    #: draw streams of the work a fork finds under way (engine streams, beside S_QUEUE_N ... above)
    S_HELD_SERVICE, S_HELD_RATE = 505, 506

    def start_from(self, minute: float) -> None:
        """Continue at ``minute`` from services that already hold open tickets (a fork of production).

        Build the twin with production's ``community`` and ``services`` first.  The day becomes
        ``floor(minute / 1440)`` and staff are free from ``minute`` on.  The open tickets' remaining
        work is scheduled by the engine's rules (shift hours, walking, service times by category):
        a ticket held by a technician stays with that technician (``worker % technicians`` when
        production had more) — in progress, the rest of the work is a fresh service time (service
        times are exponential, so what is left of one is too); dispatched, the holder walks from the
        office first — and submitted tickets are dispatched as the day's new ones are, in submission
        order.  An open plumbing ticket a sensor raised is a burst that flows until it is repaired.
        """
        d = int(minute // 1440)
        self.day = d
        for crew in (self.technicians, self.social_workers):
            np.maximum(crew.free_at, minute, out=crew.free_at)
        desk = self.services.repair
        st, n = desk.state, desk.n_tickets
        status = st.status[:n]
        burst = (st.category[:n] == Category.plumbing) & (st.channel[:n] == Channel.sensor) & (status <= Status.in_progress)
        b = st.building[:n][burst]
        self.burst_since[b] = st.times[:n][burst, Status.submitted]
        self.burst_ticketed[b] = True
        held = np.flatnonzero((status == Status.dispatched) | (status == Status.in_progress))
        held = held[np.argsort(st.times[held, status[held]], kind="stable")]
        self._finish_held(d, minute, held, burst[held])
        queued = np.flatnonzero(status == Status.submitted)
        self._dispatch(d, queued, np.maximum(st.times[queued, Status.submitted], minute),
                       st.category[queued].astype(np.int64), st.building[queued], burst[queued])

    def _finish_held(self, d, minute, held, burst):
        """The holders finish the tickets they hold (see :meth:`start_from`), one ticket at a time."""
        c, st, cfg = self.community, self.services.repair.state, self.cfg.staff
        tech = self.technicians
        u = rng.uniforms(self.seed, self.S_HELD_SERVICE, d, len(held))
        start, done = np.empty(len(held)), np.empty(len(held))
        for k, ticket in enumerate(held):
            w = int(st.worker[ticket]) % len(tech)
            one = slice(w, w + 1)
            x, y = float(c.building_x[st.building[ticket]]), float(c.building_y[st.building[ticket]])
            working = st.status[ticket] == Status.in_progress
            if working:  # the holder is there already
                tech.x[w], tech.y[w] = x, y
            out = np.empty(1, np.int64), np.empty(1), np.empty(1), np.empty(1)
            staff.assign_jobs(np.array([float(minute)]), np.array([x]), np.array([y]),
                              st.category[ticket:ticket + 1].astype(np.int64),
                              np.array([-self._service_mean[st.category[ticket]] * math.log1p(-u[k])]),
                              tech.free_at[one], tech.x[one], tech.y[one], tech.skills[one], tech.busy_minutes[one],
                              cfg.shift_start_hour * 60, cfg.shift_end_hour * 60, False, cfg.walk_m_per_min,
                              not working, self.policies.dispatch.code, *out)
            start[k] = st.times[ticket, Status.in_progress] if working else out[2][0]
            done[k] = out[3][0]
        walking = st.status[held] == Status.dispatched
        q = self.transitions
        q.push(start[walking], Action.start, held[walking])
        q.push(done, Action.complete, held)
        submitted = st.times[held, Status.submitted]
        rated = rng.uniforms(self.seed, self.S_HELD_RATE, d, len(held)) < cfg.rating_prob
        stars = np.empty(len(held), np.int64)
        residents.ratings(self.seed, d, start - submitted, done - submitted, stars)
        q.push(done[rated] + cfg.rating_delay_minutes, Action.rate, held[rated], stars[rated])
        self.burst_until[st.building[held[burst]]] = done[burst]
