"""tests: the plotly dashboards — one self-contained HTML file per report, its
figures and summary values, runs with nothing to draw, the comparison report,
the derived distributions against naive twins, and (where Debian chromium is
installed) that a headless browser really draws every figure."""
import math
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import twin
from twin.report import compare_report, repair_wait_minutes, technician_work_hours, write_report
from twin.results import Result
from twin.services.events import EventKind, empty

SMALL = ["community.households=200", "community.buildings=5", "sim.days=20", "progress=false"]
NO_FAULTS = ["facilities.household_faults_per_year=0", "facilities.public_faults_per_building_year=0",
             "facilities.elevator_faults_per_building_year=0", "sensors.pipe_burst_per_building_year=0"]
FIGURES = ("kpis", "distributions", "staff", "map")
CHROMIUM = "/usr/bin/chromium"


def run(overrides):
    return twin.Twin(twin.load_scenario("default", overrides)).run()


@pytest.fixture(scope="module")
def busy():
    return run(SMALL)


@pytest.fixture(scope="module")
def quiet():
    """A tiny run without faults: no tickets, so no waits, ratings or repair work."""
    result = run(NO_FAULTS + ["community.households=30", "community.buildings=2", "sim.days=3", "progress=false"])
    assert result.summary["tickets_opened"] == 0
    return result


class TagBalance(HTMLParser):
    """Collects tags closed without being open, tags left open (void elements aside) and fetched sources."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.open, self.stray, self.sources = [], [], []

    def handle_starttag(self, tag, attrs):
        self.sources += [value for name, value in attrs if name in ("src", "href")]
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if self.open and self.open[-1] == tag:
            self.open.pop()
        else:
            self.stray.append(tag)


def assert_valid_page(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    parser = TagBalance()
    parser.feed(text)
    parser.close()
    assert parser.open == [] and parser.stray == [], (parser.open, parser.stray)
    # plotly.js embedded once, nothing fetched from elsewhere
    assert text.count("<script type='text/javascript'>") == 1
    assert parser.sources == []
    return text


def summary_texts(summary: dict):
    """The summary values as the table shows them: counts with separators, NaN as n/a."""
    for value in summary.values():
        if isinstance(value, float) and math.isnan(value):
            yield "n/a"
        elif isinstance(value, int):
            yield f"{value:,}"


def test_report_is_one_page_with_every_figure_and_the_summary(busy, tmp_path):
    path = write_report(busy, tmp_path / "sub" / "report.html")
    assert path == tmp_path / "sub" / "report.html"
    text = assert_valid_page(path)
    assert text.count("Plotly.newPlot") == len(FIGURES)
    for div in FIGURES:
        assert f'id="{div}"' in text
    for value in summary_texts(busy.summary):
        assert f"<td class='value'>{value}</td>" in text
    assert f"{100 * busy.summary['participation_rate']:.1f}" in text
    header = text[text.index("<h1>"):text.index("<section>")]
    for fact in ("default", f"seed <b>{busy.provenance['seed']}</b>", "days <b>20</b>",
                 f"households <b>{busy.provenance['households']}</b>", f"version <b>{twin.__version__}</b>"):
        assert fact in header
    assert "Repair wait mean</td>" in text and "<td class='unit'>min</td>" in text


def test_report_of_a_run_without_tickets_says_so(quiet, tmp_path):
    text = assert_valid_page(write_report(quiet, tmp_path / "report.html"))
    assert text.count("Plotly.newPlot") == len(FIGURES)
    for note in ("no ticket was started", "no alert was attended", "no ticket was rated", "no repair work was done"):
        assert note in text
    assert "<td class='value'>n/a</td>" in text


def test_report_of_a_result_with_nothing_in_it(tmp_path):
    bare = Result(summary={"tickets_opened": 0, "repair_wait_minutes_mean": math.nan}, kpis=pd.DataFrame(),
                  event_log=empty(0), config={})
    text = assert_valid_page(write_report(bare, tmp_path / "report.html"))
    assert text.count("Plotly.newPlot") == 1  # the distributions, each with its note
    assert text.count("Nothing to draw for this run.") == 3


def test_compare_report_sets_runs_side_by_side(busy, quiet, tmp_path):
    text = assert_valid_page(compare_report({"baseline": busy, "no faults": quiet}, tmp_path / "compare.html"))
    assert "<th>baseline</th><th>no faults</th>" in text
    assert text.count("Plotly.newPlot") == 1
    assert '"baseline: participants"' in text and '"no faults: participants"' in text
    assert f"<td class='value'>{busy.summary['tickets_opened']:,}</td><td class='value'>0</td>" in text
    with pytest.raises(ValueError):
        compare_report({}, tmp_path / "none.html")


def test_repair_waits_equal_a_naive_pairing(busy):
    events = busy.event_log
    submitted, started = {}, {}
    for e in events:
        if e["kind"] == EventKind.TicketSubmitted:
            submitted.setdefault(int(e["subject"]), float(e["t"]))
        elif e["kind"] == EventKind.TicketStarted:
            started.setdefault(int(e["subject"]), float(e["t"]))
    naive = sorted(started[k] - submitted[k] for k in started)
    assert len(naive) > 0
    assert np.allclose(np.sort(repair_wait_minutes(events)), naive)


def test_technician_hours_equal_a_naive_replay(busy):
    events = busy.event_log
    hours = technician_work_hours(events, n_days=20, n_technicians=6)
    naive = np.zeros((6, 20))
    worker, start = {}, {}
    for e in np.sort(events, order="t", kind="stable"):
        ticket = int(e["subject"])
        if e["kind"] == EventKind.TicketDispatched:
            worker[ticket] = int(e["target"])
        elif e["kind"] == EventKind.TicketStarted:
            start[ticket] = (worker[ticket], float(e["t"]))
        elif e["kind"] == EventKind.TicketCompleted:
            who, t0 = start[ticket]
            naive[who, int(t0 // 1440)] += (float(e["t"]) - t0) / 60
    assert naive.sum() > 0
    assert np.allclose(hours, naive)


def render(path: Path, tmp_path: Path) -> tuple[str, str]:
    """The DOM after a headless chromium loaded ``path``, and its log (console errors included)."""
    profile = tmp_path / f"chromium-{path.stem}"
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


@pytest.mark.tool("chromium", None if shutil.which(CHROMIUM) else f"not at {CHROMIUM} (apt-get install chromium)")
def test_a_browser_draws_every_figure(busy, quiet, tmp_path):
    pages = {write_report(busy, tmp_path / "busy.html"): FIGURES,
             write_report(quiet, tmp_path / "quiet.html"): FIGURES,
             compare_report({"baseline": busy, "no faults": quiet}, tmp_path / "compare.html"): ("kpis",)}
    for path, figures in pages.items():
        dom, log = render(path, tmp_path)
        assert "Uncaught" not in log, log[-2000:]
        for div in figures:
            assert f'<div id="{div}" class="plotly-graph-div js-plotly-plot"' in dom, (path.name, div)
        assert dom.count('class="main-svg"') >= 2 * len(figures)
