"""Shared fixtures: paths, and a headless Chromium looking at the built site."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import sys
import threading
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
STUDENT_SITE = ROOT / "_build" / "student" / "html"
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
# The book's local Sphinx extensions and the tools: tests check the functions they share.
sys.path[:0] = [str(ROOT / "_ext"), str(ROOT / "tools")]

# Flags for Chromium as root in a sandbox with no network but the package registries: without
# the background-networking ones, Chromium keeps trying (and failing) to reach Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


@pytest.fixture(scope="session")
def serve():
    """``serve(folder) -> base URL``: serve a folder over HTTP on 127.0.0.1 for the session."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def site_url(serve) -> str:
    if not (SITE / "index.html").exists():
        pytest.fail(f"no built site at {SITE}: run `make book` first (`make test` does)")
    return serve(SITE)


@pytest.fixture(scope="session")
def student_url(serve) -> str:
    if not (STUDENT_SITE / "index.html").exists():
        pytest.fail(f"no student edition at {STUDENT_SITE}: run `make student` first (`make test` does)")
    return serve(STUDENT_SITE)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not executable:
        pytest.fail("Chromium not found: install Debian's `chromium` package (`make test` does) or set CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
