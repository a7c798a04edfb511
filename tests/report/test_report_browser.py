"""End to end: the three reports open in headless Chromium with no console errors and no
failed requests, every image loads, and the expected diagnoses are on the page. Full-page
screenshots (desktop and phone width) go to out/test-artifacts/report/."""

import pytest

from .conftest import ARTIFACTS

EXPECTED = {
    "bn": ["batch dependence through BatchNorm2d"],
    "none": ["mean shift", "variance growing with depth", "exploding gradients",
             "The fix, before and after"],
    "converted": ["No problems found at initialization."],
}
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}


def _open(browser, path, viewport, screenshot):
    """Load the page; return what the browser saw."""
    page = browser.new_page(viewport=viewport)
    seen = {"errors": [], "failed": [], "requests": []}
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("requestfailed", lambda r: seen["failed"].append(r.url))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.goto(path.resolve().as_uri(), wait_until="load")
    seen["images"] = page.evaluate(
        "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
    seen["text"] = page.inner_text("body")
    seen["overflow"] = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPECTED))
def test_report_page_in_chromium(name, reports, browser):
    result = reports[name]
    html = result.path.read_text()
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    for viewport, shot in ((DESKTOP, f"{name}.png"), (PHONE, f"{name}-phone.png")):
        seen = _open(browser, result.path, viewport, ARTIFACTS / shot)
        assert seen["errors"] == [] and seen["failed"] == []
        assert all(u.startswith(("file:", "data:")) for u in seen["requests"]), seen["requests"]
        assert len(seen["images"]) == len(result.images) >= 3
        assert all(done and width > 0 and alt for done, width, alt in seen["images"])
        for phrase in EXPECTED[name]:
            assert phrase in seen["text"]
        assert seen["overflow"] <= 0  # readable at this width: the page never scrolls sideways
        assert (ARTIFACTS / shot).stat().st_size > 0
