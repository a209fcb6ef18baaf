"""The community written the plain Mesa 3 way: an oracle for the twin's rules and a speed baseline.

Everything the engine does with struct-of-arrays kernels and counter-based
draws is written here again the way a Mesa modeller would write it: one Python
object per resident, home, building and worker (``mesa.Agent``), the model
stepping them one tick at a time (``AgentSet.do`` / ``shuffle_do``), a
``DataCollector`` for the daily figures, and the services called one command
at a time through their object layer (``points.earn``, ``desk.submit``,
``timebank.confirm``, ``voting.cast``), so that the service rules still exist
once (DESIGN.md, "Decisions").

It is an **oracle**, so it shares no code with the engine's rules: they are
rewritten here from the engine's documented behaviour (the docstrings of
``agents/*.py``, ``twin/engine/topics.py``, DESIGN.md) with this model's own
randomness (``model.random`` and ``model.rng``, both seeded from the config's
seed; never ``twin.rng``).  The twin and this model therefore agree in
distribution, not draw by draw: ``tests/test_reference_mesa.py`` compares the
KPIs of ``summary.json`` over replications.  What it does take from the
package is what is *input*, not rule: the config, the policy objects' tables
(points rule table and schedule, voting policy) and the services.

The rules, as this model states them (one tick = ``sim.tick_minutes``):

* **Community.**  Buildings on a square grid ``spacing_m`` apart; households
  fill them in order.  A household is elder-headed with probability
  ``min(0.95, elder_share * mean_household_size / 1.7)``; such a household
  is one elder (with probability ``elders_alone_share``) or two, aged 60-90.
  Other households have ``min(6, 1 + Poisson(m - 1))`` members, ``m`` chosen so
  the mean size is ``mean_household_size``; the first member is an adult
  (18-59), the others adults with probability 0.6, else children (0-17).
  App users: residents of 12+ with probability ``app_literacy_adult`` (under
  60) or ``app_literacy_elder``.  Engagement ``U**1.5``.  Ties: the
  household; two draws among the building's residents (another household);
  a ring over residents in building order, ``friends_per_resident / 2``
  steps ahead, each tie rewired to anyone with probability ``rewire_p``.
  A building has an elevator with probability ``facilities.elevator_share``.
* **Residents** (adults act; everyone's satisfaction moves).  At dawn fatigue
  decays (``fatigue_decay``) and each resident notes the share of their ties
  active in the last 30 days.  An activity offered ``k`` times a week runs on
  the first ``k`` weekdays (every day if ``k >= 7``) at its hour; a resident
  takes part with probability ``logistic(activity_base + reward_effect *
  points / 10 + appeal + peer_effect * peer + engagement_effect *
  engagement - fatigue_effect * fatigue)``, then tires by ``fatigue_gain``.
  At 14:00 a younger elder (60-74) helps, with ``timebank_help_prob``, one
  older neighbour (75+) chosen at random among their ties, for
  ``Exp(timebank_minutes_mean)`` minutes rounded to a quarter hour in
  15..240, at a time between 09:00 and 17:00; the receiver confirms
  ``confirm_delay_minutes`` after the service ends.  At 19:00, with
  ``redeem_prob``, a resident redeems the dearest item that the morning's
  balance affords.  Each day, each open topic not yet voted on gets a ballot
  with probability ``logistic(vote_base + vote_engagement_effect * engagement
  + vote_app_effect * app)``, cast between 08:00 and 22:00; the ballot ranks
  the three options by a shared appeal plus a personal taste.
* **Topics.**  Proposals arrive as a Poisson process (``propose_rate_per_month
  / 30`` a day) between 09:00 and 17:00 from a random adult; 85% pass
  screening (1 hour later), are noticed 2 hours after the proposal and open
  when the notice period is over, at the end of that day, if fewer than 8
  topics are open (else they wait); a topic closes ``vote_days`` days later
  at the end of the day.  If it is carried with a single winner, each voter
  whose first choice won feels +1, each whose first choice lost -0.5.
* **Homes.**  Each day a meter may drop out (``dropout_per_device_day``),
  stick at its last reading (``stuck_per_device_day``) or drift (read 0.5
  litre more for each day since the fault began, ``drift_per_device_day``),
  for ``repair_device_days``; an elder living alone may fall
  (``incapacitation_per_elder_year / 365``, not while in care), be away from
  08:00 to 20:00 (``away_day_prob``); smoke (``smoke_per_household_year /
  365``) raises an alert at once.  Per tick, water is used with probability
  0.9 from 07:00 to 22:00 (else 0.05), ``water_litres_per_hour x size x
  (0.5 + U)``, not while in care, away or fallen.  The inactivity detector
  sees readings only: between the policy's day hours, a zero reading adds the
  tick to a dry spell, a positive one ends it, a missing one does neither;
  ``alert_hours_without_water`` dry hours raise one alert a day, at the end of
  the tick.  Electricity: ``kwh_per_hour`` x (0.2 + 0.8 x size in ticks with
  water use).  A social worker (on call) sets out ``alert_setout_minutes``
  after the alert and stays ``alert_visit_minutes``; if the elder had fallen the
  worker's arrival ends the incident (2 days of care follow; the household
  feels rescued).  Nobody alerted: the family finds the elder after 36 hours.
* **Buildings.**  A main bursts with ``pipe_burst_per_building_year / 365`` a
  day (when not already burst), adding ``burst_litres_per_hour`` until the
  repair is done; the burst detector (if the policy is on) opens a plumbing
  ticket at the end of the first tick whose flow exceeds the threshold; a
  burst the detector did not catch on its first day is reported by a resident
  after ``Exp(60 / (fault_notice_per_hour x residents))`` minutes.  Public-area
  (and, with an elevator, elevator) faults happen at most once a day each and
  are reported after the same kind of delay by a random resident; in-home
  faults (``household_faults_per_year / 365``; plumbing 55%, else electrical)
  after ``Exp(120)`` minutes by a random member.  Bins fill with use and are
  emptied on the cleaners' rounds (``staff.cleaner_round_hours``).
* **Staff.**  Jobs (tickets, alerts) are assigned in arrival order to the
  worker with the lowest dispatch score (ties to the lowest id; nobody able:
  whoever is free first); the worker starts when free and on shift, walks
  there at ``walk_m_per_min`` and works ``Exp(service mean)`` minutes
  (alerts: ``alert_visit_minutes``).  Technicians each master two repair categories, round robin
  (everyone everything when too few).  Priority: burst 2, elevator 1, else 0.
  The reporter rates a completed repair with ``rating_prob``, ``rating_delay``
  later: ``round(5 - wait/480 - resolution/2880 + 0.8 (U - 0.5))`` in 1..5.
* **Satisfaction** decays to the baseline (``satisfaction_memory``) and moves
  by what happened that day: +0.3 an activity, +1.5 a redemption, +1 help
  received, +4 rescued (the whole household), +2 x (stars - 3) a rating.
* **queue_check**: the repair demand is replaced by Poisson arrivals and
  exponential service, no travel, FIFO, technicians always on.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import ClassVar

import mesa
import numpy as np

from policies import PolicySet
from twin.engine.kpis import participation_months  # a KPI definition (DESIGN.md), not a rule
from twin.services.community import ServicePolicies, Services
from twin.services.reasons import ServiceError
from twin.services.repair import Category, RepairPolicy
from twin.services.timebank import Role, TimeBankPolicy

# ---------------------------------------------------------------- the rules' constants
PEER_WINDOW_DAYS = 30
SCREEN_PASS = 0.85
OPTIONS_PER_TOPIC = 3
MAX_OPEN_TOPICS = 8
CARE_DAYS = 2.0
DRIFT_LITRES_PER_DAY = 0.5
FAMILY_FINDS_AFTER_MINUTES = 36 * 60.0
HOME_REPORT_DELAY_MINUTES = 120.0
HOME_PLUMBING_SHARE = 0.55
FEEL_ACTIVITY, FEEL_REDEEM, FEEL_HELPED, FEEL_RESCUED, FEEL_RATING = 0.3, 1.5, 1.0, 4.0, 2.0
FEEL_WON, FEEL_LOST = 1.0, -0.5  # a carried topic: one's first choice won / lost
UNABLE = 1e300
NEVER = -(10**9)
MEMBER_OFFSET = 2  # time-bank member id = resident id + 2 (0 is the admin, 1 the endowment)
INACTIVITY, SMOKE = 0, 1


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def next_on_shift(t: float, start_min: float, end_min: float) -> float:
    """The first minute >= t inside the daily shift."""
    day = math.floor(t / 1440.0)
    tod = t - day * 1440.0
    if tod < start_min:
        return day * 1440.0 + start_min
    if tod >= end_min:
        return (day + 1) * 1440.0 + start_min
    return t


@dataclass
class Activity:
    code: int
    hour: float
    logit: float       # activity_base + reward_effect * points / 10 + appeal
    units: int
    offered_days: int  # weekdays 0..k-1 (7: every day)


@dataclass
class Job:
    """Work for a worker: a repair ticket or an alert."""

    t: float
    x: float
    y: float
    category: int
    service: float
    worker: object = None
    dispatch: float = math.nan
    start: float = math.nan
    done: float = math.nan


# ====================================================================== agents
class Resident(mesa.Agent):
    """A person: takes part, helps, redeems, votes; feels what happens to them."""

    def __init__(self, model, rid, home, age, app, engagement):
        super().__init__(model)
        self.rid = rid
        self.home = home
        self.age = age
        self.adult = age >= 18
        self.young_elder = 60 <= age < 75
        self.old_elder = age >= 75
        self.app = app
        self.engagement = engagement
        self.ties = []
        self.fatigue = 0.0
        self.peer = 0.0
        self.last_active = NEVER
        self.earned_today = 0
        self.satisfaction = model.cfg.residents.satisfaction_baseline
        self.experience = 0.0
        self.voted = set()

    def wake(self):
        """Dawn: rest a little, look at how active one's ties have been lately."""
        m = self.model
        self.fatigue *= m.r.fatigue_decay
        self.earned_today = 0
        if self.ties:
            active = sum(1 for j in self.ties if m.day - j.last_active < PEER_WINDOW_DAYS)
            self.peer = active / len(self.ties)
        else:
            self.peer = 0.0

    def step(self):
        if not self.adult:
            return
        m = self.model
        r = m.r
        for act in m.activities_now:
            x = (act.logit + r.peer_effect * self.peer + r.engagement_effect * self.engagement
                 - r.fatigue_effect * self.fatigue)
            if m.random.random() < logistic(x):
                self.fatigue += r.fatigue_gain
                self.last_active = m.day
                m.claim_points(self, act)
        if m.help_now and self.young_elder and m.random.random() < r.timebank_help_prob:
            self.help_a_neighbour()
        if m.redeem_now and m.random.random() < r.redeem_prob:
            self.redeem()
        if m.vote_now:
            self.vote()

    def help_a_neighbour(self):
        m = self.model
        older = [j for j in self.ties if j.old_elder]
        if not older:
            return
        receiver = m.random.choice(older)
        minutes = m.random.expovariate(1.0 / m.r.timebank_minutes_mean) if m.r.timebank_minutes_mean > 0 else 0.0
        minutes = max(15, min(240, int(minutes / 15.0 + 0.5) * 15))
        t = m.day_start + 9 * 60.0 + m.random.random() * 480.0
        m.record_help(self, receiver, minutes, t)

    def redeem(self):
        m = self.model
        morning = m.services.points.balance(self.rid) - self.earned_today
        best = None
        for item, cost in enumerate(m.item_costs):
            if cost <= morning and (best is None or cost > m.item_costs[best]):
                best = item
        if best is not None:
            m.redeem(self, best, m.day_start + 19 * 60.0)

    def vote(self):
        m = self.model
        r = m.r
        x = r.vote_base + r.vote_engagement_effect * self.engagement + (r.vote_app_effect if self.app else 0.0)
        p = logistic(x)
        for topic in m.open_topics:
            if topic.id not in self.voted and m.random.random() < p:
                self.voted.add(topic.id)
                m.cast_ballot(self, topic, m.day_start + 480.0 + m.random.random() * 840.0)

    def settle(self):
        """Dusk: satisfaction drifts back to the baseline and moves with the day."""
        r = self.model.r
        s = r.satisfaction_memory * self.satisfaction + (1 - r.satisfaction_memory) * r.satisfaction_baseline \
            + self.experience
        self.satisfaction = min(100.0, max(0.0, s))
        self.experience = 0.0


class Home(mesa.Agent):
    """A household's flat: its water meter and inactivity detector, its faults, the hidden truth."""

    OK, DROPOUT, STUCK, DRIFT = 0, 1, 2, 3

    def __init__(self, model, hid, building, alone_elder):
        super().__init__(model)
        self.hid = hid
        self.building = building
        self.alone_elder = alone_elder
        self.members = []
        self.fault = Home.OK
        self.fault_until = 0.0
        self.fault_since_day = 0
        self.last_reading = 0.0
        self.fallen_at = None   # the hidden truth: when the elder fell (None: fine)
        self.incident = None
        self.care_until = 0.0
        self.away = False
        self.smoke_at = None
        self.dry_hours = 0.0
        self.alerted = False
        self.use = 0.0

    def wake(self):
        m = self.model
        s = m.cfg.sensors
        rnd = m.random.random
        base = m.day_start
        if s.faults:
            if self.fault != Home.OK and self.fault_until <= base:
                self.fault = Home.OK
            if self.fault == Home.OK:
                u = rnd()
                if u < s.dropout_per_device_day:
                    self.fault, self.fault_until = Home.DROPOUT, base + s.repair_device_days * 1440.0
                elif u < s.dropout_per_device_day + s.stuck_per_device_day:
                    self.fault, self.fault_until = Home.STUCK, base + s.repair_device_days * 1440.0
                elif u < s.dropout_per_device_day + s.stuck_per_device_day + s.drift_per_device_day:
                    self.fault, self.fault_until = Home.DRIFT, base + s.repair_device_days * 1440.0
                    self.fault_since_day = m.day
        if self.alone_elder and self.fallen_at is None and self.care_until <= base \
                and rnd() < s.incapacitation_per_elder_year / 365.0:
            self.fallen_at = base + rnd() * 1440.0
            self.incident = m.incident_started(self, self.fallen_at)
        self.away = self.alone_elder and rnd() < s.away_day_prob
        self.smoke_at = base + rnd() * 1440.0 if rnd() < s.smoke_per_household_year / 365.0 else None
        self.dry_hours = 0.0
        self.alerted = False
        if not m.cfg.queue_check.enabled and rnd() < m.cfg.facilities.household_faults_per_year / 365.0:
            t = base + rnd() * 1440.0 + m.random.expovariate(1.0 / HOME_REPORT_DELAY_MINUTES)
            reporter = m.random.choice(self.members)
            category = Category.plumbing if rnd() < HOME_PLUMBING_SHARE else Category.electrical
            m.report(t, reporter, category, self.building)

    def step(self):
        m = self.model
        s, p = m.cfg.sensors, m.policies.alert
        t0, t1, tick, hour = m.t0, m.t1, m.tick_minutes, m.hour
        in_care = self.care_until > t0
        present = 1.0
        if self.fallen_at is not None:  # only the part of the tick before the fall
            present = min(1.0, max(0.0, (self.fallen_at - t0) / tick))
        use = 0.0
        if not in_care and not (self.away and 8.0 <= hour < 20.0) and present > 0 \
                and m.random.random() < (0.9 if 7.0 <= hour < 22.0 else 0.05):
            use = s.water_litres_per_hour * len(self.members) * (tick / 60.0) * present * (0.5 + m.random.random())
        self.use = use
        size = len(self.members)
        m.today["electricity_kwh"] += s.kwh_per_hour * (tick / 60.0) * (0.2 + (0.8 * size if use > 0 else 0.0))
        if self.fault == Home.DROPOUT:
            reading = math.nan
        elif self.fault == Home.STUCK:
            reading = self.last_reading
        elif self.fault == Home.DRIFT:  # a bias that grows by the day since the fault began
            reading = self.last_reading = use + DRIFT_LITRES_PER_DAY * (1 + m.day - self.fault_since_day)
        else:
            reading = self.last_reading = use
        if self.alone_elder and p.day_start_hour <= hour < p.day_end_hour and not in_care:
            if reading <= 0.0:
                self.dry_hours += tick / 60.0
            elif reading > 0.0:
                self.dry_hours = 0.0
            if self.dry_hours >= p.hours and not self.alerted:
                self.alerted = True
                fallen = self.fallen_at is not None and self.fallen_at < t1
                m.alerts_now.append((t1, self.hid, INACTIVITY, fallen))
        if self.smoke_at is not None and t0 <= self.smoke_at < t1:
            m.alerts_now.append((self.smoke_at, self.hid, SMOKE, True))

    def rescued(self, when: float):
        self.fallen_at = None
        self.incident = None
        self.care_until = when + CARE_DAYS * 1440.0

    def dusk(self):
        end = self.model.day_start + 1440.0
        if self.fallen_at is not None and end - self.fallen_at >= FAMILY_FINDS_AFTER_MINUTES:
            self.fallen_at = None   # nobody was alerted: the family finds the elder
            self.incident = None
            self.care_until = end + CARE_DAYS * 1440.0


class Building(mesa.Agent):
    """A building: its water main (and bursts), its bins, its public areas and elevator."""

    def __init__(self, model, bid, x, y, has_elevator):
        super().__init__(model)
        self.bid = bid
        self.x, self.y = x, y
        self.has_elevator = has_elevator
        self.homes = []
        self.residents = []
        self.burst_since = None
        self.burst_until = math.inf
        self.burst_ticketed = False
        self.burst_onset_today = False
        self.burst_detected_today = False
        self.bin_fill = 0.0

    def wake(self):
        m = self.model
        s, f = m.cfg.sensors, m.cfg.facilities
        rnd = m.random.random
        base = m.day_start
        self.burst_onset_today = self.burst_detected_today = False
        if self.burst_since is None and rnd() < s.pipe_burst_per_building_year / 365.0:
            self.burst_since = base + rnd() * 1440.0
            self.burst_until = math.inf
            self.burst_ticketed = False
            self.burst_onset_today = True
        if m.cfg.queue_check.enabled or not self.residents:
            return
        elevator = f.elevator_faults_per_building_year if self.has_elevator else 0.0
        for category, per_year in ((Category.public_area, f.public_faults_per_building_year),
                                   (Category.elevator, elevator)):
            if rnd() < per_year / 365.0:
                t = base + rnd() * 1440.0 + m.random.expovariate(1.0 / self.notice_delay_mean())
                m.report(t, m.random.choice(self.residents), category, self.bid)

    def notice_delay_mean(self) -> float:
        """Minutes until the first of the building's residents notices a fault."""
        return 60.0 / max(1e-9, self.model.cfg.residents.fault_notice_per_hour * max(1, len(self.residents)))

    def step(self):
        m = self.model
        s, pb = m.cfg.sensors, m.policies.pipe_burst
        t0, t1, tick = m.t0, m.t1, m.tick_minutes
        flow = sum(h.use for h in self.homes)
        if self.burst_since is not None:
            overlap = min(t1, self.burst_until) - max(t0, self.burst_since)
            if overlap > 0:
                flow += s.burst_litres_per_hour * overlap / 60.0
        lph = flow * 60.0 / tick
        if pb.enabled and not m.cfg.queue_check.enabled and self.burst_since is not None \
                and not self.burst_ticketed and lph > pb.threshold_litres_per_hour and self.burst_since < t1:
            self.burst_ticketed = self.burst_detected_today = True
            m.report(t1, self.residents[0], Category.plumbing, self.bid, channel="sensor", burst=True)
        if any(m.hour <= h < m.hour + tick / 60.0 for h in m.cfg.staff.cleaner_round_hours):
            self.bin_fill = 0.0  # a cleaner's round
        self.bin_fill += s.bin_fill_per_hour * (tick / 60.0) * len(self.homes) / 50.0 * (0.5 + m.random.random())
        if self.bin_fill >= 1.0:
            m.today["bin_overflow_hours"] += tick / 60.0

    def dusk(self):
        m = self.model
        end = m.day_start + 1440.0
        if self.burst_onset_today and not self.burst_detected_today and not m.cfg.queue_check.enabled:
            # the detector missed it today: a resident notices the flooding
            t = self.burst_since + m.random.expovariate(1.0 / self.notice_delay_mean())
            self.burst_ticketed = True
            m.report(t, self.residents[0], Category.plumbing, self.bid, channel="hotline", burst=True)
        if self.burst_since is not None and self.burst_until < end:
            self.burst_since, self.burst_until, self.burst_ticketed = None, math.inf, False


class Worker(mesa.Agent):
    """A technician or a social worker: where and when they are next free, what they can do."""

    def __init__(self, model, wid, x, y, skills=None):
        super().__init__(model)
        self.wid = wid
        self.x, self.y = x, y
        self.free_at = 0.0
        self.skills = skills   # set of categories; None: everything
        self.busy_minutes = 0.0

    def score(self, job: Job, policy: str, walk: float) -> float:
        """The dispatch policy's score of this worker for ``job``; lowest wins."""
        if policy == "fifo":
            return self.free_at
        if policy == "skill" and self.skills is not None and job.category not in self.skills:
            return UNABLE
        if policy in ("nearest", "skill"):
            travel = math.hypot(job.x - self.x, job.y - self.y) / walk
            return travel if self.free_at <= job.t else 1e9 + self.free_at + travel
        raise NotImplementedError(f"the Mesa reference has no rule for dispatch policy {policy!r}")

    def take(self, job: Job, always_on: bool, travel_on: bool) -> None:
        st = self.model.cfg.staff
        t0 = max(job.t, self.free_at)
        if not always_on:
            t0 = next_on_shift(t0, st.shift_start_hour * 60.0, st.shift_end_hour * 60.0)
        travel = math.hypot(job.x - self.x, job.y - self.y) / st.walk_m_per_min if travel_on else 0.0
        job.worker, job.dispatch, job.start, job.done = self, t0, t0 + travel, t0 + travel + job.service
        self.busy_minutes += job.done - t0
        self.free_at = job.done
        self.x, self.y = job.x, job.y


class Technician(Worker):
    pass


class SocialWorker(Worker):
    pass


@dataclass
class Topic:
    id: int
    opens_at: float
    appeal: list = field(default_factory=list)
    close_day: int = -1
    first_choices: dict = field(default_factory=dict)  # person -> first choice of a counted ballot


# ======================================================================= model
class ReferenceModel(mesa.Model):
    """The community of ``cfg`` (a :class:`~twin.config.TwinConfig`), one ``step()`` per tick.

    >>> from twin import load_scenario
    >>> model = ReferenceModel(load_scenario("default", ["community.households=100", "sim.days=7"]))
    >>> summary = model.run()          # same keys as the twin's summary.json
    >>> model.datacollector.get_model_vars_dataframe()   # one row per day
    """

    def __init__(self, cfg):
        super().__init__(seed=int(cfg.seed))
        self.cfg = cfg
        self.r = cfg.residents
        self.policies = p = PolicySet.from_config(cfg.policies)
        self.tick_minutes = float(cfg.sim.tick_minutes)
        self.ticks_per_day = 1440 // cfg.sim.tick_minutes
        self.services = Services(ServicePolicies(
            points=p.points.rules(), timebank=TimeBankPolicy(),
            repair=RepairPolicy(reopen_window_minutes=cfg.policies.reopen_window_days * 1440.0),
            voting=p.voting.services_policy()))
        self._build_community()
        self._build_activities()
        self._build_staff()
        self._register_with_services()
        # time
        self.day, self.day_start, self.t0, self.t1, self.hour = 0, 0.0, 0.0, 0.0, 0.0
        self.activities_now, self.help_now, self.redeem_now, self.vote_now = [], False, False, False
        # work in flight
        self._seq = 0
        self._reports = []       # heap: (t, seq, reporter, category, building, channel, burst)
        self._transitions = []   # heap: (t, action rank, seq, ticket, action, arg)
        self._confirmations = []  # heap: (t, seq, record, receiver)
        self._next_arrival = (self.random.expovariate(cfg.queue_check.arrivals_per_hour / 60.0)
                              if cfg.queue_check.enabled else math.inf)
        self.alerts_now = []
        # topics
        self.open_topics = []
        self._waiting_topics = []
        self._topic_appeal = {}
        # records the summary is computed from
        self.tickets = {}         # ticket -> dict(submitted, started, completed, reporter, burst building)
        self.incidents = []       # dicts: detected?
        self.alerts = []          # (kind, true, response minutes)
        self.earners_by_month = {}
        self.turnouts = []
        self.totals = {"points_issued": 0, "points_redeemed": 0, "timebank_minutes": 0, "ratings": []}
        self.today = {}
        self.datacollector = mesa.DataCollector(model_reporters={
            "satisfaction": lambda m: m.adult_satisfaction(),
            "participants": lambda m: len(m.today["participants"]),
            "points_issued": lambda m: m.today["points_issued"],
            "tickets_opened": lambda m: m.today["tickets_opened"],
            "tickets_completed": lambda m: m.today["tickets_completed"],
            "alerts": lambda m: m.today["alerts"],
            "ballots": lambda m: m.today["ballots"],
            "timebank_minutes": lambda m: m.today["timebank_minutes"],
            "bin_overflow_hours": lambda m: m.today["bin_overflow_hours"],
            "electricity_kwh": lambda m: m.today["electricity_kwh"],
            "faulty_meters": lambda m: sum(1 for h in m.homes if h.fault != Home.OK),
        })

    # ------------------------------------------------------------------ building
    def _build_community(self):
        c, f = self.cfg.community, self.cfg.facilities
        rnd = self.random.random
        H, B = c.households, c.buildings
        side = math.ceil(math.sqrt(B))
        self.buildings = [Building(self, b, float((b % side) * c.spacing_m), float((b // side) * c.spacing_m),
                                   rnd() < f.elevator_share) for b in range(B)]
        elder_hh_share = min(0.95, c.elder_share * c.mean_household_size / 1.7)
        mean_other = max(1.0, (c.mean_household_size - elder_hh_share * (2 - c.elders_alone_share))
                         / max(1e-9, 1 - elder_hh_share))
        self.homes, self.people = [], []
        for h in range(H):
            building = self.buildings[h * B // H]
            elder_headed = rnd() < elder_hh_share
            alone = elder_headed and rnd() < c.elders_alone_share
            home = Home(self, h, building.bid, alone)
            building.homes.append(home)
            self.homes.append(home)
            if elder_headed:
                ages = [60 + int(rnd() * 31) for _ in range(1 if alone else 2)]
            else:
                size = min(6, 1 + int(self.rng.poisson(mean_other - 1.0)))
                ages = [18 + int(rnd() * 42) if k == 0 or rnd() < 0.6 else int(rnd() * 18) for k in range(size)]
            for age in ages:
                p_app = c.app_literacy_elder if age >= 60 else c.app_literacy_adult
                person = Resident(self, len(self.people), home, age, age >= 12 and rnd() < p_app, rnd() ** 1.5)
                home.members.append(person)
                building.residents.append(person)
                self.people.append(person)
        self._tie_residents()
        self.residents = self.agents_by_type[Resident]
        self.home_set = self.agents_by_type[Home]
        self.building_set = self.agents_by_type[Building]

    def _tie_residents(self):
        import networkx as nx

        c = self.cfg.community
        people, n = self.people, len(self.people)
        g = nx.Graph()
        g.add_nodes_from(range(n))
        for i, person in enumerate(people):
            for other in person.home.members:
                if other.rid > i:
                    g.add_edge(i, other.rid)
            neighbours = self.buildings[person.home.building].residents
            for _ in range(2):
                other = self.random.choice(neighbours)
                if other.home is not person.home:
                    g.add_edge(i, other.rid)
            for step in range(1, c.friends_per_resident // 2 + 1):
                j = (i + step) % n
                if self.random.random() < c.rewire_p:
                    j = self.random.randrange(n)
                if j != i:
                    g.add_edge(i, j)
        self.graph = g
        for i, person in enumerate(people):
            person.ties = [people[j] for j in g.neighbors(i)]

    def _build_activities(self):
        rules = self.services.points.rules
        self.activities = []
        for code, (a, (per_week, hour, minutes, appeal)) in enumerate(zip(rules.activities,
                                                                          self.policies.points.schedule())):
            units = max(1, round(minutes / 60.0)) if a.unit == "hour" else 1
            self.activities.append(Activity(code, hour, self.r.activity_base + self.r.reward_effect * a.points / 10.0
                                            + appeal, int(units), 7 if per_week >= 7 else round(per_week)))
        self.item_costs = [item.cost for item in rules.catalog]

    def _build_staff(self):
        st = self.cfg.staff
        ox = sum(b.x for b in self.buildings) / len(self.buildings)
        oy = sum(b.y for b in self.buildings) / len(self.buildings)
        self.office = (ox, oy)
        n_cat = len(Category)
        self.technicians = []
        for w in range(st.technicians):
            skills = None if st.technicians < (n_cat + 1) // 2 else {(2 * w) % n_cat, (2 * w + 1) % n_cat}
            self.technicians.append(Technician(self, w, ox, oy, skills))
        self.social_workers = [SocialWorker(self, w, ox, oy) for w in range(max(1, st.social_workers))]

    def _register_with_services(self):
        s = self.services
        for person in self.people:
            if person.adult:
                s.points.enroll(person.rid)
            if person.age >= 60:
                s.timebank.register(person.rid + MEMBER_OFFSET, Role.member, person.home.hid)
        floor = self.policies.timebank.elder_floor_minutes
        if floor < 0:
            for person in self.people:
                if person.old_elder:
                    s.timebank.set_floor(person.rid + MEMBER_OFFSET, floor)
        # the electorate is reference data from the residents' register, which the desk takes as one list
        s.voting.register_voters([p.rid for p in self.people], [p.home.hid for p in self.people],
                                 [p.adult for p in self.people])
        self.adults = [p for p in self.people if p.adult]

    # ---------------------------------------------------------------------- time
    def step(self):
        """One tick: homes, buildings, detectors and alerts, residents, the repair desk and staff."""
        tick = self.steps - 1
        day, k = divmod(tick, self.ticks_per_day)
        if k == 0:
            self._dawn(day)
        self.t0 = self.day_start + k * self.tick_minutes
        self.t1 = self.t0 + self.tick_minutes
        self.hour = k * self.tick_minutes / 60.0
        hour1 = self.hour + self.tick_minutes / 60.0
        weekday = day % 7
        self.activities_now = [a for a in self.activities if weekday < a.offered_days and self.hour <= a.hour < hour1]
        self.help_now = self.hour <= 14.0 < hour1
        self.redeem_now = self.hour <= 19.0 < hour1
        self.vote_now = bool(self.open_topics) and self.hour <= 8.0 < hour1
        self.home_set.do("step")
        self.building_set.do("step")
        self._attend_alerts()
        self.residents.shuffle_do("step")
        self._repair_desk()
        self._time_bank()
        if k == self.ticks_per_day - 1:
            self._dusk(day)

    def run(self, days: int | None = None) -> dict:
        """Step through ``days`` (default: the scenario's) and return the summary."""
        for _ in range((self.cfg.sim.days if days is None else days) * self.ticks_per_day):
            self.step()
        return self.summary()

    def _dawn(self, day):
        self.day = day
        self.day_start = day * 1440.0
        self.today = {"participants": set(), "points_issued": 0, "tickets_opened": 0, "tickets_completed": 0,
                      "alerts": 0, "ballots": 0, "timebank_minutes": 0, "bin_overflow_hours": 0.0,
                      "electricity_kwh": 0.0}
        endow = self.policies.timebank.endowment_minutes_per_month
        if endow > 0 and day % 30 == 0:
            tb = self.services.timebank
            for person in self.people:
                if person.old_elder:
                    tb.endow(person.rid + MEMBER_OFFSET, endow, t=self.day_start)
        self.residents.do("wake")
        self.home_set.do("wake")
        self.building_set.do("wake")

    def _dusk(self, day):
        self.building_set.do("dusk")
        self._topics(day)
        self.home_set.do("dusk")
        self.residents.do("settle")
        self.datacollector.collect(self)

    # ------------------------------------------------------------------- points
    def claim_points(self, person, act: Activity):
        t = self.day_start + act.hour * 60.0
        try:
            points = self.services.points.earn(person.rid, act.code, self.day * len(self.activities) + act.code,
                                               act.units, t)
        except ServiceError:
            return
        person.earned_today += points
        person.experience += FEEL_ACTIVITY
        self.earners_by_month.setdefault(int(t // (30 * 1440)), set()).add(person.rid)
        self.totals["points_issued"] += points
        self.today["points_issued"] += points
        self.today["participants"].add(person.rid)

    def redeem(self, person, item, t):
        try:
            self.services.points.redeem(person.rid, item, t)
        except ServiceError:
            return
        person.experience += FEEL_REDEEM
        self.totals["points_redeemed"] += self.item_costs[item]

    # ---------------------------------------------------------------- time bank
    def record_help(self, giver, receiver, minutes, t):
        try:
            record = self.services.timebank.record(giver.rid + MEMBER_OFFSET, receiver.rid + MEMBER_OFFSET, minutes,
                                                   kind=self.random.randrange(3), t=t)
        except ServiceError:
            return
        self._seq += 1
        heapq.heappush(self._confirmations, (t + minutes + self.r.confirm_delay_minutes, self._seq, record,
                                             receiver, minutes))

    def _time_bank(self):
        while self._confirmations and self._confirmations[0][0] < self.t1:
            t, _, record, receiver, minutes = heapq.heappop(self._confirmations)
            try:
                self.services.timebank.confirm(record, by=receiver.rid + MEMBER_OFFSET, t=t)
            except ServiceError:
                continue
            receiver.experience += FEEL_HELPED
            self.totals["timebank_minutes"] += minutes
            self.today["timebank_minutes"] += minutes

    # ------------------------------------------------------------------- voting
    def cast_ballot(self, person, topic: Topic, t):
        taste = [a + self.random.random() for a in topic.appeal]
        ranking = sorted(range(OPTIONS_PER_TOPIC), key=lambda o: -taste[o])
        method = self.policies.voting.method
        if method == "plurality":
            prefs = ranking[:1]
        elif method == "approval":
            mean = sum(taste) / len(taste)
            prefs = [o for o in ranking if taste[o] >= mean]
        else:
            prefs = ranking
        try:
            self.services.voting.cast(topic.id, person.rid, prefs, t, 1 if person.app else 5)
        except ServiceError:
            return
        topic.first_choices[person] = prefs[0]
        self.today["ballots"] += 1

    def _topics(self, day):
        desk, base = self.services.voting, self.day_start
        end = base + 1440.0
        method = self.policies.voting.method
        n_new = int(self.rng.poisson(self.r.propose_rate_per_month / 30.0))
        for t in sorted(base + 540.0 + self.random.random() * 480.0 for _ in range(n_new)):
            proposer = self.random.choice(self.adults)
            topic = desk.propose(proposer.rid, method, OPTIONS_PER_TOPIC, t)
            passed = self.random.random() < SCREEN_PASS
            desk.screen(topic, passed, t + 60.0)
            if passed:
                desk.notice(topic, t + 120.0)
                self._waiting_topics.append(Topic(topic, t + 120.0 + self.cfg.policies.notice_days * 1440.0))
        for topic in [tp for tp in self.open_topics if tp.close_day == day]:
            desk.close(topic.id, end - 1.0)
            result = desk.resolve(topic.id, end - 0.5)
            self.turnouts.append(result.turnout)
            if result.carried and result.winner >= 0:  # voters feel the outcome
                for person, first in topic.first_choices.items():
                    person.experience += FEEL_WON if first == result.winner else FEEL_LOST
            self.open_topics.remove(topic)
        self._waiting_topics.sort(key=lambda tp: (tp.opens_at, tp.id))
        for topic in [tp for tp in self._waiting_topics if tp.opens_at < end]:
            if len(self.open_topics) >= MAX_OPEN_TOPICS:
                break  # every slot taken: the topic waits for tomorrow
            self._waiting_topics.remove(topic)
            desk.open(topic.id, max(topic.opens_at, base))
            topic.appeal = [self.random.random() for _ in range(OPTIONS_PER_TOPIC)]
            topic.close_day = day + max(1, round(self.cfg.policies.vote_days))
            self.open_topics.append(topic)

    # ---------------------------------------------------------- alerts and care
    def incident_started(self, home, t):
        incident = {"home": home.hid, "t": t, "detected": False}
        self.incidents.append(incident)
        return incident

    def _attend_alerts(self):
        if not self.alerts_now:
            return
        st = self.cfg.staff
        policy = self.cfg.policies.dispatch
        for t, hid, kind, true in sorted(self.alerts_now, key=lambda a: a[0]):
            home = self.homes[hid]
            b = self.buildings[home.building]
            job = Job(t + st.alert_setout_minutes, b.x, b.y, 0, st.alert_visit_minutes)
            self._assign(job, self.social_workers, policy, st.on_call_social_workers, True)
            self.alerts.append((kind, true, round(job.start - t), home.incident if kind == INACTIVITY else None))
            self.today["alerts"] += 1
            if kind == INACTIVITY and true:
                home.incident["detected"] = True
                home.rescued(job.start)
                for person in home.members:
                    person.experience += FEEL_RESCUED
        self.alerts_now = []

    def _assign(self, job, workers, policy, always_on, travel_on):
        walk = self.cfg.staff.walk_m_per_min
        best, best_score = None, UNABLE
        for w in workers:
            s = w.score(job, policy, walk)
            if s < best_score:
                best, best_score = w, s
        if best is None:  # nobody able: whoever is free first
            best = min(workers, key=lambda w: (w.free_at, w.wid))
        best.take(job, always_on, travel_on)

    # ------------------------------------------------------------------- repair
    def report(self, t, reporter, category, building, channel=None, burst=False):
        """A fault will reach the desk at ``t`` (a resident's report or a sensor's)."""
        if channel is None:
            channel = "app" if reporter.app else ("hotline" if reporter.age >= 60 or self.random.random() < 0.5
                                                  else "grid_worker")
        self._seq += 1
        heapq.heappush(self._reports, (t, self._seq, reporter, int(category), building, channel, burst))

    def _repair_desk(self):
        cfg, st = self.cfg, self.cfg.staff
        qc = cfg.queue_check
        while self._next_arrival < self.t1:
            self._seq += 1
            heapq.heappush(self._reports, (self._next_arrival, self._seq, None, int(Category.other), 0, "app", False))
            self._next_arrival += self.random.expovariate(qc.arrivals_per_hour / 60.0)
        desk = self.services.repair
        while self._reports and self._reports[0][0] < self.t1:
            t, _, reporter, category, building, channel, burst = heapq.heappop(self._reports)
            priority = 2 if burst else (1 if category == int(Category.elevator) else 0)
            ticket = desk.submit(category=category, description="reported fault", building=building, unit=0,
                                 channel=channel, priority=priority, reporter=reporter.rid if reporter else 0, t=t)
            self.tickets[ticket] = {"submitted": t, "started": math.nan, "completed": math.nan, "reporter": reporter}
            self.today["tickets_opened"] += 1
            if qc.enabled:
                mean = qc.service_minutes_mean
                x, y = self.office
            else:
                mean = st.service_minutes.get(Category(category).name, st.service_minutes.get("other", 60.0))
                x, y = self.buildings[building].x, self.buildings[building].y
            job = Job(t, x, y, category, self.random.expovariate(1.0 / mean))
            self._assign(job, self.technicians, cfg.policies.dispatch, qc.enabled, not qc.enabled)
            self._schedule(job.dispatch, "dispatch", ticket, job.worker.wid)
            self._schedule(job.start, "start", ticket)
            self._schedule(job.done, "complete", ticket)
            if self.random.random() < st.rating_prob:
                wait, resolution = job.start - t, job.done - t
                stars = round(5.0 - wait / 480.0 - resolution / 2880.0 + 0.8 * (self.random.random() - 0.5))
                self._schedule(job.done + st.rating_delay_minutes, "rate", ticket, max(1, min(5, stars)))
            if burst:
                self.buildings[building].burst_until = job.done
        while self._transitions and self._transitions[0][0] < self.t1:
            t, _, _, ticket, action, arg = heapq.heappop(self._transitions)
            record = self.tickets[ticket]
            try:
                if action == "dispatch":
                    desk.dispatch(ticket, arg, t)
                elif action == "start":
                    desk.start(ticket, t)
                    record["started"] = t
                elif action == "complete":
                    desk.complete(ticket, t)
                    record["completed"] = t
                    self.today["tickets_completed"] += 1
                else:
                    desk.rate(ticket, arg, t=t)
                    self.totals["ratings"].append(arg)
                    if record["reporter"] is not None:
                        record["reporter"].experience += FEEL_RATING * (arg - 3)
            except ServiceError:
                continue

    _ORDER: ClassVar[dict] = {"dispatch": 0, "start": 1, "complete": 2, "rate": 3}

    def _schedule(self, t, action, ticket, arg=0):
        self._seq += 1
        heapq.heappush(self._transitions, (t, self._ORDER[action], self._seq, ticket, action, arg))

    # ------------------------------------------------------------------ figures
    def adult_satisfaction(self) -> float:
        return sum(p.satisfaction for p in self.adults) / max(1, len(self.adults))

    def summary(self) -> dict:
        """The run's headline figures, with the meanings of DESIGN.md "KPI meanings"."""
        days = self.steps // self.ticks_per_day
        months = participation_months(days)
        adults = max(1, len(self.adults))
        tickets = list(self.tickets.values())
        waits = [tk["started"] - tk["submitted"] for tk in tickets if not math.isnan(tk["started"])]
        resolutions = [tk["completed"] - tk["submitted"] for tk in tickets if not math.isnan(tk["completed"])]
        inactivity = [a for a in self.alerts if a[0] == INACTIVITY]
        daily = self.datacollector.get_model_vars_dataframe()
        turnouts = [x for x in self.turnouts if not math.isnan(x)]
        return {
            "participation_rate": sum(len(self.earners_by_month.get(m, ())) / adults for m in range(months)) / months,
            "points_issued": self.totals["points_issued"],
            "points_redeemed": self.totals["points_redeemed"],
            "timebank_hours_exchanged": self.totals["timebank_minutes"] / 60.0,
            "tickets_opened": len(tickets),
            "tickets_completed": len(resolutions),
            "repair_wait_minutes_mean": _mean(waits),
            "repair_resolution_minutes_mean": _mean(resolutions),
            "repair_rating_mean": _mean(self.totals["ratings"]),
            "alerts_raised": len(self.alerts),
            "alert_precision": _mean([1.0 if a[1] else 0.0 for a in inactivity]),
            "alert_recall": _mean([1.0 if i["detected"] else 0.0 for i in self.incidents]),
            "alert_response_minutes_mean": _mean([a[2] for a in self.alerts]),
            "turnout_mean": _mean(turnouts),
            "satisfaction_index": _mean(list(daily["satisfaction"])) if len(daily) else math.nan,
        }

    def repair_waits(self) -> np.ndarray:
        """Submitted → started, minutes, of every started ticket in submission order."""
        return np.array([tk["started"] - tk["submitted"] for tk in self.tickets.values()
                         if not math.isnan(tk["started"])])


def _mean(values) -> float:
    return float(sum(values) / len(values)) if len(values) else math.nan


def run_reference(cfg, days: int | None = None) -> dict:
    """Build the Mesa reference of ``cfg``, run it, return its summary (the twin's ``summary.json`` keys)."""
    return ReferenceModel(cfg).run(days)
