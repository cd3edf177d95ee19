"""The reviewer report in a real browser (headless Chromium): every image decodes, nothing is
fetched from outside the file, and the console stays free of errors.

A report is built from small frames with real figures; the checked-in pipeline's own
``results/report/index.html`` of the end-to-end run is checked too. Images are checked in a copy of the
page with a small script added (the report itself forbids scripts in its Content-Security-Policy)
that writes ``naturalWidth`` of each image into the DOM, read back with ``--dump-dom``. The
console is read from Chromium's log on the unmodified page.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from analysis import figures
from analysis.report.inputs import figure_entries
from analysis.report.render import render_report, write_report
from analysis.study import load_study

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                        else None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: the browser "
                                "check of the report needs /usr/bin/chromium")

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images).map(
    (img) => ({complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}));
  document.body.setAttribute("data-image-probe", JSON.stringify(images));
});
</script>"""


def run_chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=10000", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=180)


def console_errors(log: str) -> list[str]:
    """Console messages that mean trouble: errors, uncaught exceptions, blocked requests."""
    markers = ("ERROR:CONSOLE", "Uncaught", "Content Security Policy", "Refused to",
               "Failed to load")
    return [line for line in log.splitlines()
            if "CONSOLE" in line and any(marker in line for marker in markers)]


def probe_images(page: Path, tmp_path: Path) -> list[dict]:
    html = page.read_text(encoding="utf-8")
    # the probe script needs the policy to allow inline scripts; images stay limited to data:
    html = html.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
    html = html.replace("</body>", PROBE + "\n</body>")
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(html, encoding="utf-8")
    result = run_chromium(probe_page, tmp_path / "profile-probe", "--dump-dom")
    match = re.search(r'data-image-probe="([^"]*)"', result.stdout)
    assert match, f"the probe did not run:\n{result.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"'))


@pytest.fixture(scope="module")
def small_report(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    """A report from small frames with two real figures; returns its path and image widths."""
    from test_report import PROVENANCE, make_tables

    folder = tmp_path_factory.mktemp("browser")
    study = load_study(ROOT / "config" / "config.yaml")
    registry = study.registry
    tables = make_tables()
    pngs = []
    for name, fig in (
        ("alliance_distribution", figures.alliance_distribution_figure(
            tables.scores, registry["wai_sr"], min_cell=2)),
        ("forest_alliance", figures.forest_alliance_figure(
            tables.models, {"phq9": registry["phq9"], "gad7": registry["gad7"]},
            registry["wai_sr"])),
    ):
        figures.save_figure(fig, folder / f"{name}.svg", folder / f"{name}.png")
        pngs.append(folder / f"{name}.png")
    entries = figure_entries(pngs, ROOT / "workflow" / "report")
    page = folder / "index.html"
    write_report(render_report(tables, study.report, entries, PROVENANCE), page)
    widths = {name: int.from_bytes(path.read_bytes()[16:20], "big")
              for name, path in zip(("alliance_distribution", "forest_alliance"), pngs)}
    return page, widths


def test_small_report_images_decode(small_report, tmp_path):
    page, widths = small_report
    images = probe_images(page, tmp_path)
    assert len(images) == 2
    assert all(image["complete"] and image["width"] > 0 and image["height"] > 0
               for image in images)
    # the figures are the 300-dpi PNGs, decoded at full size
    assert sorted(image["width"] for image in images) == sorted(widths.values())


def test_small_report_console_clean(small_report, tmp_path):
    page, _ = small_report
    result = run_chromium(page, tmp_path / "profile", "--dump-dom")
    assert "Does a stronger working alliance" in result.stdout
    assert console_errors(result.stderr) == []


def test_small_report_blocks_external_requests(small_report, tmp_path):
    # the policy is live: an external image in a copy of the page is refused and logged
    page, _ = small_report
    html = page.read_text(encoding="utf-8").replace(
        "</main>", '<img src="http://127.0.0.1:9/x.png" alt="external"></main>')
    hostile = tmp_path / "hostile.html"
    hostile.write_text(html, encoding="utf-8")
    result = run_chromium(hostile, tmp_path / "profile-hostile", "--dump-dom")
    blocked = console_errors(result.stderr)
    assert blocked and "127.0.0.1:9/x.png" in blocked[0]


@pytest.mark.slow
def test_pipeline_report_in_browser(pipeline_run, tmp_path):
    page = pipeline_run.root / "results" / "report" / "index.html"
    images = probe_images(page, tmp_path)
    assert images and all(image["complete"] and image["width"] > 0 for image in images)
    result = run_chromium(page, tmp_path / "profile", "--dump-dom")
    assert console_errors(result.stderr) == []
