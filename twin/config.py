"""Typed scenario configuration and ``load_scenario``.

A scenario is a Hydra config tree (``scenarios/*.yaml``) validated against the
dataclasses below.  A misspelt key or an out-of-range value fails at load time
with a :class:`ConfigError` that names the key and what is allowed, so a
planner never runs a year-long simulation on a typo.
"""
from __future__ import annotations

import difflib
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Optional

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"


class ConfigError(ValueError):
    """A scenario that cannot be run as written; the message names the key."""


#: While set (see :func:`reading_checks`), checks record what they allow instead of refusing.
_reading: ContextVar[dict | None] = ContextVar("_reading", default=None)


def _check(cond: bool, key: str, allowed: str, value: Any) -> None:
    """Refuse ``key = value`` unless ``cond``, naming the key and what is allowed: every check of a
    scenario key or a model parameter comes here (a policy's ``need``, the models' ``require``)."""
    read = _reading.get()
    if read is not None:
        read.setdefault(str(key).rpartition(".")[2], str(allowed))
        return
    if not cond:
        raise ConfigError(f"{key} = {value!r} is not allowed; expected {allowed}")


@contextmanager
def reading_checks():
    """Inside, every check records ``{parameter: what it allows}`` into the yielded dict instead of
    refusing, so running a model's ``check()`` on its defaults reads its rules (the parameter table)."""
    read: dict[str, str] = {}
    token = _reading.set(read)
    try:
        yield read
    finally:
        _reading.reset(token)


def _choice(key: str, value: str, options) -> None:
    _check(value in options, key, f"one of {', '.join(map(repr, options))}", value)


# ------------------------------------------------------------------ parameter metadata
# Every field below is declared with ``param``: its default, what it means, its unit, the
# values allowed and where its value comes from.  This is the one place a parameter is
# described; ``twin.params`` turns it into the parameter table (docs/parameters.md), and the
# ``allowed`` test is the very check a scenario goes through at load time.

@dataclass(frozen=True)
class Allowed:
    """The values a parameter takes: the words a reader sees (docs, errors) and the test.

    Without ``test`` the words document a rule checked elsewhere (one that spans several
    keys, in the section's ``__post_init__``) or say that any value of the type is taken.
    """

    text: str = "any number"
    test: Optional[Callable[[Any], bool]] = None

    def describe(self) -> str:
        return self.text

    def admits(self, value) -> bool:
        return self.test is None or bool(self.test(value))


@dataclass(frozen=True)
class OneOf(Allowed):
    """One of a list of names; ``options`` may be a function (a registry filled at import)."""

    text: str = ""
    options: Any = ()

    def names(self) -> tuple:
        return tuple(self.options() if callable(self.options) else self.options)

    def describe(self) -> str:
        return self.text or f"one of {', '.join(map(repr, self.names()))}"

    def admits(self, value) -> bool:
        return value in self.names()


SHARE = Allowed("a share in 0..1", lambda v: 0.0 <= v <= 1.0)
PROBABILITY = Allowed("a probability in 0..1", lambda v: 0.0 <= v <= 1.0)
NON_NEGATIVE = Allowed("a non-negative number", lambda v: v >= 0)
MINUTES = Allowed("a non-negative number of minutes", lambda v: v >= 0)
ANY_NUMBER = Allowed("any number")
FLAG = Allowed("true or false")

#: Where a value comes from (the ``source`` of a parameter), in the table's words.
ASSUMED = "assumption (a round figure; not calibrated)"
SETTING = "run setting (chosen per run)"
CHENGDU = "calibrated: Chengdu case, participation 15% → 42% (scenarios/case/chengdu.yaml)"
TUNED_TURNOUT = "tuned with the Chengdu calibration for a plausible turnout (no case figure)"
HANGZHOU = "tuned: few false alarms with the Hangzhou case's alert answered within 30 min (scenarios/case/hangzhou_alerts.yaml)"
PUDONG = "Pudong case: satisfaction 78 before the programme"
ERLANG = "validation scenario (textbook M/M/c queue against Erlang C)"


def param(default=MISSING, meaning: str = "", unit: str = "", allowed: Allowed = ANY_NUMBER,
          source: str = ASSUMED, *, factory=MISSING, entry=None):
    """A config field that carries its description (dataclass field metadata, read by ``twin.params``).

    ``entry`` is the dataclass that describes each entry of a list-valued parameter.
    """
    metadata = {"meaning": meaning, "unit": unit, "allowed": allowed, "source": source, "entry": entry}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def section(factory, meaning: str):
    """A nested section of the config (its own parameters are described field by field)."""
    return field(default_factory=factory, metadata={"meaning": meaning, "unit": "section"})


def allowed_of(node, name: str) -> Allowed:
    """The :class:`Allowed` declared for field ``name`` of a config dataclass (or instance)."""
    return {f_.name: f_ for f_ in fields(node)}[name].metadata.get("allowed", ANY_NUMBER)


def _check_fields(prefix: str, node) -> None:
    """Check each field of ``node`` against its declared ``allowed`` values; the error names the key."""
    for f_ in fields(node):
        allowed = f_.metadata.get("allowed")
        if allowed is not None:
            value = getattr(node, f_.name)
            _check(allowed.admits(value), f"{prefix}{f_.name}", allowed.describe(), value)


def _dispatch_names() -> tuple:
    from policies import DISPATCH_POLICIES

    return tuple(DISPATCH_POLICIES)


@dataclass
class CommunityConfig:
    """The place and its people."""

    households: int = param(2000, "households in the community", "households",
                            Allowed("an integer >= 1", lambda v: v >= 1), SETTING)
    buildings: int = param(40, "residential buildings; households are spread evenly over them", "buildings",
                           Allowed("1..households"), SETTING)
    spacing_m: float = param(60.0, "distance between neighbouring buildings on the map grid", "m",
                             Allowed("a positive distance in metres", lambda v: v > 0))
    mean_household_size: float = param(2.6, "mean number of people in a household", "persons",
                                       Allowed("1.0..6.0", lambda v: 1.0 <= v <= 6.0))
    elder_share: float = param(0.22, "share of residents aged 60+", "share", SHARE)
    elders_alone_share: float = param(0.3, "share of elder-headed households of one person (living alone)", "share",
                                      SHARE)
    app_literacy_adult: float = param(0.85, "chance a resident aged 12-59 uses the community app", "probability",
                                      SHARE)
    app_literacy_elder: float = param(0.35, "chance a resident aged 60+ uses the community app", "probability",
                                      SHARE)
    friends_per_resident: int = param(4, "small-world ties beyond household and building (ring neighbours before "
                                         "rewiring)", "ties", Allowed("0..50", lambda v: 0 <= v <= 50))
    rewire_p: float = param(0.1, "chance each friendship tie is rewired to a random resident (Watts-Strogatz)",
                            "probability", SHARE)

    def __post_init__(self):
        _check_fields("community.", self)
        _check(1 <= self.buildings <= self.households, "community.buildings",
               allowed_of(self, "buildings").describe(), self.buildings)


@dataclass
class SimConfig:
    """How long and how finely time runs."""

    days: int = param(365, "simulated days", "days", Allowed("an integer >= 1", lambda v: v >= 1), SETTING)
    tick_minutes: int = param(60, "length of a tick: residents and sensors step once a tick", "min",
                              OneOf("one of 15, 20, 30, 60, 120", options=(15, 20, 30, 60, 120)), SETTING)
    engine: str = param("cpu", "backend that runs the compiled kernels", "name", OneOf(options=("cpu", "cuda")), SETTING)

    def __post_init__(self):
        _check_fields("sim.", self)


@dataclass
class ResidentsConfig:
    """Behaviour of residents: the knobs of the resident rule (logit scale unless a rate)."""

    activity_base: float = param(-6.4, "logit of taking part in an offered activity, before effects", "logit",
                                 ANY_NUMBER, CHENGDU)
    reward_effect: float = param(0.9, "logit added per 10 points an activity offers", "logit per 10 points",
                                 ANY_NUMBER, CHENGDU + "; 0 in chengdu_before")
    peer_effect: float = param(1.0, "logit added times the share of one's network active in the last 30 days",
                               "logit", ANY_NUMBER, CHENGDU)
    engagement_effect: float = param(1.5, "logit added times the resident's engagement (0..1)", "logit")
    fatigue_effect: float = param(1.2, "logit taken away times fatigue (0..1)", "logit")
    fatigue_gain: float = param(0.25, "fatigue added by each activity taken part in", "fatigue per activity")
    fatigue_decay: float = param(0.85, "share of fatigue left after each day", "share per day", PROBABILITY)
    redeem_prob: float = param(0.05, "chance a day that a resident who can afford an item redeems points",
                               "probability per day", PROBABILITY)
    timebank_help_prob: float = param(0.03, "chance a day that a younger elder (60-74) offers help to an older "
                                            "neighbour (75+)", "probability per day", PROBABILITY)
    timebank_minutes_mean: float = param(60.0, "mean length of a time-bank service (exponential, in 15-minute "
                                               "steps, 15..240)", "min", NON_NEGATIVE)
    confirm_delay_minutes: float = param(120.0, "delay before the receiver confirms a recorded service", "min",
                                         NON_NEGATIVE)
    propose_rate_per_month: float = param(1.5, "topics proposed by the community per month", "topics per month",
                                          NON_NEGATIVE)
    awareness_initial: float = param(1.0, "share of adults who know of the points programme on day 0 (1: all do, "
                                          "and no awareness draws are made); only those aware get reward_effect",
                                     "share of adults", SHARE,
                                     "assumption: 1 (the mechanism off); 0.05 in the Chengdu case's after arm")
    awareness_base_per_day: float = param(0.0, "chance a day that an unaware adult learns of the programme "
                                               "on their own (notices, posters)", "probability per day",
                                          PROBABILITY,
                                          "0 (off); 0.001 in the Chengdu case, tuned for the rise over a year")
    awareness_spread: float = param(0.0, "chance a day that each aware tie tells an unaware adult of the programme",
                                    "probability per day per aware tie", PROBABILITY,
                                    "0 (off); 0.003 in the Chengdu case, tuned for the rise over a year")
    vote_base: float = param(-4.0, "logit of voting on an open topic, per day of the vote", "logit", ANY_NUMBER,
                             TUNED_TURNOUT)
    vote_app_effect: float = param(1.0, "logit added when the resident uses the app", "logit")
    vote_engagement_effect: float = param(2.0, "logit added times the resident's engagement (0..1)", "logit")
    fault_notice_per_hour: float = param(0.02, "chance a resident at home notices a public fault in an hour",
                                         "probability per hour", PROBABILITY)
    call_answer_prob: float = param(0.9, "chance an elder who is well answers the community's automated call",
                                    "probability", PROBABILITY)
    satisfaction_baseline: float = param(78.0, "satisfaction a resident returns to without experiences", "0–100",
                                         Allowed("0..100", lambda v: 0 <= v <= 100), PUDONG)
    satisfaction_memory: float = param(0.98, "daily persistence of satisfaction (the rest moves to the baseline)",
                                       "share per day", PROBABILITY)

    def __post_init__(self):
        _check_fields("residents.", self)


@dataclass
class SensorsConfig:
    """IoT devices, their faults and the hidden incidents they should reveal."""

    incapacitation_per_elder_year: float = param(0.5, "rate at which an elder living alone falls and cannot get up",
                                                 "per elder-year", NON_NEGATIVE)
    away_day_prob: float = param(0.001, "chance a day that an elder living alone is out all day (a source of false "
                                        "alarms)", "probability per day", PROBABILITY, HANGZHOU)
    pipe_burst_per_building_year: float = param(0.5, "rate of water-main bursts", "per building-year", NON_NEGATIVE)
    dropout_per_device_day: float = param(0.002, "chance a day that a meter falls silent", "probability per day",
                                          PROBABILITY)
    stuck_per_device_day: float = param(0.001, "chance a day that a meter repeats its last reading",
                                        "probability per day", PROBABILITY)
    drift_per_device_day: float = param(0.001, "chance a day that a meter starts drifting (a growing bias)",
                                        "probability per day", PROBABILITY)
    repair_device_days: float = param(3.0, "how long a faulty device stays faulty", "days", NON_NEGATIVE)
    faults: bool = param(True, "whether devices fail at all (false: detection tests)", "flag", FLAG)
    water_litres_per_hour: float = param(12.0, "water used per person present and active", "L/h per person",
                                         NON_NEGATIVE)
    kwh_per_hour: float = param(0.3, "electricity used per active person", "kWh/h per person", NON_NEGATIVE)
    burst_litres_per_hour: float = param(2000.0, "extra flow through a building's main while a pipe is burst",
                                         "L/h", NON_NEGATIVE)
    smoke_per_household_year: float = param(0.01, "rate of smoke alarms", "per household-year", NON_NEGATIVE)
    bin_fill_per_hour: float = param(0.085, "share of a bin filled in an hour by 50 households (times 0.5..1.5 at "
                                            "random)", "bins per hour", NON_NEGATIVE)

    def __post_init__(self):
        _check_fields("sensors.", self)


def _service_minutes() -> dict:
    return {"plumbing": 90.0, "electrical": 75.0, "elevator": 180.0, "public_area": 60.0, "other": 60.0}


@dataclass
class StaffConfig:
    """Who does the work, when, and how fast."""

    technicians: int = param(6, "repair technicians", "workers", Allowed("an integer >= 1", lambda v: v >= 1))
    social_workers: int = param(4, "social workers who answer alerts", "workers",
                                Allowed("an integer >= 0", lambda v: v >= 0))
    shift_start_hour: float = param(8.0, "when technicians' shift starts", "hour of day",
                                    Allowed("0 <= start < end <= 24"))
    shift_end_hour: float = param(20.0, "when technicians' shift ends", "hour of day",
                                  Allowed("0 <= start < end <= 24"))
    on_call_social_workers: bool = param(True, "social workers answer alerts around the clock", "flag", FLAG)
    alert_setout_minutes: float = param(10.0, "reading the alert and calling before setting out", "min", MINUTES)
    alert_visit_minutes: float = param(30.0, "time spent at the home", "min", MINUTES)
    walk_m_per_min: float = param(70.0, "walking speed of staff between buildings", "m/min",
                                  Allowed("a positive speed", lambda v: v > 0))
    service_minutes: dict = param(None, "mean work time of a repair, by category (exponential)", "min",
                                  Allowed("a positive number of minutes for plumbing, electrical, elevator, "
                                          "public_area, other"), factory=_service_minutes)
    rating_delay_minutes: float = param(240.0, "delay from completion to the resident's rating", "min", MINUTES)
    cleaner_round_hours: list = param(None, "when cleaners empty the bins", "hours of day",
                                      Allowed("hours in 0..24"), factory=lambda: [7.0, 19.0])
    rating_prob: float = param(0.7, "chance a resident rates a completed repair", "probability", PROBABILITY)

    def __post_init__(self):
        _check_fields("staff.", self)
        _check(0 <= self.shift_start_hour < self.shift_end_hour <= 24, "staff.shift_start_hour/shift_end_hour",
               allowed_of(self, "shift_start_hour").describe(), (self.shift_start_hour, self.shift_end_hour))
        from twin.services.repair import Category

        allowed = [c.name for c in Category]
        for k, v in self.service_minutes.items():
            _choice("staff.service_minutes key", k, allowed)
            _check(v > 0, f"staff.service_minutes.{k}", "a positive number of minutes", v)
        for h in self.cleaner_round_hours:
            _check(0 <= h < 24, "staff.cleaner_round_hours", allowed_of(self, "cleaner_round_hours").describe(), h)


@dataclass
class FacilitiesConfig:
    """Failure rates (per unit per year) of what residents report when it breaks."""

    household_faults_per_year: float = param(1.2, "in-home plumbing and electrical faults", "per household-year",
                                             NON_NEGATIVE)
    public_faults_per_building_year: float = param(6.0, "public-area faults: lights, corridors, doors",
                                                   "per building-year", NON_NEGATIVE)
    elevator_faults_per_building_year: float = param(2.0, "elevator faults, in buildings that have one",
                                                     "per building-year", NON_NEGATIVE)
    elevator_share: float = param(0.6, "share of buildings with an elevator", "share", SHARE)
    faults_per_degree: float = param(0.0, "extra share of faults per °C the day's temperature is away from 18 °C "
                                          "(policies.forecast's seasonal weather; 0: no season)", "share per °C",
                                     NON_NEGATIVE)
    weekend_fault_factor: float = param(1.0, "faults reported on a Saturday or Sunday, relative to a weekday",
                                        "times", NON_NEGATIVE)
    holiday_fault_factor: float = param(1.0, "faults reported on a public holiday, relative to a working day",
                                        "times", NON_NEGATIVE)

    def __post_init__(self):
        _check_fields("facilities.", self)


@dataclass
class ActivityRule:
    """One entry of ``policies.points.activities`` (a key left out takes the default below)."""

    name: str = param("activity", "the activity's name (a default one keeps its schedule)", "name",
                      Allowed("a name"))
    points: int = param(10, "points earned per time or per hour", "points", Allowed("an integer >= 1"))
    unit: str = param("time", "what points are counted per", "name", OneOf(options=("time", "hour")))
    daily_cap: int = param(0, "most points a resident may earn from it in a day (0 = no cap)", "points",
                           Allowed("an integer >= 0"))
    per_week: float = param(1.0, "how often the activity is offered", "per week", NON_NEGATIVE)
    hour: float = param(10.0, "when it starts", "hour of day", Allowed("hours in 0..24"))
    minutes: float = param(60.0, "how long it lasts (the hours counted for unit 'hour')", "min", MINUTES)
    appeal: float = param(0.0, "logit added beyond the reward (an adopted suggestion is rare)", "logit")


@dataclass
class CatalogEntry:
    """One entry of ``policies.points.catalog``."""

    name: str = param("item", "the item's name", "name", Allowed("a name"))
    cost: int = param(100, "points a redemption costs", "points", Allowed("an integer >= 1"))
    stock: int = param(-1, "items available (-1 = unlimited)", "items", Allowed("an integer >= -1"))


@dataclass
class PointsPolicyConfig:
    """The points rule table (activities) and catalog; empty lists mean the services' default table."""

    activities: list = param(None, "the activities that earn points (entries: ActivityRule); empty: the default "
                                   "table", "table", Allowed("a list of activity entries"),
                             "Chengdu case (the default table)", factory=list, entry=ActivityRule)
    catalog: list = param(None, "what points buy (entries: CatalogEntry); empty: the default catalog", "table",
                          Allowed("a list of catalog entries"), "Chengdu case (the default catalog)", factory=list,
                          entry=CatalogEntry)


@dataclass
class PoliciesConfig:
    """What planners change.  Each entry names a policy in ``policies/`` and its parameters."""

    dispatch: str = param("nearest", "how a free technician is chosen for a ticket", "name",
                          OneOf(options=_dispatch_names))
    points: PointsPolicyConfig = section(PointsPolicyConfig, "the points rule table and catalog")
    alert_hours_without_water: float = param(4.0, "daytime hours of no water before an elder living alone raises "
                                                  "an alert", "h",
                                             Allowed("a positive number of hours", lambda v: v > 0))
    alert_day_start_hour: float = param(6.0, "start of the daytime the alert watches", "hour of day",
                                        Allowed("hours in 0..24"))
    alert_day_end_hour: float = param(22.0, "end of the daytime the alert watches", "hour of day",
                                      Allowed("hours in 0..24"))
    elder_detector: str = param("water", "which detector watches elders living alone: no water for "
                                         "alert_hours_without_water; combined electricity, water and time of day; "
                                         "or none", "name", OneOf(options=("water", "combined", "off")))
    elder_surprise: float = param(11.5, "combined detector: how unlikely (-log probability) an idle spell must be "
                                        "for the elder's usual activity at those times of day before it alerts",
                                  "nats", Allowed("a positive number", lambda v: v > 0),
                                  "set a priori: ln(10^5), an idle spell that comes by chance once in 100,000 (not tuned)")
    elder_idle_kwh_per_hour: float = param(0.1, "combined detector: electricity below which a household counts "
                                                "as idle (standby)", "kWh/h", NON_NEGATIVE)
    elder_confirm_call: bool = param(False, "an automated call before a visit: answered, nobody goes", "flag", FLAG)
    elder_call_minutes: float = param(5.0, "how long the automated call (with a retry) takes before a visit is sent",
                                      "min", MINUTES)
    pipe_burst_auto_ticket: bool = param(True, "a burst on a building's main opens a plumbing ticket by itself",
                                         "flag", FLAG)
    burst_threshold_litres_per_hour: float = param(600.0, "flow above a main's usual flow at that time of day at which it counts as burst", "L/h")
    voting_method: str = param("plurality", "how ballots are tallied", "name",
                               OneOf(options=("plurality", "approval", "borda", "irv")))
    voting_quorum: float = param(0.0, "share of eligible voters who must vote for a result to stand", "share",
                                 SHARE)
    voting_threshold: str = param("simple", "majority a topic needs to carry", "name",
                                  OneOf(options=("none", "simple", "two_thirds")))
    voting_eligibility: str = param("adult", "who may vote: every adult, or one vote per household", "name",
                                    OneOf(options=("adult", "household")))
    notice_days: float = param(7.0, "notice between a topic's screening and its vote", "days")
    vote_days: float = param(7.0, "how long a vote stays open", "days")
    timebank_elder_floor_minutes: int = param(0, "overdraft allowed to elders 75+ (a negative floor)", "min",
                                              Allowed("a floor <= 0 minutes", lambda v: v <= 0))
    timebank_endowment_minutes: int = param(240, "monthly endowment to each elder 75+", "min per month",
                                            Allowed(">= 0", lambda v: v >= 0),
                                            "tuned: elders can receive help they could not otherwise pay for")
    timebank_endowment_budget_minutes: int = param(1_900_000, "all the endowment may issue (a year's plan); then "
                                                              "refused", "min",
                                                   Allowed("0..10**12 minutes", lambda v: 0 <= v <= 10**12),
                                                   "a year of the default plan")
    reopen_window_days: float = param(7.0, "how long after completion a resident may reopen a ticket", "days")
    staffing: str = param("fixed", "technicians on shift each day: all of them, or as many as the week's demand "
                                   "forecast needs (policies.staffing)", "name", OneOf(options=("fixed", "forecast")))
    staffing_utilisation: float = param(0.6, "share of a shift the forecast work should fill (forecast staffing)",
                                        "share", Allowed("a share in (0, 1]", lambda v: 0 < v <= 1))

    def __post_init__(self):
        _check_fields("policies.", self)


@dataclass
class QueueCheckConfig:
    """A textbook queue in place of the community's repair demand (validation against Erlang C).

    When ``enabled``: tickets arrive as a Poisson process at ``arrivals_per_hour``,
    service is exponential with mean ``service_minutes_mean``, there is no travel,
    dispatch is FIFO and all ``staff.technicians`` are always on shift.
    """

    enabled: bool = param(False, "replace the community's repair demand by a textbook M/M/c queue", "flag", FLAG,
                          ERLANG)
    arrivals_per_hour: float = param(1.0, "Poisson arrival rate of tickets", "per hour",
                                     Allowed("a positive rate", lambda v: v > 0), ERLANG)
    service_minutes_mean: float = param(45.0, "mean of the exponential service time", "min",
                                        Allowed("a positive mean", lambda v: v > 0), ERLANG)

    def __post_init__(self):
        _check_fields("queue_check.", self)


@dataclass
class ChainConfig:
    """Where the time bank is mirrored and the days are anchored.

    ``mirror``: every time-bank operation of the run is replayed onto the
    TimeBank contract and the final balances must equal the twin's.
    ``anchor``: each day's events (by event time) get a Merkle root posted to
    the EvidenceRegistry, and each vote tally its hash.  The key of a funded
    account for a ``url`` node is read from the environment variable
    ``TWIN_CHAIN_KEY`` (never from the config, which is saved with the run).
    ``mirror`` runs on the in-process EVM only (its simulated members sign
    with derived keys, which a chain given by URL refuses).
    """

    mode: str = param("off", "mirror the time bank on chain, or anchor each day's events", "name",
                      OneOf(options=("off", "mirror", "anchor")), SETTING)
    url: Optional[str] = param(None, "a JSON-RPC node (anchor only); none: the in-process EVM", "URL",
                               Allowed("an http(s) URL, or none"), SETTING)

    def __post_init__(self):
        _check_fields("chain.", self)
        _check(self.mode != "mirror" or self.url is None, "chain.url",
               "no URL with chain.mode=mirror (the mirror runs on the in-process EVM only)", self.url)


@dataclass
class TwinConfig:
    """A whole scenario."""

    name: str = param("default", "the scenario's name (run folders are named after it)", "name", Allowed("a name"),
                      SETTING)
    seed: int = param(1, "seed of every random draw: the same seed and config give the same event log", "seed",
                      Allowed("an integer in 0..2**63-1", lambda v: 0 <= v < 2**63), SETTING)
    out: Optional[str] = param(None, "the run folder (none: outputs/<scenario>-<time>/)", "path",
                               Allowed("a path, or none"), SETTING)
    progress: bool = param(True, "show a progress bar while running", "flag", FLAG, SETTING)
    community: CommunityConfig = section(CommunityConfig, "the place and its people")
    sim: SimConfig = section(SimConfig, "how long and how finely time runs")
    residents: ResidentsConfig = section(ResidentsConfig, "behaviour of residents")
    sensors: SensorsConfig = section(SensorsConfig, "IoT devices, their faults and hidden incidents")
    staff: StaffConfig = section(StaffConfig, "who does the work, when, and how fast")
    facilities: FacilitiesConfig = section(FacilitiesConfig, "failure rates of what residents report")
    policies: PoliciesConfig = section(PoliciesConfig, "what planners change")
    queue_check: QueueCheckConfig = section(QueueCheckConfig, "a textbook queue for validation")
    chain: ChainConfig = section(ChainConfig, "time bank mirrored and days anchored on chain")

    def __post_init__(self):
        _check_fields("", self)


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="twin_schema", node=TwinConfig)


def scenarios() -> list[str]:
    """Names of the scenarios shipped in ``scenarios/``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def scenario_description(name: str) -> str:
    """A shipped scenario's one-line description: the first comment line of its YAML file."""
    for line in (SCENARIO_DIR / f"{name}.yaml").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


def did_you_mean(bad: str, allowed) -> str:
    """`` (did you mean 'x'?)`` naming the allowed value closest to a misspelt ``bad``; empty if none is close."""
    close = difflib.get_close_matches(str(bad), list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _suggest_key(bad: str, node) -> str:
    names = [f_.name for f_ in fields(node)] if is_dataclass(node) else []
    return f"allowed keys: {', '.join(names)}{did_you_mean(bad, names)}"


def _explain(path: str) -> str:
    """``a.b.c`` → the keys allowed at ``a.b`` (fields of a section, or keys of a table)."""
    node = TwinConfig
    for p in path.split(".")[:-1]:
        f_ = {f_.name: f_ for f_ in fields(node)}.get(p) if is_dataclass(node) else None
        if f_ is None or not callable(f_.default_factory):
            return ""
        default = f_.default_factory()
        if isinstance(default, dict):
            return f"allowed keys: {', '.join(default)}{did_you_mean(path.split('.')[-1], default)}"
        node = type(default)
    return _suggest_key(path.split(".")[-1], node)


def load_scenario(name: str = "default", overrides: list[str] | tuple = ()) -> TwinConfig:
    """Compose ``scenarios/<name>.yaml`` with Hydra overrides and validate it.

    A scenario composed before with the same overrides, files and schema comes
    from the disk instead (``twin._config_cache``: Hydra is most of a start).

    >>> cfg = load_scenario("default", ["community.households=500", "sim.days=90", "seed=7"])
    """
    from twin import _config_cache

    if name not in scenarios():
        raise ConfigError(f"unknown scenario {name!r}; shipped scenarios: {', '.join(scenarios())}"
                          f"{did_you_mean(name, scenarios())}")
    overrides = list(overrides)
    key = _config_cache.key(name, overrides, SCENARIO_DIR) if _reading.get() is None else None
    cfg = _config_cache.load(key) if key else None
    if isinstance(cfg, TwinConfig):
        _check_again(cfg)
        return cfg
    cfg = _compose(name, overrides)
    if key:
        _config_cache.save(key, cfg)
    return cfg


def parts_of(node) -> list:
    """The config objects ``node`` holds: its sections, and the entries of its tables and lists
    (activity rules, catalogue items)."""
    out = []
    for f_ in fields(node):
        held = getattr(node, f_.name)
        for value in held.values() if isinstance(held, dict) else held if isinstance(held, list) else [held]:
            if is_dataclass(value) and not isinstance(value, type):
                out.append(value)
    return out


def _check_again(node) -> None:
    """Run every section's checks again, innermost first, as building the config ran them (a
    config read back from the cache was built before the names its checks read may have changed)."""
    for part in parts_of(node):
        _check_again(part)
    post_init = getattr(node, "__post_init__", None)
    if post_init is not None:
        post_init()


def _compose(name: str, overrides) -> TwinConfig:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    _register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(SCENARIO_DIR), version_base="1.3"):
            cfg = compose(config_name=name, overrides=list(overrides))
        return OmegaConf.to_object(cfg)
    except Exception as e:  # hydra wraps omegaconf's errors; name the key and what is allowed
        raise _config_error(e) from None


def _config_error(e: Exception) -> ConfigError:
    import re

    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    if isinstance(e, ConfigError):
        return e
    cause = e.__cause__ or e
    if isinstance(cause, ConfigError):
        return cause
    key = getattr(cause, "full_key", None)
    if isinstance(cause, (ConfigAttributeError, ConfigKeyError)) and key:
        return ConfigError(f"unknown key {key!r}; {_explain(str(key))}")
    if isinstance(cause, ValidationError) and key:
        msg = str(getattr(cause, "msg", cause)).splitlines()[0]
        allowed = _allowed_type(str(key))
        return ConfigError(f"{key}: {msg}" + (f"; expected {allowed}" if allowed else ""))
    msg = str(e)
    m = re.search(r"Key '([^']+)' is not in struct", msg) or re.search(r"Could not override '([^']+)'", msg)
    if m:
        return ConfigError(f"unknown key {m.group(1)!r}; {_explain(m.group(1))}")
    return ConfigError(msg.splitlines()[0] if msg else repr(e))


def _allowed_type(path: str) -> str:
    """The declared type of a config key, for error messages."""
    node = TwinConfig
    for p in path.split("."):
        f_ = {f_.name: f_ for f_ in fields(node)}.get(p) if is_dataclass(node) else None
        if f_ is None:
            return ""
        node = f_.type if not callable(f_.default_factory) else type(f_.default_factory())
    return f"a value of type {node}" if isinstance(node, str) else f"a {getattr(node, '__name__', node)}"
