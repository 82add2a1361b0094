"""A local Sphinx extension that keeps the book working offline and its console clean.

- MathJax 3 comes from the pinned ``django-static-mathjax`` package (installed from PyPI at
  set-up time) and is copied into the site as ``mathjax/``; pages load it from there instead of
  a CDN, so math renders with no network.
- Sphinx 7.4 emits one inline script twice on some pages (``THEBE_JS_URL`` declared twice is a
  console error); duplicate script entries are dropped before each page is written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

MATHJAX_DIR = "mathjax"  # under _static/, where Sphinx resolves a relative mathjax_path


def _mathjax_source() -> Path:
    import mathjax  # the module installed by django-static-mathjax

    source = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (source / "tex-chtml.js").exists():
        raise RuntimeError(f"MathJax's tex-chtml.js not found under {source}; reinstall requirements.txt")
    return source


def _use_local_mathjax(app, config) -> None:
    _mathjax_source()  # fail early, with a clear message, if the package is missing
    config.mathjax_path = f"{MATHJAX_DIR}/tex-chtml.js"


def _copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    shutil.copytree(_mathjax_source(), Path(app.outdir) / "_static" / MATHJAX_DIR, dirs_exist_ok=True)


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # the same file or inline body (filename None or ""), whatever priority each copy has
        key = (getattr(script, "filename", str(script)) or None, tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    # in place: handlers that run later (MathJax's) add their scripts to this same list
    context["script_files"][:] = unique


def setup(app):
    app.connect("config-inited", _use_local_mathjax)
    # early: `html-page-context` stops at the first handler that returns a value
    app.connect("html-page-context", _drop_duplicate_scripts, priority=100)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
