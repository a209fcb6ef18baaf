"""The policy interface: a small object configured by parameters only.

Like a scikit-learn estimator, a policy's constructor stores its parameters
and does nothing else; ``get_params`` / ``set_params`` / ``repr`` come from the
signature, so a planner can list, copy and compare policies.  The engine asks
each policy for what it needs (a compiled scoring function, a services policy
object, thresholds) through the verbs documented on each kind.
"""
import inspect

from twin.config import _check as _refuse_unless  # the scenario's own refusal: key, allowed values, value


class Policy:
    """Base class: parameters in, introspectable, no work in ``__init__``."""

    #: the name used in scenario configs
    name = ""

    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict:
        return {p: getattr(self, p) for p in self._param_names()}

    def set_params(self, **params):
        unknown = set(params) - set(self._param_names())
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameter(s) {sorted(unknown)}; "
                             f"parameters: {self._param_names()}")
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def need(self, ok, key: str, allowed: str) -> None:
        """Refuse parameter ``key`` unless ``ok``: a ``ConfigError`` naming ``<name>.<key>``, what is allowed
        and the value given, worded as a scenario key's refusal (a policy's ``check`` calls it)."""
        _refuse_unless(bool(ok), f"{self.name}.{key}", allowed, getattr(self, key))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_params() == other.get_params()
