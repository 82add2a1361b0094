"""The book's one numeric configuration: which SIMD kernels every executed chapter runs on.

numpy, OpenBLAS and faiss pick their floating-point kernels by CPU at run time (AVX2 on one
machine, AVX-512 on another). The kernels round differently, and iterative training (WALS, a
contrastive encoder, boosting) and top-k choices amplify a last-bit difference into a visible
one. So every path that executes a chapter -- ``make test``, ``make outputs``, ``make bench``,
``make lab``, Binder's ``start`` -- exports :data:`CONFIGURATION`, which holds all three at their
AVX2 kernels: any x86-64 Linux machine with AVX2 then computes the stored outputs bit for bit.

Where that cannot hold (another architecture, an x86-64 CPU without AVX2, or an
``OPENBLAS_CORETYPE`` the machine sets for itself, which is respected), :func:`uncovered_reason`
says why, and the tests compare each chapter's headline within a tolerance instead of every
stored output.

This module imports nothing but the standard library at import time: the Makefile and Binder's
``start`` read the configuration from it before numpy may be loaded::

    python -m mlsd.numeric exports   # NAME=value ... for the Makefile
    python -m mlsd.numeric shell     # export NAME=value lines, for a shell script
    python -m mlsd.numeric report    # what is in force in this process, as JSON
    python -m mlsd.numeric install-kernel   # the environment's python3 kernel starts under it
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

__all__ = [
    "CONFIGURATION",
    "EXPECTED",
    "environment",
    "uncovered_reason",
    "not_in_force",
    "probe",
    "probe_kernel",
    "mismatches",
    "install_kernel",
]

#: The environment every chapter executes under. Each value is read once, when the library loads.
CONFIGURATION = {
    # numpy 2.4 dispatches to X86_V3 (AVX2), X86_V4 or AVX512_* kernels: stop at AVX2.
    "NPY_DISABLE_CPU_FEATURES": "X86_V4,AVX512_ICL,AVX512_SPR",
    # OpenBLAS (numpy's, scipy's and faiss's own copies) picks a kernel per CPU: hold Haswell's.
    "OPENBLAS_CORETYPE": "Haswell",
    # faiss-cpu 1.15 is one dynamic-dispatch build: its C++ reads this (FAISS_OPT_LEVEL is only
    # read by the Python loader, to choose between builds this wheel does not have).
    "FAISS_SIMD_LEVEL": "AVX2",
}

#: What a process running under the configuration reports (see :func:`probe`).
EXPECTED = {"numpy": "X86_V3", "openblas": ["Haswell"], "faiss": "AVX2"}

#: Set to ``headlines`` to compare headlines within tolerance even on a machine the
#: configuration covers (for example to try a different kernel on purpose).
MODE_VARIABLE = "MLSD_NUMERIC"

# What numpy's X86_V3 target (and so the configuration) needs of the CPU, as /proc/cpuinfo names it.
_X86_V3_FLAGS = {"avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm"}


def _cpu_flags() -> set[str] | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


def uncovered_reason(environ=None, machine: str | None = None, system: str | None = None,
                     cpu_flags: set[str] | None = None) -> str | None:
    """Why this machine cannot reproduce the stored outputs bit for bit, or ``None`` if it can.

    The configuration covers Linux on x86-64 with AVX2 (glibc's maths library is part of
    the result too). The arguments default to this machine and process; tests pass others.
    """
    environ = os.environ if environ is None else environ
    machine = platform.machine() if machine is None else machine
    system = platform.system() if system is None else system
    if machine.lower() not in ("x86_64", "amd64"):
        return f"this is a {machine} machine"
    if system != "Linux":
        return f"this is {system}, whose maths library rounds differently from Linux's"
    flags = _cpu_flags() if cpu_flags is None else cpu_flags
    missing = sorted(_X86_V3_FLAGS - flags) if flags is not None else ["(no /proc/cpuinfo)"]
    if missing:
        return f"this CPU lacks {', '.join(missing)}"
    coretype = environ.get("OPENBLAS_CORETYPE")
    if coretype and coretype != CONFIGURATION["OPENBLAS_CORETYPE"]:
        return (f"this machine sets OPENBLAS_CORETYPE={coretype} for itself (kept: some machines "
                "need it for correct results)")
    if environ.get(MODE_VARIABLE) == "headlines":
        return f"{MODE_VARIABLE}=headlines asks for it"
    if environ.get(MODE_VARIABLE, "exact") != "exact":
        raise ValueError(f"{MODE_VARIABLE} must be 'exact' or 'headlines', got {environ[MODE_VARIABLE]!r}")
    return None


def environment(environ=None, **machine) -> dict[str, str]:
    """The variables to export on this machine: :data:`CONFIGURATION`, or less where it can't hold.

    Elsewhere than x86-64 Linux nothing is set (numpy refuses to disable x86 features on ARM).
    An ``OPENBLAS_CORETYPE`` the machine already sets is left as it is.
    """
    environ = os.environ if environ is None else environ
    if uncovered_reason({}, **machine) is not None:
        return {}
    config = dict(CONFIGURATION)
    if environ.get("OPENBLAS_CORETYPE") not in (None, "", config["OPENBLAS_CORETYPE"]):
        del config["OPENBLAS_CORETYPE"]
    return config


def not_in_force(environ=None) -> list[str]:
    """The configuration's variables that ``environ`` lacks or sets otherwise, one line each."""
    environ = os.environ if environ is None else environ
    problems = []
    for name, value in environment(environ).items():
        if environ.get(name) != value:
            now = f"is {environ[name]!r}" if name in environ else "is unset"
            problems.append(f"{name} {now} (the book's configuration: {value})")
    return problems


def probe() -> dict:
    """What this process computes with: numpy's dispatch target, OpenBLAS cores and faiss's level.

    Loads numpy, scipy's BLAS and faiss (each brings its own OpenBLAS) if they are not yet loaded.
    ``numpy`` is the best target any ufunc uses, or ``mixed: ...`` when a ufunc with an X86_V3
    version runs another one (a target disabled by hand).
    """
    import numpy as np  # noqa: F401  (loads numpy's OpenBLAS)
    import scipy.linalg  # noqa: F401  (loads scipy's OpenBLAS)
    from numpy.lib.introspect import opt_func_info
    from threadpoolctl import threadpool_info

    try:
        import faiss
    except ImportError:
        faiss = None
    used, odd = set(), set()
    for signatures in opt_func_info().values():
        for target in signatures.values():
            current, available = target["current"], target["available"].split()
            used.add(current)
            best = "X86_V3" if "X86_V3" in available else next(t for t in available if t.startswith("baseline"))
            if current != best:
                odd.add(current)
    top = sorted(t for t in used if not t.startswith("baseline")) or sorted(used)
    numpy_target = top[-1] if not odd else "mixed: " + ", ".join(sorted(odd))
    cores = sorted({lib.get("architecture") or "?" for lib in threadpool_info() if lib["internal_api"] == "openblas"})
    return {
        "numpy": numpy_target,
        "openblas": cores,
        "faiss": faiss.SIMDConfig.get_level_name() if faiss is not None else None,
    }


def probe_kernel(client, timeout: float = 60) -> dict:
    """:func:`probe` run inside a started Jupyter kernel, through its ``client``.

    The kernel is what computes a chapter, so this is the state that counts; ``client`` is a
    ``jupyter_client`` kernel client with its channels started.
    """
    lines = []
    code = "import json\nfrom mlsd import numeric\nprint(json.dumps(numeric.probe()))"
    reply = client.execute_interactive(
        code, timeout=timeout, store_history=False,
        output_hook=lambda msg: lines.append(msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"probing the kernel failed: {reply['content'].get('evalue', reply['content'])}")
    return json.loads("".join(lines))


def mismatches(state: dict) -> list[str]:
    """How a :func:`probe` result differs from :data:`EXPECTED`, one line each."""
    names = {"numpy": "numpy's SIMD dispatch", "openblas": "OpenBLAS kernels", "faiss": "faiss SIMD level"}
    return [f"{names[key]}: {state.get(key)!r}, expected {want!r}"
            for key, want in EXPECTED.items() if state.get(key) != want]


def install_kernel(prefix: str | Path | None = None) -> Path:
    """Make the ``python3`` kernel of the environment at ``prefix`` start under the configuration.

    Rewrites ``<prefix>/share/jupyter/kernels/python3/kernel.json`` (ipykernel's) with an
    ``env`` entry, so Jupyter started any way from that environment uses it. Returns the path.
    """
    from ipykernel.kernelspec import get_kernel_dict

    path = Path(sys.prefix if prefix is None else prefix) / "share" / "jupyter" / "kernels" / "python3" / "kernel.json"
    spec = json.loads(path.read_text()) if path.exists() else get_kernel_dict()
    spec["env"] = environment()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=1) + "\n")
    return path


def main(argv=None) -> int:
    commands = ("exports", "shell", "report", "install-kernel")
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: python -m mlsd.numeric {{{','.join(commands)}}}", file=sys.stderr)
        return 2
    command = argv[0]
    if command == "exports":
        print(" ".join(f"{k}={v}" for k, v in environment().items()))
    elif command == "shell":
        print("\n".join(f"export {k}={v}" for k, v in environment().items()))
    elif command == "report":
        state = probe()
        reason = uncovered_reason()
        print(json.dumps({**state, "mode": "headlines" if reason else "exact", "why": reason,
                          "not_in_force": not_in_force(), "mismatches": mismatches(state)}, indent=1))
    else:
        print(f"wrote {install_kernel()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
