"""Report formats, each checked by a real consumer: an XSD validator, the Prometheus parser,
headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import xmlschema
from conftest import gpu_fleet, set_value
from prometheus_client.parser import text_string_to_metric_families

from provision.analyze import Analysis, analyze
from provision.report.html import html_report
from provision.report.junit import junit_xml
from provision.report.prom import prom_text

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def result() -> Analysis:
    recs = gpu_fleet(nodes=16)
    set_value(recs, "gpu005", 3, 0.8)                      # fails
    recs += gpu_fleet("gemm_tflops", nodes=16, mean=690.0, unit="TFLOP/s", check="burn-in")
    set_value(recs, "gpu009", 1, 0.96, "gemm_tflops")      # warns
    recs += [{"node": f"gpu{i:03d}", "gpu": None, "metric": "ib_write_bw", "unit": "Gb/s",
              "peer": f"gpu{(i % 16) + 1:03d}", "value": 196.0 * (0.8 if i == 11 else 1.0)}
             for i in range(1, 17)]
    recs += [{"node": "gpu002", "gpu": 0, "metric": "nvlink_p2p_bandwidth", "value": 265.0,
              "peer": "gpu002:1"}, {"node": "gpu002", "gpu": 1, "metric": "nvlink_p2p_bandwidth",
                                    "value": 265.0, "peer": "gpu002:0"}]
    return analyze(recs)


def test_junit_validates_against_the_common_schema(result: Analysis) -> None:
    xml = junit_xml(result)
    xmlschema.XMLSchema(HERE / "JUnit.xsd").validate(xml)
    doc = xmlschema.XMLSchema(HERE / "JUnit.xsd").to_dict(xml)
    suites = {s["@name"]: s for s in doc["testsuite"]}
    hbm = suites["hbm_bandwidth"]
    assert (hbm["@tests"], hbm["@failures"]) == (16, 1)
    failed = [c for c in hbm["testcase"] if "failure" in c]
    assert [c["@name"] for c in failed] == ["gpu005"]
    assert "gpu005 GPU 3" in failed[0]["failure"]["@message"]
    burn = suites["burn-in"]
    assert burn["@failures"] == 0 and "gpu009: WARN" in burn["system-out"]


def test_prometheus_text_parses(result: Analysis) -> None:
    text = prom_text(result, timestamp=1_700_000_000.0)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    passed = {s.labels["node"]: s.value for s in fams["forge_acceptance_passed"].samples}
    assert passed["gpu005"] == 0 and passed["gpu001"] == 1 and len(passed) == 16
    values = [s for s in fams["forge_acceptance_finding_value"].samples
              if s.labels["node"] == "gpu005"]
    assert values and values[0].labels["metric"] == "hbm_bandwidth"
    assert fams["forge_acceptance_last_run_timestamp_seconds"].samples[0].value == 1.7e9


def test_html_is_self_contained(result: Analysis) -> None:
    html = html_report(result)
    assert "<script" not in html and "<link" not in html and "url(" not in html
    assert "src=" not in html
    # the only URLs are SVG namespace declarations
    rest = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in rest and "https://" not in rest
    assert html.count("<svg") >= 5 and "gpu005" in html


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")
def test_html_renders_in_headless_chromium(result: Analysis, tmp_path: Path) -> None:
    from PIL import Image

    page = tmp_path / "report.html"
    page.write_text(html_report(result))
    shot = tmp_path / "shot.png"
    chromium = _chromium()
    assert chromium is not None
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,1600",
         f"--screenshot={shot}", page.as_uri()],
        check=True, capture_output=True, timeout=120)
    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 1600)
    colours = img.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50                               # text, plots, badges: not blank
    # the FAIL badge and failing GPUs are drawn in the fail red (#d62728)
    red = sum(n for n, (r, g, b) in colours if r > 190 and g < 70 and b < 70)
    assert red > 500
