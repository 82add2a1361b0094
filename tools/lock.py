"""``make lock``: resolve requirements.in, transitive dependencies included, into requirements.txt.

    python3 tools/lock.py

Installs requirements.in into a throw-away virtual environment with the Python that runs this
script (the book's is 3.11, see runtime.txt) and writes every installed distribution, pinned, to
requirements.txt: the lock that `make`, CI and Binder install. Run it on Linux x86-64, as the
book's users' machines and Binder are; review the diff before committing it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE, LOCK = ROOT / "requirements.in", ROOT / "requirements.txt"
# Packaging tools, not the book's dependencies: each environment keeps its own.
NOT_LOCKED = {"setuptools", "wheel"}

HEADER = """\
# The lock: every Python package the book runs with, transitive dependencies included, pinned.
# `make`, CI and Binder install exactly this. Generated from requirements.in by `make lock`;
# do not edit by hand.
-e .
"""


def resolve(source: Path) -> list[str]:
    """Install ``source`` into a fresh venv; return its ``name==version`` lines, sorted."""
    with tempfile.TemporaryDirectory(prefix="mlsd-lock-") as tmp:
        venv.create(tmp, with_pip=True)
        python = str(Path(tmp) / "bin" / "python")
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", str(source)], check=True, cwd=ROOT)
        frozen = subprocess.run([python, "-m", "pip", "freeze", "--all", "--exclude-editable"],
                                check=True, capture_output=True, text=True).stdout
    pins = [line for line in frozen.splitlines() if line and not line.startswith("#")]
    return sorted((p for p in pins if p.split("==")[0].lower() not in NOT_LOCKED), key=str.lower)


def main() -> int:
    if not SOURCE.exists():
        print(f"{SOURCE.name} is missing: it lists the packages the lock is made from.", file=sys.stderr)
        return 1
    LOCK.write_text(HEADER + "\n".join(resolve(SOURCE)) + "\n")
    print(f"wrote {LOCK.relative_to(ROOT)}: review `git diff {LOCK.name}` before committing it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
