"""community-twin: a numba-accelerated digital twin of a residential community.

Simulated residents, sensors and staff run the real service logic
(``twin.services``): repair tickets, points, the time bank and voting.

>>> import twin
>>> cfg = twin.load_scenario("default", ["community.households=500", "sim.days=90"])
>>> result = twin.Twin(cfg).run()
>>> result.summary["participation_rate"]
"""
from twin import _numba_cache  # noqa: F401  (before numba compiles anything: see the module)

__version__ = "0.1.0"


def __getattr__(name):  # keep ``import twin`` light: numba kernels load on first use
    if name == "Twin":
        from twin.engine import Twin

        return Twin
    if name == "Result":
        from twin.results import Result

        return Result
    if name in ("load_scenario", "TwinConfig", "ConfigError"):
        from twin import config

        return getattr(config, name)
    raise AttributeError(f"module 'twin' has no attribute {name!r}")


__all__ = ["Twin", "Result", "load_scenario", "TwinConfig", "ConfigError", "__version__"]
