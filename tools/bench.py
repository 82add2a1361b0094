"""``make bench``: execute each chapter in a fresh kernel and report what it costs and achieves.

    python tools/bench.py chapters/*.ipynb [--seed N]

Prints a markdown table: notebook, seconds, peak memory (MB) and the headline metric that the
chapter glues (see ``mlsd.headline``): baseline, model, oracle and share of achievable lift.
Each notebook runs in its own process so that its peak memory (the largest of that process and
its kernel, from the operating system's accounting) is its own. Budget: 60 s and 1.5 GB each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from notebooks import execute  # noqa: E402

from mlsd.headline import read_headline  # noqa: E402

BUDGET_SECONDS, BUDGET_MB = 60, 1536


def run_one(path: str, seed: int | None) -> None:
    """Child process: execute one notebook, print its seconds and headline as JSON."""
    nb, seconds = execute(path, params={"SEED": seed} if seed is not None else None)
    print(json.dumps({"seconds": seconds, "headline": read_headline(nb)}))


def measure(path: Path, seed: int | None) -> dict:
    cmd = [sys.executable, __file__, "--one", str(path)] + (["--seed", str(seed)] if seed is not None else [])
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        # Reap the child ourselves: ru_maxrss of a waited-for child also covers the children
        # it waited for, here the kernel, so this is the notebook's peak memory.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        err_text = err.read()
    peak_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    if proc.returncode != 0:
        return {"error": (err_text.strip().splitlines() or ["failed"])[-1]}
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mb"] = peak_mb
    return result


def fmt(value, spec=".3f") -> str:
    return "" if value is None else format(value, spec) if isinstance(value, float) else str(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--seed", type=int, default=None, help="override each notebook's SEED parameter")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one, args.seed)
        return 0

    print(f"Seed: {'as stored' if args.seed is None else args.seed}. Budget: {BUDGET_SECONDS} s, {BUDGET_MB} MB.\n")
    print("| notebook | seconds | peak MB | metric | baseline | model | oracle | lift share |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    over = 0
    for path in args.notebooks:
        r = measure(path, args.seed)
        if "error" in r:
            print(f"| {path.stem} | failed: {r['error']} | | | | | | |")
            over += 1
            continue
        h = r["headline"]
        flag = " (over budget)" if r["seconds"] > BUDGET_SECONDS or (r["peak_mb"] or 0) > BUDGET_MB else ""
        over += bool(flag)
        print(
            f"| {path.stem}{flag} | {r['seconds']:.1f} | {fmt(r['peak_mb'], '.0f')} | {fmt(h.get('headline_metric'))} "
            f"| {fmt(h.get('headline_baseline'))} | {fmt(h.get('headline_model'))} | {fmt(h.get('headline_oracle'))} "
            f"| {fmt(h.get('headline_lift_share'), '.0%')} |"
        )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
