"""The GPU backend (``sim.engine: cuda``): the CPU's own per-agent rules, one CUDA thread per agent.

The resident rule (:func:`agents.residents.resident_day` after
:func:`agents.residents.peer_share_of`) and the households' meters
(:func:`agents.sensors.household_day`) are plain functions.  The CPU engine
runs them in a ``prange`` loop; here the very same functions are compiled
again with ``cuda.jit(device=True)`` and each GPU thread runs one agent.
What they call (``twin.rng``'s draws, ``logistic``) are ``numba.njit``
functions, which numba compiles for the device when device code calls them:
no rule and no draw exists twice.

Where the state lives:

* the resident rule's own state (fatigue, peer share, last active day,
  awareness of the points programme) and
  the community's static arrays (flags, engagement, the social graph) stay on
  the device for the whole run; each day the services' balances, the open
  topics and who already voted go up, and the day's decisions come down —
  what the services need;
* the households' hidden truth (incapacitation, care) is changed by the
  engine's CPU code between days (rescues, missed incidents, forks), and
  their readings feed the detectors on the CPU, so the households' arrays go
  up and the readings come down each day.

The services apply the decisions on the CPU, in the same order as with the
CPU engine, so the event log is the same.  Tests run the kernels under the
CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set before numba is first
imported), where device code runs as Python, and compile to PTX for a real
GPU where the CUDA toolkit is installed.  On a GPU, multiplies and adds are
not fused (see :func:`_without_fused_multiply_add`), so every recorded
minute rounds as on the CPU; only ``exp``/``log`` (libdevice), behind the
residents' probabilities, may differ from the CPU's in a last bit, which
could flip a draw that lands exactly on it (``twin.bench.gpu`` checks the
log on a real device).

:func:`attach` switches a :class:`~twin.engine.twin.Twin` to this backend;
``Twin`` calls it when ``sim.engine`` is ``cuda``.
"""
from __future__ import annotations

import numpy as np

if not hasattr(np, "row_stack"):  # numba-cuda still overloads np.row_stack, which numpy 2.5 removed
    np.row_stack = np.vstack

from numba import config as numba_config  # noqa: E402
from numba import cuda  # noqa: E402

from agents import residents, sensors  # noqa: E402
from twin.config import ConfigError  # noqa: E402

THREADS_PER_BLOCK = 128


def _without_fused_multiply_add() -> None:
    """Have NVVM compile device code with ``-fma=0``, as numba compiles for the CPU.

    A fused multiply-add rounds once where the CPU rounds the product and the
    sum apart, so ``base + u * 840.0`` (a ballot's minute) could differ in its
    last bit from the CPU's, and the event log with it.  ``cuda.jit`` has no
    switch for it, so NVVM's compile step gets the option here, for this
    process (a ``fastmath`` kernel still fuses).  Where numba compiles another
    way the option is not set, and ``twin.bench.gpu``'s log check tells.
    """
    try:
        from numba.cuda.cudadrv import nvvm
    except ImportError:
        return
    compile_ir = getattr(nvvm, "compile_ir", None)
    if compile_ir is None or getattr(compile_ir, "without_fma", False):
        return

    def compile_without_fma(llvmir, **options):
        if not options.get("fastmath"):
            options.setdefault("fma", False)
        return compile_ir(llvmir, **options)

    compile_without_fma.without_fma = True
    nvvm.compile_ir = compile_without_fma


if not numba_config.ENABLE_CUDASIM:
    _without_fused_multiply_add()


def _python(rule):
    """The plain Python function behind a compiled rule (itself when the JIT is disabled)."""
    return getattr(rule, "py_func", rule)


# the CPU's per-agent rules, compiled for the device
peer_share_of = cuda.jit(device=True)(_python(residents.peer_share_of))
effects_of = cuda.jit(device=True)(_python(residents.effects_of))
awareness_of = cuda.jit(device=True)(_python(residents.awareness_of))
resident_day = cuda.jit(device=True)(_python(residents.resident_day))
household_day = cuda.jit(device=True)(_python(sensors.household_day))


@cuda.jit
def _peer_share_kernel(indptr, indices, last_active, day, out):
    i = cuda.grid(1)
    if i < out.shape[0]:
        out[i] = peer_share_of(i, indptr, indices, last_active, day)


@cuda.jit
def _awareness_kernel(seed, day, flags, aware, indptr, indices, base, spread, out):
    i = cuda.grid(1)
    if i < out.shape[0]:
        awareness_of(i, seed, day, flags, aware, indptr, indices, base, spread, out)


@cuda.jit
def _residents_kernel(seed, day, keys, flags, engagement, fatigue, peer, last_active,
                      act_order, act_logit, act_logit_unaware, aware, peer_effect, engagement_effect, fatigue_effect,
                      fatigue_gain, fatigue_decay,
                      balances, costs, redeem_prob,
                      help_prob, help_minutes_mean, indptr, indices,
                      open_topics, vote_logit, vote_app_effect, vote_engagement_effect, voted,
                      out_act, out_redeem, out_help, out_help_minutes, out_help_t, out_vote, out_vote_t):
    i = cuda.grid(1)
    if i < flags.shape[0]:
        effects = effects_of(peer_effect, engagement_effect, fatigue_effect, fatigue_gain, fatigue_decay,
                             redeem_prob, help_prob, help_minutes_mean, vote_logit, vote_app_effect,
                             vote_engagement_effect)
        resident_day(i, seed, day, keys, flags, engagement, fatigue, peer, last_active, act_order, act_logit,
                     act_logit_unaware, aware, effects, balances, costs, indptr, indices, open_topics, voted,
                     out_act, out_redeem, out_help, out_help_minutes, out_help_t, out_vote, out_vote_t)


@cuda.jit
def _households_kernel(seed, day, use_keys, tick_min, alone, size, incap_since, care_until, fault,
                       fault_until, last_reading, incap_p, away_p, litres, kwh, drop_p, stuck_p, drift_p,
                       repair_days, faults_on, smoke_p, hourly_use, water, power, electricity, onset_t, smoke_t):
    h = cuda.grid(1)
    if h < alone.shape[0]:
        household_day(h, seed, day, use_keys, tick_min, alone, size, incap_since, care_until, fault,
                      fault_until, last_reading, incap_p, away_p, litres, kwh, drop_p, stuck_p, drift_p,
                      repair_days, faults_on, smoke_p, hourly_use, water, power, electricity, onset_t, smoke_t)


def simulated() -> bool:
    """Whether numba's CUDA simulator stands in for a GPU in this process."""
    return bool(numba_config.ENABLE_CUDASIM)


def check_available() -> None:
    """Raise a :class:`~twin.config.ConfigError` saying why ``sim.engine = 'cuda'`` cannot run here."""
    if not cuda.is_available():
        raise ConfigError(
            "sim.engine = 'cuda' needs a CUDA GPU, and numba found none (no NVIDIA driver or device); "
            "expected 'cpu' here, or set NUMBA_ENABLE_CUDASIM=1 before starting to run the GPU backend "
            "in numba's CUDA simulator (slow; for tests)")


def blocks_for(n: int) -> int:
    """Blocks of :data:`THREADS_PER_BLOCK` threads that give every one of ``n`` agents a thread."""
    return max(1, -(-n // THREADS_PER_BLOCK))


class _OnDevice:
    """A rule's state array that lives on the device: reading it copies it to the host, setting it uploads it."""

    def __set_name__(self, owner, name):
        self.slot = "_device_" + name

    def __get__(self, obj, owner=None):
        return self if obj is None else getattr(obj, self.slot).copy_to_host()

    def __set__(self, obj, value):
        setattr(obj, self.slot, cuda.to_device(np.ascontiguousarray(value)))


class DeviceResidentRule(residents.ResidentRule):
    """:class:`~agents.residents.ResidentRule` whose :meth:`decide` runs on the device.

    The same constructor, the same decisions in the same host arrays (``act``,
    ``redeem``, ``help*``, ``vote*``) after each call; ``fatigue``, ``peer``
    and ``last_active`` live on the device (reading one gives a host copy).
    """

    fatigue = _OnDevice()
    peer = _OnDevice()
    last_active = _OnDevice()
    aware = _OnDevice()

    def __init__(self, community, residents_cfg, points_policy, tick_minutes: int, seed: int, max_topics: int):
        check_available()
        super().__init__(community, residents_cfg, points_policy, tick_minutes, seed, max_topics)
        c = community
        self._static = [cuda.to_device(np.ascontiguousarray(a)) for a in
                        (c.flags, c.engagement, c.indptr, c.indices, self.logit, self.costs,
                         self.logit_unaware)]
        n = c.n_residents
        self._out = [cuda.device_array_like(a) for a in (self.redeem, self.help, self.help_minutes, self.help_t)]
        self._act = cuda.device_array_like(self.act)
        self._votes = {}  # open-topic slots -> the device's (vote, vote_t) of that width
        self.n = n

    def _vote_slots(self, k: int):
        if k not in self._votes:
            self._votes[k] = (cuda.device_array((self.n, k), np.bool_), cuda.device_array((self.n, k)))
        return self._votes[k]

    def decide(self, day: int, balances: np.ndarray, open_topics: np.ndarray, voted: np.ndarray) -> None:
        """One day of decisions on the device; they come back into ``act``, ``redeem``, ``help*`` and ``vote*``,
        and ``voted`` is updated in place (as on the CPU)."""
        k = len(open_topics)
        d_voted = cuda.to_device(voted)
        self.launch(day, cuda.to_device(balances), cuda.to_device(open_topics), d_voted)
        redeem, help_, help_minutes, help_t = self._out
        for device, host in zip((self._act, redeem, help_, help_minutes, help_t, d_voted),
                                (self.act, self.redeem, self.help, self.help_minutes, self.help_t, voted)):
            device.copy_to_host(host)
        vote, vote_t = self._vote_slots(k)
        self.vote[:, :k] = vote.copy_to_host()
        self.vote_t[:, :k] = vote_t.copy_to_host()

    def launch(self, day: int, balances, open_topics, voted) -> None:
        """The day's kernels (peer share, then decisions) on arrays already on the device; nothing comes back.

        :meth:`decide` is this between its copies; ``twin.bench.gpu`` times it alone.
        """
        r = self.r
        flags, engagement, indptr, indices, logit, costs, logit_unaware = self._static
        redeem, help_, help_minutes, help_t = self._out
        vote, vote_t = self._vote_slots(len(open_topics))
        grid = blocks_for(self.n), THREADS_PER_BLOCK
        if self.spreads and day > 0:
            learnt = cuda.device_array_like(self._device_aware)
            _awareness_kernel[grid](self.seed, day, flags, self._device_aware, indptr, indices,
                                    r.awareness_base_per_day, r.awareness_spread, learnt)
            self._device_aware = learnt
        _peer_share_kernel[grid](indptr, indices, self._device_last_active, day, self._device_peer)
        keys = cuda.to_device(residents.day_keys(self.seed, day, self._act.shape[1], len(open_topics)))
        _residents_kernel[grid](
            self.seed, day, keys, flags, engagement, self._device_fatigue, self._device_peer, self._device_last_active,
            cuda.to_device(self.order_of_day(day)), logit, logit_unaware, self._device_aware, r.peer_effect,
            r.engagement_effect, r.fatigue_effect,
            r.fatigue_gain, r.fatigue_decay, balances, costs, r.redeem_prob, r.timebank_help_prob,
            r.timebank_minutes_mean, indptr, indices, open_topics, r.vote_base, r.vote_app_effect,
            r.vote_engagement_effect, voted, self._act, redeem, help_, help_minutes, help_t, vote, vote_t)


def households_day(seed, day, tick_min, alone, size, incap_since, care_until, fault, fault_until,
                   last_reading, incap_p, away_p, litres, kwh, drop_p, stuck_p, drift_p, repair_days, faults_on,
                   smoke_p, hourly_use, water, power, electricity, onset_t, smoke_t) -> None:
    """:func:`agents.sensors.households_day` on the device: the same arguments, the same arrays written."""
    state = (incap_since, fault, fault_until, last_reading)  # read and written
    outputs = (hourly_use, water, power, electricity, onset_t, smoke_t)  # written whole
    d_state = [cuda.to_device(a) for a in state]
    d_out = [cuda.device_array_like(a) for a in outputs]
    d_incap, d_fault, d_fault_until, d_last = d_state
    _households_kernel[blocks_for(len(alone)), THREADS_PER_BLOCK](
        seed, day, cuda.to_device(sensors.use_keys_of(seed, day, hourly_use.shape[1])), tick_min,
        cuda.to_device(alone), cuda.to_device(size), d_incap, cuda.to_device(care_until),
        d_fault, d_fault_until, d_last, incap_p, away_p, litres, kwh, drop_p, stuck_p, drift_p, repair_days,
        faults_on, smoke_p, *d_out)
    for device, host in zip(d_state + d_out, state + outputs):
        device.copy_to_host(host)


def attach(twin) -> None:
    """Run ``twin``'s per-agent rules on the device from now on (its resident rule and households' meters).

    Called by ``Twin`` at construction when ``sim.engine`` is ``cuda``; a
    clear :class:`~twin.config.ConfigError` when there is no GPU (nor the simulator).
    """
    check_available()
    old = twin.rule
    rule = DeviceResidentRule(old.c, old.r, twin.policies.points, old.tick_minutes, old.seed, old.vote.shape[1])
    rule.fatigue, rule.peer, rule.last_active = old.fatigue, old.peer, old.last_active  # the state so far
    rule.aware = old.aware
    twin.rule = rule
    twin.households_day = households_day
