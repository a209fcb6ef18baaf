"""The documentation site builds with ``mkdocs build --strict``, offline, and a broken reference fails it.

The site is built for real into a temporary folder.  Copies of it with one thing broken (a
link to a page that does not exist, an API reference to a module that does not exist, a
summary KPI left undefined) must fail the strict build, so the passing build means something.
"""
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from twin import params
from twin.services.events import EventKind
from twin.services.reasons import Reason

ROOT = Path(__file__).parent.parent
MISSING = None if importlib.util.find_spec("mkdocstrings_handlers") else \
    "the dev extras (mkdocs, mkdocstrings[python]) are not installed: pip install -e '.[dev]'"
pytestmark = pytest.mark.tool("mkdocs", MISSING)


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
                          capture_output=True, text=True, timeout=600, cwd=config.parent)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = build(ROOT / "mkdocs.yml", out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _text(page: Path) -> str:
    return re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))


def test_every_page_is_built(site):
    for page in ("index", "concepts", "parameters", "kpis", "events", "data", "validation", "notebooks",
                 "api/twin", "api/services", "api/live_bridge"):
        assert (site / f"{page}.html").is_file(), page


def test_the_event_schema_lists_every_kind_and_reason(site):
    text = _text(site / "events.html")
    for member in (*EventKind, *Reason):
        assert member.name in text, member.name
    assert "actor=reporter, subject=ticket" in text  # a kind's own comment from the source


def test_the_parameter_page_holds_every_parameter(site):
    text = _text(site / "parameters.html")
    for p in params.parameters():
        assert p.key in text, p.key


def test_the_api_reference_renders_the_public_objects(site):
    api = _text(site / "api/twin.html")
    assert "twin.results" in api and "Result" in api and "load_scenario" in api
    assert "Compose" in api  # load_scenario's docstring, not only its name
    assert "twin.services.points" in _text(site / "api/services.html")
    assert "live_bridge.sparkplug" in _text(site / "api/live_bridge.html")


def test_the_site_loads_nothing_from_the_network(site):
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        remote = re.findall(r"<(?:script|link|img)[^>]+(?:src|href)=\"(?:https?:)?//[^\"]+\"", html)
        assert not remote, f"{page.name} loads {remote[0]}"


@pytest.fixture
def copy_of_the_site_sources(tmp_path):
    """The docs and mkdocs.yml in a fresh folder, the packages linked in (the API reference reads them)."""
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    for package in ("twin", "agents", "policies", "live_bridge", "scenarios", "contracts"):
        (tmp_path / package).symlink_to(ROOT / package, target_is_directory=True)
    return tmp_path


BREAKAGES = {
    "a link to a missing page": ("docs/index.md", "[Concepts](concepts.md)", "[Concepts](concept.md)"),
    "an API reference to a missing module": ("docs/api/twin.md", "::: twin.params", "::: twin.paramz"),
    "a summary KPI left undefined": ("docs/kpis.md", "| `turnout_mean` |", "| turnout |"),
    "an unknown generated section": ("docs/events.md", "<!-- generated: channels -->",
                                     "<!-- generated: channel-list -->"),
}


@pytest.mark.parametrize("what", list(BREAKAGES))
def test_a_broken_reference_fails_the_strict_build(what, copy_of_the_site_sources):
    path, old, new = BREAKAGES[what]
    page = copy_of_the_site_sources / path
    text = page.read_text(encoding="utf-8")
    assert old in text
    page.write_text(text.replace(old, new, 1), encoding="utf-8")
    done = build(copy_of_the_site_sources / "mkdocs.yml", copy_of_the_site_sources / "site")
    assert done.returncode != 0, f"the strict build passed with {what}"
    named = {"a link to a missing page": "concept.md", "an API reference to a missing module": "twin.paramz",
             "a summary KPI left undefined": "turnout_mean", "an unknown generated section": "channel-list"}[what]
    assert named in done.stderr, done.stderr[-2000:]  # it failed for this breakage, and says so
