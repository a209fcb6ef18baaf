"""The parameter table: every model parameter, generated from the typed configuration.

A paper cites a version of the model by its parameters.  Each parameter is described
once, where it is defined: the ``param(...)`` field of its config dataclass in
:mod:`twin.config` (meaning, unit, allowed values, source or calibration).  This module
only reads those descriptions (and, for the policy models outside the scenario config and
the city config, the descriptions in :data:`MODEL_DESCRIPTIONS` and :data:`CITY_DESCRIPTIONS`
beside their declared defaults and checks), the shipped scenarios (``scenarios/*.yaml``: what each
changes from the defaults) and the services' default points table, and writes them as
Markdown (``docs/parameters.md``, ``twin params``) or CSV (``twin params --format csv``).
Nothing here is written by hand, so the table cannot drift from the code.
"""
from __future__ import annotations

import csv
import io
from dataclasses import MISSING, dataclass, fields, is_dataclass

FORMATS = ("md", "csv")
#: The columns of the table (and of the CSV), in order.
COLUMNS = ("key", "meaning", "unit", "default", "allowed", "source")


@dataclass(frozen=True)
class Parameter:
    """One row of the table: a config key and what its field declares."""

    key: str
    section: str
    meaning: str
    unit: str
    default: object
    allowed: str
    source: str

    def row(self) -> dict:
        return {"key": self.key, "meaning": self.meaning, "unit": self.unit, "default": format_value(self.default),
                "allowed": self.allowed, "source": self.source}


def _default_of(f_):
    if f_.default is not MISSING:
        return f_.default
    if f_.default_factory is not MISSING:
        return f_.default_factory()
    return None


def parameters(node=None, prefix: str = "") -> list[Parameter]:
    """Every parameter of ``node`` (default: the whole :class:`~twin.config.TwinConfig`), sections flattened.

    Sections become key prefixes (``community.households``); a list parameter whose
    entries are described by a dataclass (the points table) adds one row per entry key
    (``policies.points.activities[].points``).
    """
    from twin.config import ANY_NUMBER, TwinConfig

    node = TwinConfig if node is None else node
    rows = []
    for f_ in fields(node):
        key = prefix + f_.name
        meta = f_.metadata
        default = _default_of(f_)
        if is_dataclass(default):
            rows.extend(parameters(type(default), key + "."))
            continue
        allowed = meta.get("allowed", ANY_NUMBER)
        rows.append(Parameter(key, prefix.rstrip(".") or "run", meta.get("meaning", ""), meta.get("unit", ""),
                              default, allowed.describe(), meta.get("source", "")))
        if meta.get("entry") is not None:
            rows.extend(parameters(meta["entry"], key + "[]."))
    return rows


def undescribed(node=None) -> list[str]:
    """Keys whose field lacks a meaning or a unit (the parameter table needs both)."""
    return [p.key for p in parameters(node) if not p.meaning.strip() or not p.unit.strip()]


def sections(node=None) -> list[tuple[str, str]]:
    """``(name, meaning)`` of each top-level section, in declaration order; run settings first."""
    from twin.config import TwinConfig

    node = TwinConfig if node is None else node
    out = [("run", "settings of the run itself")]
    for f_ in fields(node):
        if is_dataclass(_default_of(f_)):
            out.append((f_.name, f_.metadata.get("meaning", "")))
    return out


def format_value(value) -> str:
    """A value as one writes it in a scenario's YAML: ``true``, ``null``, ``[7.0, 19.0]``, ``{plumbing: 90.0}``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


# ------------------------------------------------------------------ models outside the config
@dataclass(frozen=True)
class Described:
    """What a model parameter means and its unit; ``source``/``allowed`` only where the default words do not fit."""

    meaning: str
    unit: str
    source: str = ""
    allowed: str = ""


def _d(meaning: str, unit: str, source: str = "", allowed: str = "") -> Described:
    return Described(meaning, unit, source, allowed)


#: Where a standalone model takes a parameter from the scenario instead of its own key.
def _from(key: str) -> str:
    return f"run setting (a case arm takes the scenario's {key})"


CHOICE = "policy choice (what the arms of a case compare)"
IN_CODE = "assumption (a round figure; not calibrated; fixed where the twin uses it)"
UNCHECKED = "any value (the model does not check it)"
FIXED = "fixed in code (not set by a scenario or a case)"
ANY_LOGIT = "any number (a logit)"

#: The policy models whose parameters live outside the scenario config, as ``module:class``, and how a run
#: sets them: ``case`` models take ``<name>.<param>=value`` in a case's arms (``scenarios/case/``), the
#: others are fixed where the twin or a case model uses them.
MODELS = {
    "policies.garbage_points:GarbagePoints": "case",
    "policies.service_station:ServiceStation": "case",
    "policies.mediation:Mediation": "case",
    "policies.needs:Needs": "case",
    "policies.green_account:GreenAccount": "case",
    "policies.pet_code:PetCode": "case",
    "policies.anti_fraud:AntiFraud": "case",
    "policies.deliberation:Deliberation": "case",
    "twin.collection_case:CollectionCase": "case",
    "policies.waste:Vehicle": "fixed",
    "policies.waste:FillTriggered": "fixed",
    "policies.staffing:ForecastStaffing": "fixed",
    "policies.forecast:DemandForecaster": "fixed",
}

#: Meaning and unit of every parameter of :data:`MODELS`, by the model's ``name``.  The models declare
#: their defaults (signatures) and checks (``check()``), which the table reads; their meanings are
#: written here, and a test fails when a model gains a parameter this table does not describe.
MODEL_DESCRIPTIONS = {
    "garbage_points": {
        "detection": _d("how a garbage point is found: residents' calls, or cameras (calls where no camera looks)",
                        "name", CHOICE),
        "dispatch": _d("how a cleaner is sent: the office relays to the zone's cleaner, or the first to arrive "
                       "is sent at once", "name", CHOICE),
        "days": _d("days simulated", "days", _from("sim.days")),
        "buildings": _d("buildings on the map", "buildings", _from("community.buildings")),
        "points_per_building_day": _d("garbage points appearing at a building a day (Poisson, in the shift)",
                                      "per building-day"),
        "shift_hours": _d("the cleaners' shift: start and end", "hours of day"),
        "cleaners": _d("cleaners on the shift (one zone each)", "workers"),
        "calls_per_hour": _d("how often residents who see a point call the office (the wait for a call is "
                             "exponential with mean 60 / calls_per_hour)", "per hour"),
        "office_minutes": _d("mean time the office takes to relay a call to a cleaner (manual dispatch)", "min"),
        "camera_coverage": _d("share of buildings a camera watches", "share"),
        "camera_scan_minutes": _d("how often a camera's recogniser looks", "min"),
        "clean_minutes": _d("mean time to clear a point (exponential)", "min"),
        "walk_m_per_min": _d("cleaners' walking speed", "m/min", _from("staff.walk_m_per_min")),
    },
    "service_station": {
        "layout": _d("separate windows per service class, or one integrated front desk with a back office",
                     "name", CHOICE),
        "households": _d("households served", "households", _from("community.households")),
        "days": _d("days simulated", "days", _from("sim.days")),
        "visits_per_household_day": _d("visits to the station per household a day (Poisson)",
                                       "per household-day"),
        "class_mix": _d("share of visits needing each class: government, living, culture, health", "shares"),
        "work_minutes": _d("a specialist's mean work time per class: government, living, culture, health",
                           "min"),
        "multi_share": _d("share of visits that need a second class too", "share"),
        "open_hour": _d("when the station opens", "hour of day"),
        "hour_profile": _d("relative arrivals in each opening hour, from open_hour (mornings busiest)",
                           "weights"),
        "window_staff": _d("clerks at each class's window (windows layout)", "workers"),
        "front_staff": _d("generalists at the front desk (integrated layout)", "workers"),
        "back_staff": _d("back-office specialists, pooled (integrated layout)", "workers"),
        "back_office_classes": _d("classes routed to the back office (integrated layout)", "names"),
        "intake_minutes": _d("front-desk time to take in a back-office matter", "min"),
        "pickup_minutes": _d("time at the output window to collect a back-office matter", "min"),
        "generalist_factor": _d("a generalist's work time relative to a specialist's", "times"),
        "booking_share": _d("share of visits booked online (a slot off the peak, documents checked "
                            "beforehand)", "share", CHOICE),
        "booked_factor": _d("a booked visit's work time relative to an unbooked one's", "times"),
        "wage_per_hour": _d("a staff member's cost an hour (operating cost)", "yuan/h"),
        "tolerance_minutes": _d("mean of the minutes a resident tolerates before being dissatisfied "
                                "(exponential)", "min"),
        "wait_weight": _d("how much longer a minute of waiting feels than a minute of being served", "times"),
        "target_wait_minutes": _d("mean wait a layout is sized to for the cost comparison (null: not sized)",
                                  "min"),
    },
    "mediation": {
        "method": _d("how disputes are matched to mediators: rotation, greedy by skill, or the optimal "
                     "assignment", "name", CHOICE),
        "households": _d("households filing disputes", "households", _from("community.households")),
        "days": _d("days simulated", "days", _from("sim.days")),
        "disputes_per_household_year": _d("disputes filed per household a year (Poisson)", "per household-year"),
        "kind_mix": _d("share of disputes of each kind: elevator, parking, noise, pets", "shares"),
        "mediators": _d("mediators", "workers"),
        "max_cases": _d("disputes a mediator takes at once", "disputes"),
        "specialty_skill": _d("a mediator's mean skill in their specialty", "skill (0-1)"),
        "other_skill": _d("a mediator's mean skill in the other kinds", "skill (0-1)"),
        "skill_spread": _d("spread of skills around those means", "skill (0-1)"),
        "base_logit": _d("logit of settling when skill equals the dispute's difficulty", "logit",
                         allowed=ANY_LOGIT),
        "skill_weight": _d("logit added per unit of skill above the difficulty", "logit per skill"),
        "mean_days": _d("mean days a mediation takes at a perfect match (exponential)", "days"),
    },
    "needs": {
        "placement": _d("how services are placed: money split evenly, or where a yearly survey finds the need",
                        "name", CHOICE),
        "households": _d("households", "households", _from("community.households")),
        "years": _d("years after the starting layout", "years"),
        "need_prevalence": _d("chance a household has a need in each category: commute, meals, reading, "
                              "elderly care, childcare, health, sports, parking", "probabilities"),
        "budget": _d("money spent on services a year", "money units"),
        "added_budget_per_year": _d("money added each year, placed by the same method", "money units per year"),
        "unit_cost": _d("money that meets 63% (1 - 1/e) of a category's need", "money units"),
        "tolerance": _d("unmet need at which a household is satisfied with probability one half", "need",
                        allowed="any number"),
        "slope": _d("how sharply satisfaction falls around the tolerance", "need"),
        "survey_sample": _d("households asked each year (survey placement)", "households"),
        "response_rate": _d("chance an asked household answers", "probability"),
        "answer_noise": _d("error of a stated need's intensity (standard deviation)", "need"),
        "build_rate": _d("share of the way services move each year towards the survey's placement", "share"),
    },
    "green_account": {
        "points_per_drop": _d("points a correct drop earns", "points", CHOICE),
        "smart_bins": _d("bins verify each drop and tell the household how it did", "flag", CHOICE),
        "start_day": _d("day the programme starts (the days before are the baseline)", "day"),
        "window_days": _d("the last days of the run the after figures are read over", "days"),
        "sorting_base": _d("logit of a household sorting before any reward, peer or engagement effect", "logit",
                           allowed=ANY_LOGIT),
        "learn_rate": _d("share of the way to perfect a household's accuracy moves with each verified drop",
                         "share"),
        "skill_mean": _d("households' mean starting accuracy when they sort", "share"),
        "skill_spread": _d("half-width of the uniform spread of starting accuracy", "share",
                           allowed="skill_mean ± skill_spread inside 0..1"),
        "waste_kg_per_person": _d("a person's waste a day", "kg per person-day"),
        "sortable_share": _d("part of the waste a correct drop keeps out of the residual bin", "share"),
    },
    "pet_code": {
        "enabled": _d("the three-colour code runs from start_day", "flag", CHOICE),
        "start_day": _d("day the code starts (the days before are the baseline)", "day"),
        "window_days": _d("the last days of the run the after figures are read over", "days"),
        "pet_share": _d("share of households with a dog", "share"),
        "walks_per_day": _d("walks a day per dog", "per day"),
        "violation_base": _d("logit of an owner leaving the mess on a walk, before propensity and deterrence",
                             "logit", allowed=ANY_LOGIT),
        "propensity_spread": _d("spread of owners' own propensity (normal, standard deviation)", "logit"),
        "witness_prob": _d("chance a violation is witnessed", "probability"),
        "report_prob": _d("chance a witness complains (before) or scans and reports (with the code)",
                          "probability"),
        "starting_points": _d("points each owner starts with", "points"),
        "points_per_violation": _d("points a report deducts", "points"),
        "deduction_effect": _d("deterrence per remembered report against the owner", "logit"),
        "memory_decay": _d("share of a report's deterrence kept from one day to the next", "per day"),
        "colour_effect": _d("deterrence per step of the owner's colour (green 0, yellow 1, red 2)", "logit"),
        "record_days": _d("days of reports the colour counts", "days"),
        "red_at": _d("reports in the record that make an owner red", "reports"),
    },
    "anti_fraud": {
        "check_rate": _d("share of claims spot-checked", "share", CHOICE),
        "points_per_claim": _d("points a credited claim earns", "points"),
        "penalty_points": _d("points a caught false claim costs", "points"),
        "dishonest_share": _d("share of adults who may claim what they did not do", "share"),
        "fraud_base": _d("logit of a false claim before what it is worth and past catches", "logit",
                         allowed=ANY_LOGIT),
        "caught_effect": _d("deterrence per remembered catch", "logit"),
        "caught_memory": _d("share of a catch's deterrence kept from one day to the next", "per day"),
        "check_minutes": _d("staff time a check takes", "min"),
        "staff_cost_per_hour": _d("staff cost an hour (cost of the checks)", "yuan/h"),
    },
    "deliberation": {
        "method": _d("how ballots are cast and counted: a participatory budget, or a single-winner method",
                     "name", CHOICE),
        "budget": _d("the micro-renewal fund", "thousand yuan"),
        "quorum": _d("share of eligible voters who must vote for the result to stand", "share"),
        "threshold": _d("majority a topic needs to carry (the voting service's thresholds)", "name",
                        allowed="one of 'none', 'simple', 'two_thirds' (checked by the voting service)"),
        "eligibility": _d("who may vote: every adult, or one vote per household", "name",
                          allowed="one of 'adult', 'household' (checked by the voting service)"),
        "notice_days": _d("notice between screening and the vote", "days"),
        "channels": _d("how votes are cast: online, at the meeting, or both", "name", CHOICE),
        "households": _d("households", "households", _from("community.households")),
        "adults_per_household": _d("adults in a household", "persons"),
        "elder_share": _d("share of adults aged 60+", "share"),
        "propose_share": _d("share of residents who propose a project", "share"),
        "min_proposers": _d("proposers a project kind needs to go on the ballot", "residents"),
        "taste_spread": _d("spread of personal taste around a group's appeal (normal, standard deviation)",
                           "value"),
        "awareness_days": _d("mean days until a resident hears of a vote during the notice", "days"),
        "online_vote": _d("chance one who heard votes online: younger adults, elders", "probabilities"),
        "offline_vote": _d("chance one who heard votes at the meeting: younger adults, elders", "probabilities"),
    },
    "waste": {
        "collection": _d("fixed rounds, or rounds triggered by the bins' fill sensors", "name", CHOICE,
                         allowed="one of fixed, fill"),
        "bin_spread": _d("bins hold 1 - bin_spread to 1 + bin_spread times what the sensors assume (0: alike "
                         "bins)", "share", allowed="a number in [0, 1)"),
        "top_up_hours": _d("a round that goes anyway also empties bins full within this many hours",
                           "h", allowed="a number of hours >= 0"),
    },
    "vehicle": {
        "capacity_bins": _d("bins a vehicle empties before it must unload", "bins", IN_CODE),
        "speed_km_per_h": _d("driving speed between stops", "km/h", IN_CODE),
        "stop_minutes": _d("time to empty one bin", "min", IN_CODE),
        "unload_minutes": _d("time to unload at the depot", "min", IN_CODE),
        "crew": _d("workers on a vehicle", "workers", IN_CODE),
        "crew_cost_per_hour": _d("a crew member's cost an hour", "yuan/h", IN_CODE),
        "cost_per_km": _d("running cost of the vehicle per km", "yuan/km", IN_CODE),
    },
    "fill": {
        "hours": _d("hours of day the sensors are looked at", "hours of day", IN_CODE),
        "full_at": _d("fill at which a bin counts as full", "bins", IN_CODE),
        "top_up_hours": _d("a round that goes anyway also empties bins full within this many hours", "h",
                           "set by the routes case (waste.top_up_hours)", "as waste.top_up_hours"),
    },
    "forecast": {
        "utilisation": _d("share of a shift the forecast work should fill", "share",
                          "run setting (the scenario's policies.staffing_utilisation)",
                          "as policies.staffing_utilisation"),
        "warmup_days": _d("days of ticket history before forecasting starts (before: the whole crew)",
                          "days", IN_CODE),
        "retrain_days": _d("how often the forecaster is fitted again", "days", IN_CODE),
        "walk_minutes": _d("walk added to each ticket's forecast work", "min", IN_CODE),
        "min_technicians": _d("fewest technicians on a shift", "workers", IN_CODE),
        "n_estimators": _d("trees in the staffing's forecaster", "trees", IN_CODE),
    },
    "random_forest": {
        "n_estimators": _d("trees in the forest (staffing uses forecast.n_estimators)", "trees", IN_CODE),
        "min_samples_leaf": _d("fewest training days in a leaf", "days", IN_CODE),
        "random_state": _d("seed of the forest's own draws", "seed", IN_CODE),
    },
}


def model_classes() -> list[tuple[type, str]]:
    """``(class, how it is set)`` of each model in :data:`MODELS`."""
    import importlib

    out = []
    for target, how in MODELS.items():
        module, _, name = target.partition(":")
        out.append((getattr(importlib.import_module(module), name), how))
    return out


def declared_checks(model) -> dict[str, str]:
    """What ``model.check()`` allows, parameter by parameter, in the words of its refusals.

    The check runs on the defaults while checks record instead of refusing
    (:func:`twin.config.reading_checks`), so the table shows the very rule a case's value goes through.
    """
    from twin.config import reading_checks

    if not hasattr(model, "check"):
        return {}
    with reading_checks() as read:
        model.check()
    return read


def _calibrations() -> dict[str, str]:
    """``{model key: source}`` of every parameter a shipped case says it calibrated."""
    from twin.cases import case_names, load_case

    out: dict[str, list[str]] = {}
    for name in case_names():
        for entry in load_case(name).calibrated:
            out.setdefault(entry["param"], []).append(f"{name} case, {entry['figure']}")
    return {k: "calibrated: " + "; ".join(v) + " (scenarios/case/)" for k, v in out.items()}


def model_parameters() -> list[Parameter]:
    """Every parameter of the policy models of :data:`MODELS`, keyed ``<model name>.<param>``."""
    from twin.config import ASSUMED

    calibrated = _calibrations()
    rows = []
    for cls, how in model_classes():
        model = cls()
        checks = declared_checks(model)
        described = MODEL_DESCRIPTIONS.get(cls.name, {})
        for name, default in model.get_params().items():
            key = f"{cls.name}.{name}"
            d = described.get(name, Described("", ""))
            rows.append(Parameter(key, f"models.{cls.name}", d.meaning, d.unit, default,
                                  d.allowed or checks.get(name, UNCHECKED if how == "case" else FIXED),
                                  calibrated.get(key) or d.source or ASSUMED))
    return rows


#: The city config's keys (``scenarios/city/*.yaml``) beyond its communities' own scenarios.
CITY_DESCRIPTIONS = {
    "name": _d("the city's name (city folders are named after it)", "name", "run setting (chosen per run)",
               "a name"),
    "seed": _d("seed of the city: community i's seed is a draw of (seed, i)", "seed", "run setting (chosen per run)"),
    "days": _d("simulated days, for every community", "days", "run setting (chosen per run)"),
    "communities[].scenario": _d("the scenario a community (or `count` alike ones) is built from", "name",
                                 "run setting (chosen per run)", "a shipped scenario's name"),
    "communities[].overrides": _d("key=value overrides of that scenario", "overrides",
                                  "run setting (chosen per run)", "a list of key=value strings"),
    "communities[].count": _d("how many communities this entry makes", "communities",
                              "run setting (chosen per run)", "an integer >= 1"),
    "communities[].label": _d("the communities' label (their index is appended)", "name",
                              "run setting (chosen per run)", "a name"),
    "district.technicians": _d("technicians of the district crew (0: none)", "workers"),
    "district.overflow_after_minutes": _d("a ticket its community cannot start within this long is offered "
                                          "to the district", "min"),
    "district.shift_start_hour": _d("when the district crew's shift starts", "hour of day"),
    "district.shift_end_hour": _d("when the district crew's shift ends", "hour of day"),
    "district.travel_minutes": _d("travel from the district office to a community", "min"),
    "mediation.mediators": _d("mediators of the district pool (0: none; without a mediation: block the "
                              "communities run no mediation)", "workers"),
    "mediation.max_cases": _d("disputes a district mediator takes at once", "disputes"),
    "mediation.method": _d("how the district pool matches the disputes it takes (as mediation.method)", "name"),
    "mediation.specialties": _d("the district mediators' specialties, mediator i taking entry i mod length",
                                "kinds"),
    "mediation.specialty_skill": _d("a district mediator's mean skill in their specialty", "skill (0-1)"),
    "mediation.other_skill": _d("a district mediator's mean skill in the other kinds", "skill (0-1)"),
    "mediation.skill_spread": _d("spread of the district mediators' skills around those means", "skill (0-1)"),
    "mediation.refer_after_days": _d("a dispute still waiting for a mediator after this long is offered to "
                                     "the district", "days"),
    "mediation.min_local_skill": _d("a dispute is offered at once when no local mediator has this skill in its "
                                    "kind (0: never for that reason)", "skill (0-1)"),
}


def _refusal(key: str, value) -> str:
    """The allowed values a city's refusal of ``key = value`` names (the city's own words)."""
    from twin.city import city_config
    from twin.config import ConfigError

    section, _, name = key.rpartition(".")
    raw = {"communities": [{}], **({section: {name: value}} if section else {name: value})}
    try:
        city_config(raw)
    except ConfigError as e:
        return str(e).partition("allowed: ")[2] or UNCHECKED
    return UNCHECKED


def city_parameters() -> list[Parameter]:
    """The city config's own keys (its communities' keys are the scenario's, above); defaults and
    allowed values are read off a minimal city and the city's refusals."""
    from twin.city import city_config
    from twin.config import ASSUMED

    city = city_config({"communities": [{}], "mediation": {}})
    defaults = {"name": "the file's name", "seed": city.seed, "days": city.days,
                "communities[].scenario": "default", "communities[].overrides": [],
                "communities[].count": 1, "communities[].label": "the scenario's name"}
    defaults.update({f"district.{k}": v for k, v in vars(city.district).items()})
    defaults.update({f"mediation.{k}": v for k, v in vars(city.mediation).items()})
    return [Parameter(key, "city", d.meaning, d.unit, defaults[key], d.allowed or _refusal(key, -1),
                      d.source or ASSUMED) for key, d in CITY_DESCRIPTIONS.items()]


def all_parameters() -> list[Parameter]:
    """The scenario config's parameters, then the policy models' and the city config's."""
    return [*parameters(), *model_parameters(), *city_parameters()]


# ------------------------------------------------------------------ scenarios
def _flatten(value, prefix: str = "") -> dict:
    if is_dataclass(value):
        out = {}
        for f_ in fields(value):
            out.update(_flatten(getattr(value, f_.name), f"{prefix}{f_.name}."))
        return out
    return {prefix.rstrip("."): value}


def scenario_changes() -> dict[str, tuple[str, dict]]:
    """Per shipped scenario: its one-line description and the keys it sets away from the defaults."""
    from twin.config import TwinConfig, load_scenario, scenario_description, scenarios

    defaults = _flatten(TwinConfig())
    out = {}
    for name in scenarios():
        values = _flatten(load_scenario(name))
        changed = {k: v for k, v in values.items() if k != "name" and v != defaults.get(k)}
        out[name] = (scenario_description(name), changed)
    return out


# ------------------------------------------------------------------ points table
def default_points_table() -> tuple[list[dict], list[dict]]:
    """The services' default activities (with the schedule the twin offers them on) and catalog."""
    from policies.rules import PointsRuleTable

    table = PointsRuleTable()
    rules = table.rules()
    activities = [{"name": a.name, "points": a.points, "unit": a.unit, "daily_cap": a.daily_cap,
                   "per_week": s[0], "hour": s[1], "minutes": s[2], "appeal": s[3]}
                  for a, s in zip(rules.activities, table.schedule())]
    catalog = [{"name": i.name, "cost": i.cost, "stock": i.stock} for i in rules.catalog]
    return activities, catalog


# ------------------------------------------------------------------ writing
def to_csv() -> str:
    """The table as CSV: one row per parameter (:func:`all_parameters`), the columns of :data:`COLUMNS` plus ``section``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["section", *COLUMNS], lineterminator="\n")
    writer.writeheader()
    for p in all_parameters():
        writer.writerow({"section": p.section, **p.row()})
    return buf.getvalue()


def _cell(text) -> str:
    """Text for a Markdown table cell: pipes escaped, and angle brackets (``<scenario>``) kept as text, not HTML."""
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def _md_table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return lines


def _param_table(rows) -> list[str]:
    return _md_table(["key", "meaning", "unit", "default", "allowed", "source"],
                     [[f"`{p.key}`", p.meaning, p.unit, f"`{format_value(p.default)}`", p.allowed, p.source]
                      for p in rows])


def to_markdown() -> str:
    """The table as the Markdown page ``docs/parameters.md``."""
    from twin import __version__

    params = parameters()
    out = [
        "# Parameters",
        "",
        f"Every parameter of community-twin {__version__}, generated by `twin params` from the typed "
        "configuration (`twin/config.py`, where each parameter is declared with its meaning, unit, allowed "
        "values and source), the policy models that run outside it and the city config (their defaults and "
        "checks read from the code, their meanings from `twin/params.py`), the case studies' calibrations "
        "(`scenarios/case/*.yaml`) and the shipped scenarios (`scenarios/*.yaml`). Do not edit this page by hand: "
        "`twin params --out docs/parameters.md` rewrites it, and a test fails when it is out of date.",
        "",
        "Set any key in a scenario file or on the command line (`twin run community.households=500`). "
        "**Source** says where a default comes from: *calibrated* values were fitted to a case study's "
        "reported figure (see [Validation](validation.md) for what is checked independently of that "
        "fit), *assumption* marks a round figure chosen without data, and *run setting* a choice made "
        "per run. `twin params --format csv` gives the same table as CSV.",
        "",
    ]
    for name, meaning in sections():
        rows = [p for p in params if p.section == name or p.section.startswith(name + ".")]
        if not rows:
            continue
        out += [f"## {name}", "", f"{meaning[:1].upper()}{meaning[1:]}.", ""]
        out += _param_table(rows)
        out.append("")
    out += ["## Policy models outside the scenario", "",
            "Standalone models a case runs in place of the twin (`model:` in `scenarios/case/*.yaml`) take "
            "`<model>.<param>=value` in the case's arms (`garbage_points.calls_per_hour=2`); the others are "
            "fixed where the twin or a case model uses them. Allowed values are the words of each model's own "
            "check.", ""]
    by_model = {}
    for p in model_parameters():
        by_model.setdefault(p.section.partition(".")[2], []).append(p)
    for cls, how in model_classes():
        set_by = "set in a case's arms" if how == "case" else "fixed in code"
        out += [f"### {cls.name}", "", f"`{cls.__module__}.{cls.__name__}` ({set_by}).", ""]
        out += _param_table(by_model[cls.name])
        out.append("")
    out += ["## City", "",
            "A city config (`scenarios/city/*.yaml`, `twin city`; see [A city](city.md)): its communities, "
            "each a scenario with overrides (the keys above), and the district crew they share.", ""]
    out += _param_table(city_parameters())
    out.append("")
    out += ["## Shipped scenarios", "", "What each scenario in `scenarios/` sets away from the defaults above.", ""]
    for name, (description, changed) in scenario_changes().items():
        out += [f"### {name}", "", description or "(no description)", ""]
        if changed:
            out += _md_table(["key", "value", "default"],
                             [[f"`{k}`", f"`{format_value(v)}`", f"`{format_value(_default(params, k))}`"]
                              for k, v in changed.items()])
        else:
            out.append("The defaults, unchanged.")
        out.append("")
    activities, catalog = default_points_table()
    out += ["## Default points table", "",
            "What `policies.points.activities` and `policies.points.catalog` mean when left empty: the "
            "rule table of the Chengdu case (from `twin.services.points`), offered on the schedule in "
            "`policies.rules`.", ""]
    out += _md_table(list(activities[0]), [[format_value(v) for v in a.values()] for a in activities])
    out += ["", "Catalog (`stock` -1: unlimited):", ""]
    out += _md_table(list(catalog[0]), [[format_value(v) for v in i.values()] for i in catalog])
    out.append("")
    return "\n".join(out)


def _default(params, key):
    return next((p.default for p in params if p.key == key), None)


def render(fmt: str = "md") -> str:
    """The table in ``fmt`` (one of :data:`FORMATS`)."""
    from twin.config import ConfigError

    if fmt not in FORMATS:
        raise ConfigError(f"format = {fmt!r} is not allowed; expected one of {', '.join(map(repr, FORMATS))}")
    return to_markdown() if fmt == "md" else to_csv()
