"""The admin's chart page in a real browser: headless Chromium (Debian's package, driven by
Playwright) logs in as the demo analyst on a live demo server, opens a chart, checks that
it drew, switches the bucket, and saves screenshots under var/browser/."""

import json
import os
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from metrics.demo import DEMO_CORRECTION_DAYS_AGO, DEMO_CORRECTION_REASON
from metrics.periods import bucket_count

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "browser"
# No sandbox (CI runs as root in a container), no GPU, and nothing fetched in the background.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)),
        reason=f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def analyst_page(browser, demo_server):
    """A page logged in as the demo analyst, recording console errors and page errors."""
    context = browser.new_context(base_url=demo_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("console", lambda message: record_console_error(page, message))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on(
        "response",
        lambda r: r.status >= 400 and page.errors.append(f"{r.status} {r.url}"),
    )
    page.goto("/admin/login/?next=/admin/")
    page.fill("input[name=username]", "analyst@demo.exante.test")
    page.fill("input[name=password]", "demo-analyst-pass")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    yield page
    context.close()


def record_console_error(page, message) -> None:
    # The browser asks for /favicon.ico on its own; no page of the admin loads it.
    if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
        page.errors.append(f"{message.text} ({message.location['url']})")


def shoot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def drawn_pixels(page) -> int:
    """Non-transparent pixels on the chart's canvas."""
    return page.evaluate(
        """() => {
            const canvas = document.querySelector('#chart canvas');
            const pixels = canvas.getContext('2d')
                .getImageData(0, 0, canvas.width, canvas.height).data;
            let drawn = 0;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) drawn++;
            return drawn;
        }"""
    )


def chart_points(page) -> int:
    return len(json.loads(page.text_content("#chart-data"))["x"])


def shown_range(page) -> tuple[date, date]:
    return (
        date.fromisoformat(page.input_value("input[name=start]")),
        date.fromisoformat(page.input_value("input[name=end]")),
    )


def test_chart_page_draws_and_switches_bucket(analyst_page):
    page = analyst_page
    page.click("a[href$='/entities/organization/']")
    page.click("#result_list tbody tr a")  # the first demo organization
    shoot(page, "organization")
    page.click(".field-charts a:text-is('total_ar')")
    page.wait_for_selector("#chart canvas")

    start, end = shown_range(page)
    assert chart_points(page) == bucket_count(start, end, "day")
    assert page.locator("#chart-table tbody tr").count() == bucket_count(start, end, "day")
    assert drawn_pixels(page) > 1000
    shoot(page, "chart-day")

    page.check("input[name=bucket][value=week]")
    page.wait_for_url("**bucket=week**")
    page.wait_for_selector("#chart canvas")
    assert chart_points(page) == bucket_count(start, end, "week")
    assert drawn_pixels(page) > 1000

    page.check("input[name=bucket][value=month]")
    page.wait_for_url("**bucket=month**")
    page.check("input[name=previous_year]")
    page.click("input[value=Show]")
    page.wait_for_url("**previous_year=on**")
    page.wait_for_selector("#chart canvas")
    assert chart_points(page) == bucket_count(start, end, "month")
    print(f"chart screenshot: {shoot(page, 'chart-month')}")
    assert page.errors == [], page.errors


def test_corrected_value_shows_its_history_and_opens_its_chart_at_its_date(analyst_page):
    page = analyst_page
    # The demo loads with the server's date (UTC); the correction is that many days back.
    corrected = datetime.now(UTC).date() - timedelta(days=DEMO_CORRECTION_DAYS_AGO)
    page.goto("/admin/entities/organization/")
    page.click("#result_list tbody tr .field-values_link a")
    page.goto(
        f"{page.url}&q=total_ar&time_unit__exact=day"
        f"&metric_date__range__gte={corrected}&metric_date__range__lte={corrected}"
    )
    page.click("#result_list tbody tr th a")
    assert page.text_content(".field-history table").count(DEMO_CORRECTION_REASON) == 1
    page.locator(".field-history").scroll_into_view_if_needed()
    shoot(page, "value")

    page.click(".field-chart a.chart-link")
    page.wait_for_selector("#chart canvas")
    assert page.locator("#chart-table tr.at td").first.text_content() == corrected.isoformat()
    assert drawn_pixels(page) > 1000
    shoot(page, "chart-at")
    assert page.errors == [], page.errors
