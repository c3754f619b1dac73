"""Every page the service serves works offline: the API docs (Swagger UI, Redoc) and the
admin load their pages, scripts, styles, fonts and images from the service's own host only.

Pages are fetched from a live demo server, then every script and stylesheet they load, then
whatever those stylesheets import; each is checked for a load from another host. Links a
person may click (``<a href>``) are not loads and are not checked."""

import http.cookiejar
import re
import urllib.parse
import urllib.request
from html.parser import HTMLParser

import pytest

# Attributes that make a browser fetch something when the page loads.
LOADING_ATTRIBUTES = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "source": ("src", "srcset"),
    "video": ("src", "poster"),
    "audio": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "form": ("action",),
}
EXTERNAL = r"(?:https?:)?//"
CSS_LOADS = re.compile(
    rf"""url\(\s*["']?({EXTERNAL}[^"')\s]*)|@import\s+(?:url\()?\s*["']?({EXTERNAL}[^"');\s]*)"""
)
JS_LOADS = re.compile(
    rf"""\bsrc\s*[:=]\s*["'`]({EXTERNAL}[^"'`]*)|url\(\s*["']?({EXTERNAL}[^"')\s]*)"""
    r"""|@import|(fonts\.googleapis\.com|fonts\.gstatic\.com)"""
)


class Loads(HTMLParser):
    """The URLs a page loads: attributes above, inline styles, ``<style>`` blocks."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.styles: list[str] = []
        self.scripts: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in LOADING_ATTRIBUTES.get(tag, ()):
            value = attributes.get(name)
            if value:
                self.urls.extend(part.strip().split(" ")[0] for part in value.split(","))
        if attributes.get("style"):
            self.styles.append(attributes["style"])
        self._in = tag if tag in ("style", "script") else None

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "style":
            self.styles.append(data)
        elif self._in == "script":
            self.scripts.append(data)


def same_host(url: str, base: str) -> bool:
    return urllib.parse.urlsplit(urllib.parse.urljoin(base, url)).netloc == (
        urllib.parse.urlsplit(base).netloc
    )


def found(pattern: re.Pattern, text: str) -> list[str]:
    return [match.group(0) for match in pattern.finditer(text)]


class Crawl:
    """Fetches pages through one session (cookies kept) and checks what each one loads."""

    def __init__(self, server):
        self.base = server.url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.checked: set[str] = set()
        self.problems: list[str] = []

    def get(self, path: str, data: dict | None = None) -> str:
        url = urllib.parse.urljoin(self.base, path)
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        with self.opener.open(url, data=body, timeout=30) as response:
            assert response.status == 200, url
            return response.read().decode("utf-8", errors="replace")

    def check_page(self, path: str, html: str | None = None) -> Loads:
        html = self.get(path) if html is None else html
        page = Loads()
        page.feed(html)
        for url in page.urls:
            if not same_host(url, self.base):
                self.problems.append(f"{path} loads {url}")
            elif url.startswith(("/static/", "/api/")) or "/static/" in url:
                self.check_asset(urllib.parse.urljoin(urllib.parse.urljoin(self.base, path), url))
        for style in page.styles:
            self.problems.extend(
                f"{path} (inline style) loads {hit}" for hit in found(CSS_LOADS, style)
            )
        for script in page.scripts:
            self.problems.extend(
                f"{path} (inline script) loads {hit}" for hit in found(JS_LOADS, script)
            )
        return page

    def check_asset(self, url: str) -> None:
        url = url.split("#")[0]
        if url in self.checked:
            return
        self.checked.add(url)
        text = self.get(url)
        if url.split("?")[0].endswith(".css"):
            self.problems.extend(f"{url} loads {hit}" for hit in found(CSS_LOADS, text))
            for match in re.finditer(r"""(?:url\(|@import\s+)\s*["']?([^"')\s;]+\.css)""", text):
                self.check_asset(urllib.parse.urljoin(url, match.group(1)))
        elif url.split("?")[0].endswith(".js"):
            self.problems.extend(f"{url} loads {hit}" for hit in found(JS_LOADS, text))


@pytest.fixture(scope="module")
def crawl(demo_server):
    return Crawl(demo_server)


def test_api_docs_load_nothing_from_another_host(crawl):
    swagger = crawl.check_page("/api/docs")
    redoc = crawl.check_page("/api/redoc")

    assert crawl.problems == []
    # Swagger UI otherwise asks validator.swagger.io for a badge about the schema.
    assert any('"validatorUrl": null' in script for script in swagger.scripts)
    assert redoc.urls == ["/api/redoc/redoc.standalone.js"]
    assert {url.rsplit("/", 1)[-1] for url in crawl.checked} == {
        "favicon-32x32.png",
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "redoc.standalone.js",
    }


def test_admin_pages_load_nothing_from_another_host(crawl):
    login = crawl.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login).group(1)
    index = crawl.get(
        "/admin/login/?next=/admin/",
        {
            "csrfmiddlewaretoken": token,
            "username": "analyst@demo.exante.test",
            "password": "demo-analyst-pass",
            "next": "/admin/",
        },
    )
    crawl.check_page("/admin/", index)
    changelists = sorted(set(re.findall(r'href="(/admin/\w+/\w+/)"', index)))
    assert "/admin/metrics/metricvalue/" in changelists
    for changelist in changelists:
        html = crawl.get(changelist)
        crawl.check_page(changelist, html)
        for extra in re.findall(rf'href="({changelist}(?:add/|[^"/]+/change/))"', html)[:1]:
            crawl.check_page(extra)
    crawl.check_page(
        "/admin/metrics/metricvalue/?time_unit__exact=day&metric_date__range__gte=2026-01-01"
    )
    organization = re.search(
        r'href="(/admin/entities/organization/\d+/change/)"',
        crawl.get("/admin/entities/organization/"),
    ).group(1)
    charts = re.findall(r'href="(/admin/metrics/metricvalue/chart/[^"]+)"', crawl.get(organization))
    assert charts
    chart = crawl.check_page(charts[0].replace("&amp;", "&") + "?previous_year=on")

    assert crawl.problems == []
    assert any(url.endswith("/admin/css/base.css") for url in crawl.checked)
    assert any(url.endswith("/vendor/uplot/uPlot.iife.min.js") for url in chart.urls)
