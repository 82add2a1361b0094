"""The built site, as a reader's browser sees it (headless Chromium through Playwright)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from conftest import ROOT
from course import toc_chapters, toc_files
from site_audit import audit_page

PAGES = toc_files(ROOT)
NOTEBOOK_PAGES = toc_chapters(ROOT)


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
def test_notebook_page_has_visible_launch_and_download_buttons(context, site_url, page):
    """The header's launch (Binder) and download (.ipynb) menus show at the top of every chapter."""
    tab = context.new_page()
    tab.goto(site_url + page + ".html")
    for menu, link in (("Launch interactive content", 'a[href*="mybinder.org/v2/gh/"]'),
                       ("Download this page", f'a[href$="_sources/{page}.ipynb"]')):
        button = tab.get_by_role("button", name=menu)
        assert button.is_visible(), f"no visible {menu!r} button"
        button.click()
        assert tab.locator(link).first.is_visible(), f"{menu!r} does not offer {link}"
        tab.keyboard.press("Escape")
    assert tab.locator('a[href*="mybinder.org/v2/gh/"]').first.get_attribute("href").endswith(f"{page}.ipynb")
    notebook = tab.request.get(site_url + f"_sources/{page}.ipynb")
    assert notebook.ok and notebook.json()["cells"], "the download link does not give the notebook"
    tab.close()


@pytest.mark.parametrize("page", [PAGES[0], NOTEBOOK_PAGES[0]])
def test_one_search_field_per_page(context, site_url, page):
    """One search field, in the sidebar (sphinx-book-theme 1.3 added a second bar above the page)."""
    tab = context.new_page()
    tab.goto(site_url + page + ".html")
    visible = tab.locator(".search-button-field:visible, form.bd-search:visible").count()
    tab.close()
    assert visible == 1, f"{visible} visible search fields"


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


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_figures_tables_and_exercises_are_numbered_within_their_chapter(page):
    """"Fig. 9.1", "Exercise 9.2": numbered from 1 in each chapter, after the chapter's number
    (so adding a chapter renumbers nothing in the others)."""
    html = (ROOT / "_build" / "html" / f"{page}.html").read_text(encoding="utf-8")
    chapter = int(re.search(r"chapters/(\d+)_", page)[1])
    captions = re.findall(r'<span class="caption-number">(\w+)\.? ([\d.]+) ', html)
    assert any(kind == "Exercise" for kind, _ in captions), "no numbered exercise found"
    for kind in {kind for kind, _ in captions}:
        numbers = [number for k, number in captions if k == kind]
        assert numbers == [f"{chapter}.{i}" for i in range(1, len(numbers) + 1)], f"{kind}: {numbers}"
