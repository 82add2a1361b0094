"""What the site tests check on a page, kept apart so a test can prove the checks bite."""

from __future__ import annotations

from urllib.parse import urlparse

LOCAL_HOSTS = {"127.0.0.1", "localhost"}

# Make lazy images load now, then wait until every image has loaded or failed.
_IMAGES_JS = """async () => {
    const images = Array.from(document.images);
    images.forEach(img => { img.loading = "eager"; });
    await Promise.all(images.map(img => img.decode().catch(() => null)));
    return images.map(img => ({
        src: img.getAttribute("src"),
        alt: img.getAttribute("alt"),
        width: img.naturalWidth,
    }));
}"""


# Every math element on the page must have been typeset by MathJax (served by the site itself).
_MATH_JS = """async () => {
    const math = document.querySelectorAll("div.math, span.math");
    if (!math.length) return {math: 0, typeset: 0};
    if (window.MathJax?.startup?.promise) await window.MathJax.startup.promise;
    return {math: math.length, typeset: document.querySelectorAll("mjx-container").length};
}"""


def audit_page(context, url: str) -> list[str]:
    """Open ``url`` in a new page of ``context``; return every problem found (empty if none).

    Problems: a console error, an uncaught exception, a failed or 4xx/5xx request, a request to
    any host other than this machine (the book must work offline: no CDN), an ``<img>`` that
    did not load or has no alt text, and math that MathJax did not typeset.
    """
    problems: list[str] = []
    page = context.new_page()

    def on_request(route):
        host = urlparse(route.request.url).hostname
        if host in LOCAL_HOSTS or route.request.url.startswith("data:"):
            route.continue_()
        else:
            problems.append(f"request to an external host: {route.request.url}")
            route.abort()

    page.route("**/*", on_request)
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"uncaught exception: {exc}"))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} ({req.failure})"))
    page.on("response", lambda resp: problems.append(f"HTTP {resp.status}: {resp.url}") if resp.status >= 400 else None)
    try:
        page.goto(url, wait_until="networkidle")
        for image in page.evaluate(_IMAGES_JS):
            if not (image["alt"] or "").strip():
                problems.append(f"image without alt text: {image['src']}")
            if image["width"] == 0:
                problems.append(f"image did not load: {image['src']}")
        math = page.evaluate(_MATH_JS)
        if math["typeset"] < math["math"]:
            problems.append(f"math not typeset: {math['typeset']} of {math['math']} formulas rendered")
    finally:
        page.close()
    # the same fault can be reported as a console error and a failed request; keep the order
    return list(dict.fromkeys(problems))
