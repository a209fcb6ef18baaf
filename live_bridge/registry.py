"""Which device is which: wire names mapped to a household or building, a kind and a unit.

The detectors read arrays indexed by household and building; devices on the
wire have names.  A :class:`Registry` is the one place that joins them:

- **Sparkplug B** devices follow the community's naming (see
  ``live_bridge/__init__.py``): edge node ``bldg-{b:03d}``, devices
  ``hh-{h:05d}-water|power|smoke``, ``main`` and ``bin``.
  :meth:`Registry.for_community` lists every one the community should have.
- **Plain JSON** devices (the zigbee2mqtt convention: one topic per device, a
  JSON object of readings) are listed in a registry file, one entry per
  reading they carry: topic, field, kind, household or building, unit.

Readings are converted to the detectors' units here (litres, kWh, litres per
hour, fill 0-1, alarm as 0/1), so nothing downstream knows about units.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# what a device measures, and whether it belongs to a household or a building
HOUSEHOLD_KINDS = ("water", "power", "smoke")
BUILDING_KINDS = ("main", "bin")
KINDS = HOUSEHOLD_KINDS + BUILDING_KINDS
# the Sparkplug metric each kind publishes, in the detectors' unit
METRIC_OF = {"water": "litres", "power": "kWh", "smoke": "alarm", "main": "flow_lph", "bin": "fill"}
# where each kind's readings go in agents.sensors.DayReadings (smoke is an alarm time, smoke_t)
ARRAY_OF = {"water": "water", "power": "power", "main": "main_lph", "bin": "bin_fill"}
UNIT_OF = {"water": "L", "power": "kWh", "smoke": "alarm", "main": "L/h", "bin": "share"}
# units a registry entry may give, and the factor to the kind's unit
UNITS = {
    "water": {"L": 1.0, "l": 1.0, "m3": 1000.0, "m³": 1000.0},
    "power": {"kWh": 1.0, "Wh": 0.001},
    "smoke": {"alarm": 1.0, "bool": 1.0},
    "main": {"L/h": 1.0, "l/h": 1.0, "m3/h": 1000.0, "L/min": 60.0},
    "bin": {"share": 1.0, "%": 0.01},
}


class RegistryError(ValueError):
    """A registry file that cannot be used; the message names the entry and the key."""


@dataclass(frozen=True)
class Device:
    """One reading stream: a kind, the household or building it belongs to, a unit factor."""
    name: str
    kind: str
    index: int
    scale: float = 1.0

    @property
    def household(self) -> bool:
        return self.kind in HOUSEHOLD_KINDS


def gateway_name(building: int) -> str:
    """The Sparkplug edge node (building gateway) of a building."""
    return f"bldg-{building:03d}"


def device_name(kind: str, index: int) -> str:
    """The Sparkplug device name of a household's meter, or a building's main or bin."""
    return f"hh-{index:05d}-{kind}" if kind in HOUSEHOLD_KINDS else kind


def gateway_metric_name(device: str, metric: str) -> str:
    """A gateway's own metric that carries one of its devices' readings: ``{device}/{metric}``.

    Sparkplug B names metrics with ``/`` as a folder separator; a gateway that reports all its
    devices in one NDATA names each reading by the device it came from (see ``twin devices
    --layout gateway``).
    """
    return f"{device}/{metric}"


def split_gateway_metric(name: str) -> tuple[str, str] | None:
    """``(device, metric)`` of a gateway metric named by :func:`gateway_metric_name`; None for others."""
    device, slash, metric = name.rpartition("/")
    return (device, metric) if slash and device and metric else None


class Registry:
    """Wire names to :class:`Device` for one community of ``households`` and ``buildings``."""

    def __init__(self, households: int, buildings: int):
        self.households, self.buildings = int(households), int(buildings)
        self.sparkplug: dict[tuple[str, str], Device] = {}  # (edge node, device) -> device
        self.json: dict[str, list[tuple[str, Device]]] = {}  # topic -> [(field, device)]
        self.time_field: dict[str, str] = {}  # topic -> the payload's timestamp field
        self.names: list[str] = []  # every device, in registration order (the staleness report's rows)

    # ------------------------------------------------------------- building
    @classmethod
    def for_community(cls, hh_building, n_buildings: int) -> Registry:
        """Every Sparkplug device a community of these households (``hh_building[h]``) has."""
        hh_building = np.asarray(hh_building)
        reg = cls(len(hh_building), n_buildings)
        for h, b in enumerate(hh_building.tolist()):
            for kind in HOUSEHOLD_KINDS:
                reg.add_sparkplug(gateway_name(b), device_name(kind, h), kind, h)
        for b in range(n_buildings):
            for kind in BUILDING_KINDS:
                reg.add_sparkplug(gateway_name(b), device_name(kind, b), kind, b)
        return reg

    def add_sparkplug(self, edge: str, device: str, kind: str, index: int, unit: str | None = None) -> Device:
        dev = self._device(f"{edge}/{device}", kind, index, unit)
        self.sparkplug[(edge, device)] = dev
        self.names.append(dev.name)
        return dev

    def add_json(self, topic: str, field: str, kind: str, index: int, unit: str | None = None,
                 time_field: str = "last_seen") -> Device:
        dev = self._device(f"{topic}#{field}", kind, index, unit)
        self.json.setdefault(topic, []).append((field, dev))
        self.time_field[topic] = time_field
        self.names.append(dev.name)
        return dev

    def _device(self, name, kind, index, unit) -> Device:
        if kind not in KINDS:
            raise RegistryError(f"{name}: kind {kind!r} is not one of {', '.join(KINDS)}")
        limit = self.households if kind in HOUSEHOLD_KINDS else self.buildings
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < limit:
            what = "household" if kind in HOUSEHOLD_KINDS else "building"
            raise RegistryError(f"{name}: {what} {index!r} is not in 0..{limit - 1}")
        unit = UNIT_OF[kind] if unit is None else unit
        if unit not in UNITS[kind]:
            raise RegistryError(f"{name}: unit {unit!r} of a {kind} reading is not one of {', '.join(UNITS[kind])}")
        return Device(name, kind, index, UNITS[kind][unit])

    def load_json_devices(self, path: str | Path) -> Registry:
        """Add the plain JSON devices listed in a registry file (JSON or YAML).

        ``{"devices": [{"topic": "zigbee2mqtt/meter-12", "field": "water", "kind": "water",
        "household": 12, "unit": "m3", "time_field": "last_seen"}, ...]}``
        """
        path = Path(path)
        try:
            text = path.read_text()
            data = json.loads(text) if path.suffix == ".json" else _yaml(text)
        except (OSError, ValueError) as e:
            raise RegistryError(f"{path}: cannot read the device registry: {e}") from None
        entries = data.get("devices") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise RegistryError(f"{path}: a device registry is an object with a list under 'devices'")
        allowed = {"topic", "field", "kind", "household", "building", "unit", "time_field"}
        for i, e in enumerate(entries):
            where = f"{path}: devices[{i}]"
            if not isinstance(e, dict):
                raise RegistryError(f"{where} is not an object")
            unknown = sorted(set(e) - allowed)
            if unknown:
                raise RegistryError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
            for key in ("topic", "field", "kind"):
                if not isinstance(e.get(key), str) or not e[key]:
                    raise RegistryError(f"{where}: {key!r} is required (a string)")
            if e["kind"] not in KINDS:
                raise RegistryError(f"{where}: kind {e['kind']!r} is not one of {', '.join(KINDS)}")
            owner = "household" if e["kind"] in HOUSEHOLD_KINDS else "building"
            if owner not in e:
                raise RegistryError(f"{where}: a {e['kind']} device needs {owner!r}")
            try:
                self.add_json(e["topic"], e["field"], e["kind"], e[owner], e.get("unit"),
                              e.get("time_field", "last_seen"))
            except RegistryError as err:
                raise RegistryError(f"{where}: {err}") from None
        return self


def _yaml(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(str(e)) from None
