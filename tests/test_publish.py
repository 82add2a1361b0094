"""`make publish`: the built site reaches the gh-pages branch of a remote (here a local bare repository)."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import ROOT, SITE


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def publish(clone, remote) -> None:
    """Run `make publish REMOTE=remote` on the book that `make test` has just built, from a fresh clone.

    `-o book` reuses that build instead of making it again. ghp-import writes a local `gh-pages`
    branch in the repository git finds: GIT_DIR points git at a bare clone of ROOT with no remote
    (so nothing but REMOTE can be pushed to), and ROOT's branches and work tree are left alone.
    REMOTE on the command line wins over an outer `make test REMOTE=...`.
    """
    git("clone", "--quiet", "--bare", "--shared", str(ROOT), str(clone))
    git("--git-dir", str(clone), "remote", "remove", "origin")
    make = subprocess.run(["make", "-C", str(ROOT), "-o", "book", "publish", f"REMOTE={remote}"],
                          env=os.environ | {"GIT_DIR": str(clone)}, capture_output=True, text=True)
    assert make.returncode == 0, make.stdout + make.stderr


def root_state() -> tuple[str, str]:
    """ROOT's refs, and its tracked files' changes (other tests may create untracked files meanwhile)."""
    refs = git("-C", str(ROOT), "for-each-ref", "--format=%(refname) %(objectname)")
    status = git("--no-optional-locks", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no")
    return refs, status


def test_publish_pushes_exactly_the_built_site_to_gh_pages(tmp_path):
    """Twice, each time from a fresh clone as CI does: the second push replaces the first (--force)."""
    if not (SITE / "index.html").exists():
        pytest.fail(f"no built site at {SITE}: run `make book` first (`make test` does)")
    remote = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", str(remote))
    before = root_state()

    publish(tmp_path / "clone1", remote)
    publish(tmp_path / "clone2", remote)

    files = set(git("--git-dir", str(remote), "ls-tree", "-r", "--name-only", "gh-pages").splitlines())
    # Without .nojekyll, GitHub Pages would not serve the folders starting with "_".
    assert {"index.html", ".nojekyll", "chapters/01_framework.html", "_static/mathjax/tex-chtml.js", "_sources/intro.md"} <= files
    assert files == {p.relative_to(SITE).as_posix() for p in SITE.rglob("*") if p.is_file()} | {".nojekyll"}
    head = git("-C", str(ROOT), "rev-parse", "--short", "HEAD").strip()
    assert git("--git-dir", str(remote), "log", "--format=%s", "gh-pages").splitlines() == [f"Publish the book from {head}"]
    assert root_state() == before
