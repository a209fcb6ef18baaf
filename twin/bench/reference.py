"""The twin side by side with its reference models: Mesa (the whole community) and SimPy (the repair desk).

* :func:`versus_mesa` — the same config and seed in one process: the Mesa
  reference (``twin.reference.mesa_model``) for a short horizon, the twin for
  a longer one, both after a warm-up, builds and summaries timed apart.  Speed-up = Mesa's
  seconds per simulated day / the twin's.  Per day is the fair unit: both
  step day by day at a roughly constant cost (Mesa visits every agent every
  tick; the twin calls a few compiled kernels per day), so a short Mesa run
  scales to a year by its days.
* :func:`versus_simpy` — the repair queue of the ``queue_check`` scenario at a
  high arrival rate: the twin's repair path (the day's submissions and
  dispatch, then the staff's transitions; the rest of the day is not timed)
  against the SimPy desk, both emitting the same four desk events per ticket
  (submitted, dispatched, started, completed; ratings off).  Rates are desk
  events per second of wall time.
"""
from __future__ import annotations

import time

from twin.bench.engine import scenario_for

REPAIR_KINDS = ("TicketSubmitted", "TicketDispatched", "TicketStarted", "TicketCompleted", "TicketRated")


def versus_mesa(n_residents: int = 10_000, mesa_days: int = 3, twin_days: int = 30, seed: int = 1) -> dict:
    """Seconds per simulated day, Mesa reference vs twin, same config and seed, and their ratio.

    Each side's days are timed alone (its steps); the build before and the summary after are
    fixed costs of a run, timed apart, and counted once in the year figure.
    """
    from twin.engine import Twin
    from twin.reference.mesa_model import ReferenceModel
    from twin.results import Result

    cfg = scenario_for(n_residents, [f"seed={seed}", f"sim.days={twin_days}"])
    Twin(scenario_for(2_000, ["sim.days=3"])).run()  # kernels compiled or loaded
    t0 = time.perf_counter()
    tw = Twin(cfg)
    t1 = time.perf_counter()
    for _ in range(twin_days):
        tw.step()
    t2 = time.perf_counter()
    Result.from_twin(tw)
    t3 = time.perf_counter()
    twin_build, twin_per_day, twin_result = t1 - t0, (t2 - t1) / twin_days, t3 - t2
    t0 = time.perf_counter()
    model = ReferenceModel(cfg)
    t1 = time.perf_counter()
    ticks = model.ticks_per_day
    for _ in range(mesa_days * ticks):
        model.step()
    t2 = time.perf_counter()
    model.summary()
    t3 = time.perf_counter()
    mesa_build, mesa_per_day, mesa_result = t1 - t0, (t2 - t1) / mesa_days, t3 - t2
    return {
        "residents": tw.community.n_residents,
        "twin_days": twin_days, "mesa_days": mesa_days,
        "twin_s_per_day": twin_per_day, "mesa_s_per_day": mesa_per_day,
        "twin_build_s": twin_build, "mesa_build_s": mesa_build,
        "twin_result_s": twin_result, "mesa_result_s": mesa_result,
        "speedup_vs_mesa": mesa_per_day / twin_per_day,
        "speedup_vs_mesa_year_incl_build": ((mesa_build + 365 * mesa_per_day + mesa_result)
                                            / (twin_build + 365 * twin_per_day + twin_result)),
        "mesa_agent_steps_per_s": model.agents.__len__() * ticks / mesa_per_day,
    }


def versus_simpy(arrivals_per_hour: float = 60.0, technicians: int = 50, twin_days: int = 30,
                 simpy_days: int = 3, seed: int = 1) -> dict:
    """Desk events per second: the twin's repair path vs the SimPy desk on the same M/M/c queue."""
    from twin.config import load_scenario
    from twin.engine import Twin
    from twin.reference.simpy_desk import run_desk
    from twin.services.events import EventKind

    over = [f"seed={seed}", f"queue_check.arrivals_per_hour={arrivals_per_hour}",
            f"staff.technicians={technicians}", "staff.rating_prob=0", "progress=false"]
    Twin(load_scenario("queue_check", over + ["sim.days=2"])).run()  # warm
    tw = Twin(load_scenario("queue_check", over + [f"sim.days={twin_days}"]))
    spent = [0.0]
    for name in ("_repair_demand", "_flush_transitions"):
        fn = getattr(tw, name)

        def timed(*args, _fn=fn, **kwargs):
            t0 = time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t0
        setattr(tw, name, timed)
    tw.run()
    kinds = tw.log.events["kind"]
    twin_events = int(sum((kinds == EventKind[k]).sum() for k in REPAIR_KINDS))
    sp = run_desk(load_scenario("queue_check", over + [f"sim.days={simpy_days}"]))
    twin_rate, simpy_rate = twin_events / spent[0], sp.desk_events / sp.wall_s
    return {
        "arrivals_per_hour": arrivals_per_hour, "technicians": technicians,
        "twin_repair_events": twin_events, "twin_repair_s": spent[0],
        "twin_repair_events_per_s": twin_rate,
        "simpy_desk_events": sp.desk_events, "simpy_s": sp.wall_s,
        "simpy_desk_events_per_s": simpy_rate,
        "simpy_kernel_events_per_s": sp.kernel_events / sp.wall_s,
        "speedup_vs_simpy": twin_rate / simpy_rate,
    }
