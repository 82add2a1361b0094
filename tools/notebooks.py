"""Execute notebooks the way the tests do, and store their outputs.

    python tools/notebooks.py chapters/01_framework.ipynb [...]     # `make outputs`

Each notebook runs in a fresh kernel from its own folder, with PYTHONHASHSEED=0 and without
per-cell timing metadata, so the stored outputs are exactly what strict nbval reproduces. It
stores nothing unless the book's numeric configuration is in force (``mlsd.numeric``; ``make``
sets it): outputs computed with other SIMD kernels would fail the tests on every other machine.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from mlsd import numeric

PARAMETERS_TAG = "parameters"


def set_parameters(nb, params: dict) -> None:
    """Insert a cell assigning ``params`` right after the cell tagged ``parameters`` (as papermill does)."""
    for index, cell in enumerate(nb.cells):
        if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            source = "\n".join(f"{name} = {value!r}" for name, value in params.items())
            injected = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
            nb.cells.insert(index + 1, injected)
            return
    raise ValueError("the notebook has no cell tagged 'parameters' to override")


def execute(path: str | Path, params: dict | None = None, timeout: int = 600, edit=None):
    """Execute the notebook at ``path`` in a fresh kernel; return ``(notebook, seconds)``.

    ``params`` override the cell tagged ``parameters``; ``edit(nb)``, if given, changes the
    notebook in memory before it runs (``make keys`` adds cells that read the answers).
    """
    path = Path(path)
    os.environ["PYTHONHASHSEED"] = "0"  # inherited by the kernel
    nb = nbformat.read(path, as_version=4)
    if params:
        set_parameters(nb, params)
    if edit:
        edit(nb)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )
    start = time.perf_counter()
    client.execute()
    return nb, time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Execute notebooks and store their outputs in place.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    reason = numeric.uncovered_reason()
    problems = [reason] if reason else numeric.not_in_force()
    if problems:
        parser.exit(1, "Outputs are stored only under the book's numeric configuration, so that they "
                       "reproduce on every machine; here " + "; ".join(problems) + ".\nRun `make outputs` "
                       "(on Linux x86-64 with AVX2; README.md, \"Numeric configuration\").\n")
    for path in args.notebooks:
        nb, seconds = execute(path)
        nbformat.write(nb, path)
        print(f"{path}: executed in {seconds:.1f} s, outputs stored")


if __name__ == "__main__":
    main()
