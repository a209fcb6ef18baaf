"""The engine: the day loop that drives agents and policies through the services.

``Twin(cfg).run()`` builds the community, then advances it one compiled day at
a time (24 hourly ticks per call) in the order of DESIGN.md's "One tick":
sensors → detectors → residents → services → staff → KPIs → (day end) chain.
"""
from twin.engine.twin import Twin

__all__ = ["Twin"]
