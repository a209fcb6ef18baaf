"""Typed scenario configuration and ``load_scenario``.

A scenario is a Hydra config tree (``scenarios/*.yaml``) validated against the
dataclasses below.  A misspelt key or an out-of-range value fails at load time
with a :class:`ConfigError` that names the key and what is allowed, so a
planner never runs a year-long simulation on a typo.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"


class ConfigError(ValueError):
    """A scenario that cannot be run as written; the message names the key."""


def _check(cond: bool, key: str, allowed: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"{key} = {value!r} is not allowed; expected {allowed}")


def _choice(key: str, value: str, options) -> None:
    _check(value in options, key, f"one of {', '.join(map(repr, options))}", value)


@dataclass
class CommunityConfig:
    """The place and its people."""

    households: int = 2000
    buildings: int = 40
    spacing_m: float = 60.0          # distance between neighbouring buildings on the map grid
    mean_household_size: float = 2.6
    elder_share: float = 0.22        # share of residents aged 60+
    elders_alone_share: float = 0.3  # share of elder-headed households of one person
    app_literacy_adult: float = 0.85
    app_literacy_elder: float = 0.35
    friends_per_resident: int = 4    # small-world ties beyond household and building
    rewire_p: float = 0.1

    def __post_init__(self):
        _check(self.households >= 1, "community.households", "an integer >= 1", self.households)
        _check(1 <= self.buildings <= self.households, "community.buildings", "1..households", self.buildings)
        _check(self.spacing_m > 0, "community.spacing_m", "a positive distance in metres", self.spacing_m)
        _check(1.0 <= self.mean_household_size <= 6.0, "community.mean_household_size", "1.0..6.0",
               self.mean_household_size)
        for name in ("elder_share", "elders_alone_share", "app_literacy_adult", "app_literacy_elder", "rewire_p"):
            v = getattr(self, name)
            _check(0.0 <= v <= 1.0, f"community.{name}", "a share in 0..1", v)
        _check(0 <= self.friends_per_resident <= 50, "community.friends_per_resident", "0..50",
               self.friends_per_resident)


@dataclass
class SimConfig:
    """How long and how finely time runs."""

    days: int = 365
    tick_minutes: int = 60
    engine: str = "cpu"

    def __post_init__(self):
        _check(self.days >= 1, "sim.days", "an integer >= 1", self.days)
        _check(self.tick_minutes in (15, 20, 30, 60, 120), "sim.tick_minutes", "one of 15, 20, 30, 60, 120",
               self.tick_minutes)
        _choice("sim.engine", self.engine, ("cpu",))


@dataclass
class ResidentsConfig:
    """Behaviour of residents: the knobs of the resident rule (logit scale unless a rate)."""

    activity_base: float = -6.4      # logit of taking part in an offered activity, before effects
    reward_effect: float = 0.9       # per 10 points offered
    peer_effect: float = 1.0         # times the share of one's network active in the last 30 days
    engagement_effect: float = 1.5   # times the resident's engagement (0..1)
    fatigue_effect: float = 1.2      # times fatigue (0..1; rises with each activity, decays daily)
    fatigue_gain: float = 0.25
    fatigue_decay: float = 0.85
    redeem_prob: float = 0.05        # per day, when a resident can afford an item
    timebank_help_prob: float = 0.03 # per day, a younger elder offers help to an older neighbour
    timebank_minutes_mean: float = 60.0
    confirm_delay_minutes: float = 120.0
    propose_rate_per_month: float = 1.5  # topics proposed by the community per month
    vote_base: float = -4.0          # logit of voting on an open topic per day of the vote
    vote_app_effect: float = 1.0
    vote_engagement_effect: float = 2.0
    fault_notice_per_hour: float = 0.02  # chance a resident at home notices a public fault in an hour
    satisfaction_baseline: float = 78.0
    satisfaction_memory: float = 0.98    # daily persistence of satisfaction

    def __post_init__(self):
        for name in ("redeem_prob", "timebank_help_prob", "fault_notice_per_hour", "fatigue_decay",
                     "satisfaction_memory"):
            v = getattr(self, name)
            _check(0.0 <= v <= 1.0, f"residents.{name}", "a probability in 0..1", v)
        _check(0 <= self.satisfaction_baseline <= 100, "residents.satisfaction_baseline", "0..100",
               self.satisfaction_baseline)
        for name in ("timebank_minutes_mean", "confirm_delay_minutes", "propose_rate_per_month"):
            _check(getattr(self, name) >= 0, f"residents.{name}", "a non-negative number", getattr(self, name))


@dataclass
class SensorsConfig:
    """IoT devices, their faults and the hidden incidents they should reveal."""

    incapacitation_per_elder_year: float = 0.5   # an elder living alone falls and cannot get up
    away_day_prob: float = 0.001                 # elder out all day (a source of false alarms)
    pipe_burst_per_building_year: float = 0.5
    dropout_per_device_day: float = 0.002
    stuck_per_device_day: float = 0.001
    drift_per_device_day: float = 0.001
    repair_device_days: float = 3.0
    faults: bool = True                          # false: devices never fail (detection tests)
    water_litres_per_hour: float = 12.0
    kwh_per_hour: float = 0.3                    # per active person
    burst_litres_per_hour: float = 2000.0
    smoke_per_household_year: float = 0.01
    bin_fill_per_hour: float = 0.085

    def __post_init__(self):
        for name in ("away_day_prob", "dropout_per_device_day", "stuck_per_device_day", "drift_per_device_day"):
            v = getattr(self, name)
            _check(0.0 <= v <= 1.0, f"sensors.{name}", "a probability in 0..1", v)
        for name in ("incapacitation_per_elder_year", "pipe_burst_per_building_year", "repair_device_days",
                     "water_litres_per_hour", "kwh_per_hour", "burst_litres_per_hour", "smoke_per_household_year",
                     "bin_fill_per_hour"):
            _check(getattr(self, name) >= 0, f"sensors.{name}", "a non-negative number", getattr(self, name))


@dataclass
class StaffConfig:
    """Who does the work, when, and how fast."""

    technicians: int = 6
    social_workers: int = 4
    shift_start_hour: float = 8.0
    shift_end_hour: float = 20.0
    on_call_social_workers: bool = True  # social workers answer alerts around the clock
    alert_setout_minutes: float = 10.0   # reading the alert and calling before setting out
    alert_visit_minutes: float = 30.0    # time spent at the home
    walk_m_per_min: float = 70.0
    service_minutes: dict = field(default_factory=lambda: {
        "plumbing": 90.0, "electrical": 75.0, "elevator": 180.0, "public_area": 60.0, "other": 60.0})
    rating_delay_minutes: float = 240.0
    cleaner_round_hours: list = field(default_factory=lambda: [7.0, 19.0])  # when bins are emptied
    rating_prob: float = 0.7

    def __post_init__(self):
        _check(self.technicians >= 1, "staff.technicians", "an integer >= 1", self.technicians)
        _check(self.social_workers >= 0, "staff.social_workers", "an integer >= 0", self.social_workers)
        _check(0 <= self.shift_start_hour < self.shift_end_hour <= 24, "staff.shift_start_hour/shift_end_hour",
               "0 <= start < end <= 24", (self.shift_start_hour, self.shift_end_hour))
        _check(self.walk_m_per_min > 0, "staff.walk_m_per_min", "a positive speed", self.walk_m_per_min)
        for name in ("alert_setout_minutes", "alert_visit_minutes", "rating_delay_minutes"):
            _check(getattr(self, name) >= 0, f"staff.{name}", "a non-negative number of minutes", getattr(self, name))
        from twin.services.repair import Category

        allowed = [c.name for c in Category]
        for k, v in self.service_minutes.items():
            _choice("staff.service_minutes key", k, allowed)
            _check(v > 0, f"staff.service_minutes.{k}", "a positive number of minutes", v)
        _check(0 <= self.rating_prob <= 1, "staff.rating_prob", "a probability in 0..1", self.rating_prob)
        for h in self.cleaner_round_hours:
            _check(0 <= h < 24, "staff.cleaner_round_hours", "hours in 0..24", h)


@dataclass
class FacilitiesConfig:
    """Failure rates (per unit per year) of what residents report when it breaks."""

    household_faults_per_year: float = 1.2       # in-home plumbing / electrical
    public_faults_per_building_year: float = 6.0  # lights, corridors, doors
    elevator_faults_per_building_year: float = 2.0
    elevator_share: float = 0.6                  # share of buildings with an elevator

    def __post_init__(self):
        for f_ in fields(self):
            v = getattr(self, f_.name)
            _check(v >= 0, f"facilities.{f_.name}", "a non-negative number", v)
        _check(self.elevator_share <= 1, "facilities.elevator_share", "a share in 0..1", self.elevator_share)


@dataclass
class ActivityRule:
    name: str = "activity"
    points: int = 10
    unit: str = "time"
    daily_cap: int = 0
    per_week: float = 7.0   # how often the activity is offered
    hour: float = 9.0       # when it starts
    minutes: float = 60.0   # how long it lasts (units = hours for unit "hour")


@dataclass
class PointsPolicyConfig:
    """The points rule table (activities) and catalog; empty lists mean the services' default table."""

    activities: list = field(default_factory=list)
    catalog: list = field(default_factory=list)


@dataclass
class PoliciesConfig:
    """What planners change.  Each entry names a policy in ``policies/`` and its parameters."""

    dispatch: str = "nearest"                 # fifo | nearest | skill
    points: PointsPolicyConfig = field(default_factory=PointsPolicyConfig)
    alert_hours_without_water: float = 4.0    # daytime hours of no water before an alert
    alert_day_start_hour: float = 6.0
    alert_day_end_hour: float = 22.0
    pipe_burst_auto_ticket: bool = True
    burst_threshold_litres_per_hour: float = 600.0
    voting_method: str = "plurality"          # plurality | approval | borda | irv
    voting_quorum: float = 0.0
    voting_threshold: str = "simple"          # none | simple | two_thirds
    voting_eligibility: str = "adult"         # adult | household
    notice_days: float = 7.0
    vote_days: float = 7.0
    timebank_elder_floor_minutes: int = 0     # overdraft allowed to elders 75+ (negative floor, in minutes)
    timebank_endowment_minutes: int = 240     # monthly endowment to elders 75+
    timebank_endowment_budget_minutes: int = 1_900_000  # all the endowment may issue (a year's plan); then refused
    reopen_window_days: float = 7.0

    def __post_init__(self):
        from policies import DISPATCH_POLICIES

        _choice("policies.dispatch", self.dispatch, tuple(DISPATCH_POLICIES))
        _choice("policies.voting_method", self.voting_method, ("plurality", "approval", "borda", "irv"))
        _choice("policies.voting_threshold", self.voting_threshold, ("none", "simple", "two_thirds"))
        _choice("policies.voting_eligibility", self.voting_eligibility, ("adult", "household"))
        _check(0 <= self.voting_quorum <= 1, "policies.voting_quorum", "a share in 0..1", self.voting_quorum)
        _check(self.alert_hours_without_water > 0, "policies.alert_hours_without_water", "a positive number of hours",
               self.alert_hours_without_water)
        _check(self.timebank_elder_floor_minutes <= 0, "policies.timebank_elder_floor_minutes",
               "a floor <= 0 minutes", self.timebank_elder_floor_minutes)
        _check(self.timebank_endowment_minutes >= 0, "policies.timebank_endowment_minutes", ">= 0",
               self.timebank_endowment_minutes)
        _check(0 <= self.timebank_endowment_budget_minutes <= 10**12, "policies.timebank_endowment_budget_minutes",
               "0..10**12 minutes", self.timebank_endowment_budget_minutes)


@dataclass
class QueueCheckConfig:
    """A textbook queue in place of the community's repair demand (validation against Erlang C).

    When ``enabled``: tickets arrive as a Poisson process at ``arrivals_per_hour``,
    service is exponential with mean ``service_minutes_mean``, there is no travel,
    dispatch is FIFO and all ``staff.technicians`` are always on shift.
    """

    enabled: bool = False
    arrivals_per_hour: float = 1.0
    service_minutes_mean: float = 45.0

    def __post_init__(self):
        _check(self.arrivals_per_hour > 0, "queue_check.arrivals_per_hour", "a positive rate", self.arrivals_per_hour)
        _check(self.service_minutes_mean > 0, "queue_check.service_minutes_mean", "a positive mean",
               self.service_minutes_mean)


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

    mode: str = "off"          # off | mirror | anchor
    url: Optional[str] = None  # a JSON-RPC node (anchor only); None = the in-process EVM

    def __post_init__(self):
        _choice("chain.mode", self.mode, ("off", "mirror", "anchor"))
        _check(self.mode != "mirror" or self.url is None, "chain.url",
               "no URL with chain.mode=mirror (the mirror runs on the in-process EVM only)", self.url)


@dataclass
class TwinConfig:
    """A whole scenario."""

    name: str = "default"
    seed: int = 1
    out: Optional[str] = None
    progress: bool = True
    community: CommunityConfig = field(default_factory=CommunityConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    residents: ResidentsConfig = field(default_factory=ResidentsConfig)
    sensors: SensorsConfig = field(default_factory=SensorsConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)
    facilities: FacilitiesConfig = field(default_factory=FacilitiesConfig)
    policies: PoliciesConfig = field(default_factory=PoliciesConfig)
    queue_check: QueueCheckConfig = field(default_factory=QueueCheckConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)

    def __post_init__(self):
        _check(0 <= self.seed < 2**63, "seed", "an integer in 0..2**63-1", self.seed)


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="twin_schema", node=TwinConfig)


def scenarios() -> list[str]:
    """Names of the scenarios shipped in ``scenarios/``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def _suggest_key(bad: str, node) -> str:
    names = [f_.name for f_ in fields(node)] if is_dataclass(node) else []
    close = difflib.get_close_matches(bad, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"allowed keys: {', '.join(names)}{hint}"


def _explain(path: str) -> str:
    """``a.b.c`` → the keys allowed at ``a.b`` (fields of a section, or keys of a table)."""
    node = TwinConfig
    for p in path.split(".")[:-1]:
        f_ = {f_.name: f_ for f_ in fields(node)}.get(p) if is_dataclass(node) else None
        if f_ is None or not callable(f_.default_factory):
            return ""
        default = f_.default_factory()
        if isinstance(default, dict):
            close = difflib.get_close_matches(path.split(".")[-1], list(default), n=1)
            return f"allowed keys: {', '.join(default)}" + (f" (did you mean {close[0]!r}?)" if close else "")
        node = type(default)
    return _suggest_key(path.split(".")[-1], node)


def load_scenario(name: str = "default", overrides: list[str] | tuple = ()) -> TwinConfig:
    """Compose ``scenarios/<name>.yaml`` with Hydra overrides and validate it.

    >>> cfg = load_scenario("default", ["community.households=500", "sim.days=90", "seed=7"])
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    if name not in scenarios():
        raise ConfigError(f"unknown scenario {name!r}; shipped scenarios: {', '.join(scenarios())}")
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
