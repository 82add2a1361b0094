"""``make bench``: execute each chapter in a fresh kernel and report what it costs and achieves.

    python tools/bench.py chapters/*.ipynb [--seeds 0,1,2 | --seed N]

Prints a markdown table: notebook, seconds, peak memory (MB) and the headline metric that the
chapter glues (see ``mlsd.evaluation.headline``): baseline, model, oracle and share of achievable lift.
Each notebook runs in its own process so that its peak memory (the largest of that process and
its kernel, from the operating system's accounting) is its own. Budget: 60 s and 1.5 GB each.

Run at the stored seed (no ``--seed``), it also records each notebook's seconds and peak memory
in ``chapters/bench.json``, with a digest of the notebook's code: the scoreboard and the
instructor guide quote these measurements, and the tests fail when a notebook's code changed
since it was last measured. A chapter with a headline is also run at each of ``--seeds`` (``make
bench`` passes 0, 1 and 2), and its headline at every seed is recorded: the scoreboard shows
how far the lift share moves with the world it was drawn from.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from notebooks import execute  # noqa: E402

from mlsd.evaluation.headline import headline_numbers, read_headline  # noqa: E402

BUDGET_SECONDS, BUDGET_MB = 60, 1536
RECORD = Path(__file__).resolve().parents[1] / "chapters" / "bench.json"


def code_digest(notebook: str | Path | dict) -> str:
    """SHA-256 of a notebook's code cells (their sources only): what a run time depends on."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8")) if not isinstance(notebook, dict) else notebook
    sources = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    return hashlib.sha256(json.dumps(sources).encode()).hexdigest()


def machine() -> str:
    """The CPUs this process may use, e.g. '2 x Intel(R) Xeon(R) ...'."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = names[0] if names else model
    return f"{len(os.sched_getaffinity(0))} x {model}"


def stored_seed(notebook: str | Path) -> int:
    """The ``SEED = n`` of the notebook's cell tagged ``parameters``: the seed its outputs are from."""
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            for node in ast.parse("".join(cell["source"])).body:
                if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["SEED"]:
                    return int(ast.literal_eval(node.value))
    raise ValueError(f"{notebook}: no `SEED = <int>` in a cell tagged 'parameters'")


def record(path: Path, seconds: float, peak_mb: float, headlines: dict[int, dict]) -> None:
    """Store one notebook's measurement in ``chapters/bench.json`` (keyed by the notebook's stem)."""
    runs = json.loads(RECORD.read_text()) if RECORD.exists() else {}
    runs[path.stem] = {
        "seconds": round(seconds, 1),
        "peak_mb": round(peak_mb),
        "code_sha256": code_digest(path),
        "measured_on": datetime.date.today().isoformat(),
        "machine": machine(),
    }
    if headlines:  # the numbers only: the names are the chapter's
        runs[path.stem]["headline_by_seed"] = {
            str(seed): headline_numbers(h) for seed, h in sorted(headlines.items())}
    RECORD.write_text(json.dumps(dict(sorted(runs.items())), indent=1) + "\n")


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


def seed_list(text: str) -> list[int]:
    """``--seeds``: whole numbers >= 0 separated by commas (``SEEDS=0,1,2`` in ``make bench``)."""
    return [seed_value(part) for part in text.split(",")]


def seed_value(text: str) -> int:
    """``--seed``: a whole number >= 0, as numpy's generators take (``SEED=1`` in ``make bench``)."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(
            f"SEED must be a whole number >= 0 (the seed every world and model in a chapter starts from), got {text!r}")
    return int(text)


def fmt(value, spec=".3f") -> str:
    return "" if value is None else format(value, spec) if isinstance(value, float) else str(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--seed", type=seed_value, default=None, help="override each notebook's SEED parameter")
    parser.add_argument("--seeds", type=seed_list, default=[],
                        help="also run each chapter with a headline at these seeds, and record its headlines")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        run_one(args.one, args.seed)
        return 0

    recording = args.seed is None
    print(f"Seed: {'as stored' if recording else args.seed}. Budget: {BUDGET_SECONDS} s, {BUDGET_MB} MB.")
    print("Recorded in chapters/bench.json.\n" if recording else "Not recorded: --seed overrides the stored seed.\n")
    print("| notebook | seed | seconds | peak MB | metric | baseline | model | oracle | lift share |")
    print("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    over = 0
    for path in args.notebooks:
        seed = stored_seed(path) if recording else args.seed
        r = measure(path, None if recording else seed)
        if "error" in r:
            print(f"| {path.stem} | {seed} | failed: {r['error']} | | | | | | |")
            over += 1
            continue
        flag = " (over budget)" if r["seconds"] > BUDGET_SECONDS or (r["peak_mb"] or 0) > BUDGET_MB else ""
        over += bool(flag)
        headlines = {seed: r["headline"]}
        if recording:
            if r["headline"] != json.loads(json.dumps(read_headline(path))):  # intervals: lists
                # same seed, same code: a different result means the stored outputs are stale
                flag += " (headline differs from the stored outputs: run `make outputs`)"
                over += 1
            for other in [s for s in args.seeds if s != seed and r["headline"]]:
                extra = measure(path, other)
                if "error" in extra:
                    print(f"| {path.stem} | {other} | failed: {extra['error']} | | | | | | |")
                    over += 1
                    continue
                headlines[other] = extra["headline"]
            record(path, r["seconds"], r["peak_mb"], {s: h for s, h in headlines.items() if h})
        for s, h in sorted(headlines.items()):
            cost = f"{r['seconds']:.1f} | {fmt(r['peak_mb'], '.0f')}" if s == seed else " | "
            print(
                f"| {path.stem}{flag if s == seed else ''} | {s} | {cost} | {fmt(h.get('headline_metric'))} "
                f"| {fmt(h.get('headline_baseline'))} | {fmt(h.get('headline_model'))} | {fmt(h.get('headline_oracle'))} "
                f"| {fmt(h.get('headline_lift_share'), '.0%')} |"
            )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
