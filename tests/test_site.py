"""The built site, as a reader's browser sees it (headless Chromium through Playwright)."""

from __future__ import annotations

import re
from html import unescape

import pytest
import yaml
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from conftest import ROOT
from site_audit import audit_page


def toc_files() -> list[str]:
    """Every document in ``_toc.yml``, root first, as paths without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


PAGES = toc_files()
NOTEBOOK_PAGES = [f for f in PAGES if (ROOT / f"{f}.ipynb").exists()]


@pytest.fixture(scope="module")
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.mark.parametrize("page", PAGES)
def test_page_is_clean(context, site_url, page):
    """Loads with no console error, no external request, every image loaded and with alt text."""
    problems = audit_page(context, site_url + page + ".html")
    assert problems == []


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_notebook_page_has_launch_buttons(context, site_url, page):
    tab = context.new_page()
    tab.goto(site_url + page + ".html")
    binder = tab.locator('a[href*="mybinder.org/v2/gh/"]')
    assert binder.count() >= 1, "no Binder launch button"
    assert binder.first.get_attribute("href").endswith(f"{page}.ipynb")
    tab.close()


def _title_word(html: str) -> str:
    """The longest word of the page's own title (``<title>`` is "page title — book title")."""
    title = unescape(re.search(r"<title>(.*?)</title>", html, re.S).group(1)).split("\u2014")[0]
    return max(re.findall(r"[A-Za-z]{4,}", title), key=len).lower()


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_search_finds_a_chapter(context, site_url, page):
    """The offline search index finds a chapter by a word of its title."""
    html = (ROOT / "_build" / "html" / f"{page}.html").read_text(encoding="utf-8")
    word = _title_word(html)
    tab = context.new_page()
    tab.goto(f"{site_url}search.html?q={word}")
    # Sphinx's search appends results one by one; wait for a link to the chapter to appear.
    link = tab.locator(f'#search-results ul.search li a[href^="{page}.html"]')
    try:
        link.first.wait_for(timeout=15_000)
    except PlaywrightTimeout:
        pytest.fail(f"searching {word!r} did not list {page}: {tab.locator('#search-results').inner_text()}")
    finally:
        tab.close()
