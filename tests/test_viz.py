"""``twin viz``: the SolaraViz page started for real and looked at in headless Chromium.

The server is ``twin viz`` as a process on a free loopback port; Playwright drives Debian's
Chromium (it cannot download its own), steps the model and takes screenshots: the map must
show every building as a marker and a chart must show a line (each check fails on the other image).
"""
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from twin.cli import main

CHROMIUM = "/usr/bin/chromium"
BUILDINGS = 9  # community.buildings of the page under test
# the page and the browser are waited for without deadlines; this only turns a hang into a failure
pytestmark = pytest.mark.timeout(900)
ROOT = Path(__file__).parent.parent


def _missing() -> str | None:
    if importlib.util.find_spec("solara") is None:
        return "mesa[rec] (solara) is not installed: pip install -e '.[dev]'"
    if not Path(CHROMIUM).exists():
        return f"no browser at {CHROMIUM} (apt-get install chromium)"
    from twin.viz import missing_frontend

    if missing_frontend():
        return "the page's front-end is not in Solara's cache: run `twin viz --setup` (needs npm)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("viz") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "viz", "--port", str(port),
                                 "community.households=200", f"community.buildings={BUILDINGS}"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ})
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:  # no deadline: a slow machine only makes this wait longer (pytest-timeout stops a hang)
            if proc.poll() is not None:
                pytest.fail(f"twin viz exited with {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # stopping `twin viz` stops the page's server: nothing is left serving the port
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "the page's server outlived twin viz"


CHART_LINE = (0x1F, 0x77, 0xB4)  # matplotlib's first line colour: the first KPI of each chart


def _spread(png: Path) -> int:
    """How far apart the darkest and lightest pixels are (0: a blank image)."""
    from PIL import Image

    low, high = Image.open(png).convert("L").getextrema()
    return high - low


def _pixels(png: Path):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def _building_markers(png: Path) -> int:
    """How many building markers the image holds: round blobs (a marker's ring and fill) of a marker's size.

    Tick labels and the colour bar are blobs too, but not round ones of 13-30 pixels across.
    """
    from scipy import ndimage

    drawn = (255 - _pixels(png)).max(axis=2) > 60  # anything clearly darker than the white background
    labels, _ = ndimage.label(drawn)
    boxes = [(s[0].stop - s[0].start, s[1].stop - s[1].start) for s in ndimage.find_objects(labels)]
    return sum(1 for h, w in boxes if 13 <= h <= 30 and abs(h - w) <= 2)


def _line_pixels(png: Path, colour=CHART_LINE) -> int:
    """Pixels of a chart line's colour."""
    import numpy as np

    return int((np.abs(_pixels(png) - np.array(colour)).max(axis=2) < 40).sum())


@pytest.mark.tool("chromium and the Solara front-end", _missing())
def test_the_page_shows_the_map_charts_and_controls_and_steps(server, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server)
        page.get_by_text("Model Parameters").wait_for(timeout=0)  # real waits, no deadline
        page.locator("img").nth(3).wait_for(timeout=0)            # the map and three charts
        for label in ("staff.technicians", "residents.reward_effect", "policies.dispatch"):
            assert page.get_by_text(label, exact=False).count() >= 1, label
        for _ in range(3):
            page.get_by_role("button", name="Step").click()
        page.get_by_text("Step: 3").wait_for(timeout=0)
        time.sleep(1.0)  # let the last redraw reach the images
        images = page.locator("img")
        assert images.count() >= 4
        map_png, chart_png = tmp_path / "map.png", tmp_path / "chart.png"
        images.nth(0).screenshot(path=map_png)
        images.nth(1).screenshot(path=chart_png)
        page.screenshot(path=tmp_path / "page.png", full_page=True)
        browser.close()
    assert _spread(tmp_path / "page.png") > 100, "the page is blank"
    # the map: every building drawn as a marker, and no chart line; the chart: a line drawn, and no buildings.
    # Each check is also run on the other image, where it must fail, so neither passes on any picture.
    assert _building_markers(map_png) == BUILDINGS, "the map does not show the buildings"
    assert _line_pixels(chart_png) > 100, "the chart shows no line"
    assert _building_markers(chart_png) == 0 and _line_pixels(map_png) == 0, "the map and the chart look alike"


def test_a_bad_override_is_one_line_and_a_usage_error(capsys):
    assert main(["viz", "community.housholds=3"]) == 2
    err = capsys.readouterr().err
    assert "community.housholds" in err and "did you mean 'households'" in err and "Traceback" not in err


def test_sliders_start_at_the_scenario_and_offer_the_declared_choices():
    pytest.importorskip("mesa.visualization")
    from twin.viz import model_params

    params = model_params("default", ["staff.technicians=3"])
    assert params["staff__technicians"].value == 3
    assert params["staff__shift_end_hour"].is_float_slider
    assert params["policies__dispatch"]["values"] == ["fifo", "nearest", "skill"]
    assert params["scenario"] == "default" and params["overrides"] == ["staff.technicians=3"]
