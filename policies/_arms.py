"""A standalone policy model's arm of a case: which overrides are the scenario's and which the policy's.

The points-rule models (green account, pet code, anti-fraud) run on the community a
scenario describes (its households, people and social network) but outside the day
step, so a case arm of theirs mixes two kinds of ``key=value`` overrides: the scenario's
(``community.households=240``, ``sim.days=60``: checked by :func:`twin.config.load_scenario`)
and the policy's own, under the policy's name (``green_account.points_per_drop=0``).  This
module splits them and checks the policy's against its parameters and their allowed values,
so a typo is refused by name like any scenario key.
"""
from __future__ import annotations

import yaml

from twin.config import ConfigError
from twin.config import _check as require  # the scenario's own refusal: key, allowed values, value

__all__ = ["require", "split_arm"]


def split_arm(policy, overrides, scenario: str, seed: int):
    """The scenario config of an arm and ``policy`` with the arm's own parameters set.

    ``policy`` is a :class:`~policies.base.Policy` instance holding the defaults; overrides
    named ``<policy.name>.<param>=<value>`` set its parameters (values read as YAML), the
    rest go to the scenario together with ``seed``.
    """
    from twin.config import load_scenario

    prefix = policy.name + "."
    own = {}
    for item in overrides:
        key, sep, value = str(item).partition("=")
        if not key.startswith(prefix):
            continue
        if not sep:
            raise ConfigError(f"{key}: an override needs a value (key=value)")
        param = key[len(prefix):]
        if param not in policy.get_params():
            raise ConfigError(f"unknown key {key!r}; allowed keys: "
                              + ", ".join(prefix + p for p in policy.get_params()))
        own[param] = yaml.safe_load(value)
    rest = [o for o in overrides if not str(o).startswith(prefix)]
    cfg = load_scenario(scenario, [*rest, f"seed={seed}", "progress=false"])
    return cfg, policy.set_params(**own).check()

