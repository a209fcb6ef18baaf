"""Slow, obvious reference models: oracles for the tests and baselines for the benchmarks.

* :mod:`twin.reference.mesa_model` — the whole community written the plain
  Mesa 3 way (one Python object per resident, home, building and worker;
  services called one command at a time through their object layer).
* :mod:`twin.reference.simpy_desk` — the repair desk and its technicians as
  SimPy processes, fed by the ``queue_check`` scenario's arrival process.

Both read the same :class:`~twin.config.TwinConfig` as the twin and use their
own randomness, so they agree with the twin in distribution, never draw by
draw.  Neither imports the engine's kernels or ``twin.rng``.
"""
from twin.reference.mesa_model import ReferenceModel, run_reference
from twin.reference.simpy_desk import DeskRun, erlang_c_wait, run_desk

__all__ = ["DeskRun", "ReferenceModel", "erlang_c_wait", "run_desk", "run_reference"]
