"""The site checks must bite: a page with a console error or an image without alt text fails."""

from __future__ import annotations

import base64

import pytest

from site_audit import audit_page

# a valid 1x1 PNG
PIXEL = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")

PAGES = {
    "clean.html": '<html><body><img src="pixel.png" alt="a pixel"></body></html>',
    "console.html": '<html><body><script>console.error("boom")</script></body></html>',
    "exception.html": "<html><body><script>undefinedFunction()</script></body></html>",
    "no_alt.html": '<html><body><img src="pixel.png"></body></html>',
    "broken_img.html": '<html><body><img src="missing.png" alt="gone"></body></html>',
    "math.html": '<html><body><div class="math">\\(x^2\\)</div></body></html>',
    "cdn.html": '<html><head><script src="https://cdn.example.org/x.js"></script></head><body></body></html>',
}


@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory, serve):
    folder = tmp_path_factory.mktemp("fixture_site")
    (folder / "pixel.png").write_bytes(PIXEL)
    for name, html in PAGES.items():
        (folder / name).write_text(html)
    return serve(folder)


@pytest.fixture(scope="module")
def context(browser):
    context = browser.new_context()
    yield context
    context.close()


def test_clean_page_passes(context, fixture_site):
    assert audit_page(context, fixture_site + "clean.html") == []


@pytest.mark.parametrize(
    "page, expected",
    [
        ("console.html", "console error: boom"),
        ("exception.html", "uncaught exception"),
        ("no_alt.html", "image without alt text"),
        ("broken_img.html", "image did not load"),
        ("cdn.html", "request to an external host: https://cdn.example.org/x.js"),
        ("math.html", "math not typeset: 0 of 1"),
    ],
)
def test_each_fault_is_reported(context, fixture_site, page, expected):
    problems = audit_page(context, fixture_site + page)
    assert any(expected in p for p in problems), problems
