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


# ---------------------------------------------------------------- plotly.js: inline, cdn, shared
def test_a_cdn_report_links_plotly_and_is_small(busy, tmp_path):
    inline = write_report(busy, tmp_path / "inline.html")
    cdn = write_report(busy, tmp_path / "cdn.html", plotly="cdn")
    parser = TagBalance()
    parser.feed(cdn.read_text(encoding="utf-8"))
    assert len(parser.sources) == 1 and parser.sources[0].startswith("https://cdn.plot.ly/plotly-")
    assert cdn.stat().st_size < inline.stat().st_size / 20
    assert cdn.read_text(encoding="utf-8").count("Plotly.newPlot") == len(FIGURES)


def test_a_shared_plotly_is_written_once_beside_the_run_folders(busy, tmp_path):
    pages = [write_report(busy, tmp_path / run / "report.html", plotly="shared") for run in ("run-a", "run-b")]
    shared = list(tmp_path.glob("plotly-*.min.js"))
    assert len(shared) == 1 and shared[0].stat().st_size > 1_000_000
    for page in pages:
        parser = TagBalance()
        parser.feed(page.read_text(encoding="utf-8"))
        assert parser.sources == [f"../{shared[0].name}"]
        assert page.stat().st_size < 200_000
    with pytest.raises(ValueError, match="plotly"):
        write_report(busy, tmp_path / "x.html", plotly="embedded")


# ---------------------------------------------------------------- readable figures
def test_the_map_axes_hug_the_buildings():
    from twin.report import _map_figure

    x = [100.0, 160.0, 220.0, 100.0, 160.0]
    y = [0.0, 0.0, 0.0, 60.0, 60.0]
    fig = _map_figure({"x": x, "y": y, "tickets": [1, 2, 3, 4, 5], "alerts": [0] * 5, "households": [10] * 5})
    (x0, x1), (y0, y1) = fig.layout.xaxis.range, fig.layout.yaxis.range
    assert x0 < 100 and x1 > 220 and y0 < 0 and y1 > 60  # every building inside
    assert 100 - x0 <= 60 and x1 - 220 <= 60 and 0 - y0 <= 60 and y1 - 60 <= 60  # at most a grid step beyond
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.constrain == "domain"


def test_the_ticket_colours_span_the_quietest_to_the_busiest_building():
    from twin.report import _map_figure

    base = {"x": [0.0, 60.0, 120.0], "y": [0.0, 0.0, 0.0], "alerts": [0, 0, 0], "households": [50, 50, 50]}
    marker = _map_figure({**base, "tickets": [70, 74, 81]}).data[0].marker
    assert (marker.cmin, marker.cmax) == (70, 81)
    marker = _map_figure({**base, "tickets": [0, 0, 0]}).data[0].marker
    assert marker.cmin < marker.cmax  # a flat map still has a scale


def test_repair_tickets_are_smoothed_and_the_backlog_has_its_own_panel(busy):
    from twin.report import _kpi_figure

    fig = _kpi_figure({"": busy.kpis})
    titles = [a.text for a in fig.layout.annotations]
    assert "Repair tickets (7-day mean)" in titles and "Repair backlog" in titles
    opened = next(t for t in fig.data if t.name == "opened")
    daily = busy.kpis["tickets_opened"].to_numpy(dtype=float)
    naive = [daily[max(0, i - 6): i + 1].mean() for i in range(len(daily))]
    assert np.allclose(opened.y, naive)
    assert daily.std() > np.std(opened.y)  # smoother than the daily counts
    backlog = next(t for t in fig.data if t.name == "backlog")
    assert backlog.xaxis != opened.xaxis
    assert np.array_equal(backlog.y, busy.kpis["backlog"].to_numpy(dtype=float))


# ---------------------------------------------------------------- comparison and sweep pages
def test_a_comparison_page_shows_differences_with_intervals(busy, quiet, tmp_path):
    rows = {"participation_rate": {"baseline": 0.15, "policy": 0.42, "diff": 0.27, "low": 0.2, "high": 0.34, "n": 5},
            "repair_wait_minutes_mean": {"baseline": 100.0, "policy": 90.0, "diff": -10.0, "low": -15.0, "high": -5.0,
                                         "n": 5},
            "turnout_mean": {"baseline": math.nan, "policy": math.nan, "diff": math.nan, "low": math.nan,
                             "high": math.nan, "n": 0}}
    text = assert_valid_page(compare_report({"baseline": busy, "policy": quiet}, tmp_path / "c.html", differences=rows))
    assert "<td class='value'>15.0</td><td class='value'>42.0</td><td class='value'>+27.0</td>" in text
    assert "<td class='ci'>[+20.0, +34.0]</td>" in text and "<td class='ci'>[-15.0, -5.0]</td>" in text
    assert text.count("Plotly.newPlot") == 2  # differences, daily KPIs
    assert '"Participation rate"' in text and '"Turnout mean"' not in text  # no interval to draw for turnout


def test_a_sweep_page_draws_headline_kpis_against_the_swept_values(tmp_path):
    from twin.report import sweep_report

    table = pd.DataFrame({"policies.dispatch": ["fifo", "fifo", "skill", "skill"], "seed": ["1", "2", "1", "2"],
                          "participation_rate": [0.2, 0.3, 0.25, 0.35], "satisfaction_index": [78.0, 79.0, 80, 81],
                          "tickets_opened": [10, 12, 11, 13]})
    text = assert_valid_page(sweep_report(table, ["policies.dispatch", "seed"], tmp_path / "sweep.html"))
    assert 'id="sweep"' in text and text.count("Plotly.newPlot") == 1
    assert "<td>skill</td><td>2</td><td class='value'>35.0</td>" in text  # shares as %, like the summary
    assert "Participation rate (%)" in text and "Tickets opened</th>" in text
