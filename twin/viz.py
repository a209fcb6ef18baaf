"""``twin viz``: an interactive page on the twin's Mesa model (Mesa's SolaraViz).

The page shows a map of the buildings (size: households; colour: repair tickets so far; a red
ring: sensor alerts), charts of the daily KPIs, sliders for a few policy parameters and Mesa's
step / play / reset controls.  The model is :class:`twin.mesa.CommunityModel`: one step is one
simulated day.  A slider takes effect on *Reset*, which builds the model anew with the values
set (Mesa's convention).  Sliders start at the scenario's values and are labelled with each
parameter's meaning from :mod:`twin.config`.

Solara fetches its front-end (JavaScript) from a CDN at request time unless the files are in
its cache (``<environment>/share/solara/cdn``).  ``twin viz --setup`` fills that cache once
from the npm registry (``npm pack``), so the page then works without any network.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

#: The front-end packages the page loads (name@version as Solara asks the CDN for them).
FRONTEND = ("@widgetti/solara-vuetify-app@10.1.1", "@widgetti/solara-vuetify3-app@5.2.0", "requirejs@2.3.6",
            "font-awesome@4.5.0", "@widgetti/vue-grid-layout@2.3.13-alpha.2")
#: Environment variables the Solara process reads the scenario and overrides from.
ENV_SCENARIO, ENV_OVERRIDES = "TWIN_VIZ_SCENARIO", "TWIN_VIZ_OVERRIDES"
#: Daily KPIs charted on the page, by chart.
CHARTS = (("participants", "ballots"), ("tickets_opened", "tickets_completed", "backlog"), ("satisfaction",))
#: Policy sliders: config key → (min, max, step).  Value and label come from the scenario and its field.
SLIDERS = {
    "staff.technicians": (1, 20, 1),
    "staff.shift_end_hour": (12.0, 24.0, 1.0),
    "residents.reward_effect": (0.0, 2.0, 0.1),
    "policies.alert_hours_without_water": (1.0, 12.0, 0.5),
}
#: Choices offered as a drop-down: config key → its allowed names (from the config's declaration).
SELECTS = ("policies.dispatch",)


def frontend_dir() -> Path:
    """Where Solara looks for its front-end files before asking the CDN."""
    return Path(sys.prefix) / "share" / "solara" / "cdn"


def missing_frontend() -> list[str]:
    """The front-end packages not yet in Solara's cache (empty: the page works offline)."""
    return [p for p in FRONTEND if not any((frontend_dir() / p).glob("*"))]


def install_frontend(npm: str = "npm") -> list[str]:
    """Fill Solara's cache with :data:`FRONTEND` from the npm registry; returns the packages installed."""
    if shutil.which(npm) is None:
        raise FileNotFoundError(f"{npm} is needed to fetch the page's front-end (npm pack); install Node.js")
    done = []
    with tempfile.TemporaryDirectory() as tmp:
        for package in missing_frontend():
            out = subprocess.run([npm, "pack", package, "--silent"], cwd=tmp, capture_output=True, text=True,
                                 timeout=300)
            if out.returncode != 0:
                raise RuntimeError(f"npm pack {package} failed: {out.stderr.strip()[-300:]}")
            tarball = Path(tmp) / out.stdout.strip().splitlines()[-1]
            target = frontend_dir() / package
            target.mkdir(parents=True, exist_ok=True)
            with tarfile.open(tarball) as tar:  # npm tarballs hold one folder, package/
                for member in tar.getmembers():
                    if member.isfile() and member.name.startswith("package/"):
                        member.name = member.name[len("package/"):]
                        tar.extract(member, target, filter="data")
            done.append(package)
    return done


# ------------------------------------------------------------------ the page
def model_params(scenario: str, overrides: list[str]) -> dict:
    """SolaraViz's ``model_params``: the scenario fixed, sliders at its values, labelled by meaning."""
    from mesa.visualization import Slider

    from twin.config import OneOf, load_scenario

    cfg = load_scenario(scenario, overrides)

    def value_of(key):
        value = cfg
        for part in key.split("."):
            value = getattr(value, part)
        return value

    params = {"scenario": scenario, "overrides": list(overrides), "seed": cfg.seed}
    for key, (low, high, step) in SLIDERS.items():
        # the key names the parameter exactly (meaning and unit are in docs/parameters.md); a longer
        # label would squeeze the slider's track to nothing
        params[key.replace(".", "__")] = Slider(key, value_of(key), low, high, step, dtype=type(value_of(key)))
    for key in SELECTS:
        allowed = _allowed(key)
        assert isinstance(allowed, OneOf)
        params[key.replace(".", "__")] = {"type": "Select", "value": value_of(key), "values": list(allowed.names()),
                                          "label": key}
    return params


def _allowed(key: str):
    from dataclasses import fields

    from twin.config import TwinConfig, allowed_of

    node = TwinConfig
    *sections, name = key.split(".")
    for s in sections:
        node = type({f.name: f for f in fields(node)}[s].default_factory())
    return allowed_of(node, name)


def map_figure(model):
    """The buildings on their grid: marker size by households, colour by tickets, a red ring where alerts were."""
    import numpy as np
    from matplotlib.figure import Figure

    from twin.results import building_map

    m = building_map(model.twin)
    x, y = np.asarray(m["x"]), np.asarray(m["y"])
    households, tickets, alerts = (np.asarray(m[k]) for k in ("households", "tickets", "alerts"))
    fig = Figure(figsize=(5, 4.2))
    ax = fig.add_subplot()
    points = ax.scatter(x, y, s=40 + 4 * households, c=tickets, cmap="YlOrBr", edgecolors="#555",
                        vmin=0, vmax=max(1, int(tickets.max())))
    alerted = alerts > 0
    ax.scatter(x[alerted], y[alerted], s=80 + 4 * households[alerted], facecolors="none", edgecolors="red",
               linewidths=2, label="alerts")
    fig.colorbar(points, ax=ax, label="repair tickets so far")
    ax.set_title(f"Buildings, day {model.day}")
    ax.set_xlabel("m")
    ax.set_ylabel("m")
    ax.set_aspect("equal")
    ax.margins(0.15)
    if alerted.any():
        ax.legend(loc="upper right")
    return fig


def building_map_component(model):
    """The map as a Solara element, redrawn after each step (Mesa's component convention)."""
    import solara
    from mesa.visualization.utils import update_counter

    @solara.component
    def BuildingMap(model):  # noqa: N802  (Solara components are named like classes)
        update_counter.get()
        return solara.FigureMatplotlib(map_figure(model), format="png")

    return BuildingMap(model)


def page_model_class():
    """:class:`~twin.mesa.CommunityModel` as SolaraViz rebuilds it on Reset.

    Mesa checks the model's signature against the page's parameters and accepts extra
    keywords only through a parameter named ``kwargs``; this subclass only renames it.
    """
    from twin.mesa import CommunityModel

    class PageModel(CommunityModel):
        def __init__(self, scenario: str = "default", overrides=(), *, seed=None, **kwargs):
            super().__init__(scenario, overrides, seed=seed, **kwargs)

    return PageModel


def page(scenario: str = "default", overrides: list[str] | tuple = ()):
    """The SolaraViz page for ``scenario`` with ``overrides``."""
    from mesa.visualization import SolaraViz, make_plot_component

    overrides = list(overrides)
    params = model_params(scenario, overrides)
    model = page_model_class()(scenario, overrides, seed=params["seed"])
    components = [(building_map_component, 0)]
    components += [make_plot_component(list(chart)) for chart in CHARTS]
    return SolaraViz(model, components=components, model_params=params, name=f"community-twin: {scenario}",
                     play_interval=300)


def page_from_environment():
    """The page ``twin viz`` asked for (scenario and overrides passed through the environment)."""
    import json

    return page(os.environ.get(ENV_SCENARIO, "default"), json.loads(os.environ.get(ENV_OVERRIDES, "[]")))


def serve(scenario: str, overrides: list[str], host: str = "127.0.0.1", port: int = 8765) -> int:
    """Become the page's Solara server, in the foreground until interrupted (this process is replaced).

    The process execs Solara rather than starting it as a child: stopping ``twin viz`` (Ctrl-C, a
    terminal closed, a service manager's SIGTERM) then stops the server itself, where a child
    would have been left running, orphaned, holding its port.
    """
    import json

    from twin.config import load_scenario

    load_scenario(scenario, overrides)  # a bad key fails here, in one line, not in the browser
    env = {**os.environ, ENV_SCENARIO: scenario, ENV_OVERRIDES: json.dumps(list(overrides))}
    command = [sys.executable, "-m", "solara", "run", "twin.viz_app", "--host", host, "--port", str(port),
               "--production", "--no-open", "--log-level", "warning"]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, env)
    return 0  # not reached: execve returns only by raising
