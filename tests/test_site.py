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


# The readability limits of BOOK.md, measured as a reader sees the page: on a laptop (1366 x 900),
# with every collapsed cell opened (a reader who opens one should not meet a sideways scroll).
LAPTOP = {"width": 1366, "height": 900}
MIN_DIAGRAM_TEXT_PX = 11


@pytest.fixture(scope="module")
def laptop_page(browser, site_url):
    context = browser.new_context(viewport=LAPTOP)
    opened = {}

    def open_page(page):
        if page not in opened:
            tab = context.new_page()
            tab.goto(site_url + page + ".html")
            tab.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
            opened[page] = tab
        return opened[page]

    yield open_page
    context.close()


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_no_code_block_needs_a_sideways_scroll(laptop_page, page):
    widest_lines = laptop_page(page).evaluate("""() =>
        [...document.querySelectorAll('div.cell_input pre, div.cell_output pre, div.highlight pre')]
          .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
          .map(pre => pre.textContent.split('\\n').reduce((a, b) => (b.length > a.length ? b : a)))""")
    assert not widest_lines, (f"{len(widest_lines)} code blocks scroll sideways; their widest lines:\n"
                              + "\n".join(widest_lines))


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_no_output_table_is_wider_than_the_column(laptop_page, page):
    too_wide = laptop_page(page).evaluate("""() =>
        [...document.querySelectorAll('div.cell_output table')]
          .map(table => [table, table.closest('div.cell_output')])
          .filter(([table, output]) => table.getBoundingClientRect().width
                                       > output.getBoundingClientRect().width + 1)
          .map(([table]) => table.innerText.split('\\n')[0].trim().slice(0, 80))""")
    assert not too_wide, f"{len(too_wide)} output tables are wider than the column; headers: {too_wide}"


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_visible_code_records_numbers_for_the_prose_in_at_most_one_line_per_cell(laptop_page, page):
    """The bookkeeping stays out of sight: one `glue_numbers(...)` line, or a collapsed cell."""
    counts = laptop_page(page).evaluate("""() =>
        [...document.querySelectorAll('div.cell:not(.tag_hide-input) div.cell_input pre')]
          .map(pre => pre.textContent.split('\\n').filter(line => /\\bglue\\w*\\(/.test(line)).length)""")
    assert counts and max(counts) <= 1, f"cells show {sorted(counts)[-5:]} glue lines"


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_diagram_text_is_legible_at_column_width(laptop_page, page):
    """Every SVG diagram's smallest text, as rendered in the column, is at least 11 px."""
    tab = laptop_page(page)
    diagrams = tab.evaluate("""() => [...document.querySelectorAll('div.cell_output img')]
        .filter(img => img.src.endsWith('.svg'))
        .map(img => [img.src, img.getBoundingClientRect().width])""")
    for src, width in diagrams:
        svg = tab.request.get(src).text()
        view_width = float(re.search(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) ', svg)[1])
        smallest = min(float(size) for size in re.findall(r'font-size="([\d.]+)"', svg))
        rendered = smallest * width / view_width
        assert rendered >= MIN_DIAGRAM_TEXT_PX, f"{src.rsplit('/', 1)[-1]}: text at {rendered:.1f} px"


def test_the_scoreboard_fits_the_column(laptop_page):
    overflowing = laptop_page("scoreboard").evaluate("""() => [...document.querySelectorAll('table')]
        .map(table => table.parentElement).filter(box => box.scrollWidth > box.clientWidth + 1).length""")
    assert overflowing == 0, "the scoreboard needs a sideways scroll at 1366 px"


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_chapter_title_and_sidebar_entry_carry_the_chapter_number(page):
    """"9. Video recommendation: ...", from the file name, on the page and in the sidebar."""
    number = int(re.search(r"chapters/(\d+)_", page)[1])
    html = (ROOT / "_build" / "html" / f"{page}.html").read_text(encoding="utf-8")
    heading = re.sub(r"<[^>]+>", "", re.search(r"<h1>(.*?)</h1>", html, re.S)[1])
    assert heading.startswith(f"{number}. "), heading
    home = (ROOT / "_build" / "html" / "scoreboard.html").read_text(encoding="utf-8")  # its sidebar lists every chapter
    entry = re.search(rf'<li class="toctree-l1"><a class="reference internal" href="{page}.html">([^<]*)</a>', home)
    assert entry and entry[1].startswith(f"{number}. "), entry and entry[1]
