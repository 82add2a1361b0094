"""The test session's guard: stored outputs are compared only under the book's numeric configuration.

pytest loads this file for every run in this repository, whichever tests or notebooks it is
given. On a machine the configuration covers (Linux, x86-64 with AVX2; see ``mlsd.numeric``),
the session stops before it compares anything unless the configuration is in force, both in
this process's environment and inside a kernel started the way nbval starts one. Elsewhere,
nbval's comparison of stored outputs is switched off and ``tests/test_portable.py`` runs each
notebook to the end and compares its headline within a stated tolerance.
"""

from __future__ import annotations

import subprocess

import pytest

from mlsd import numeric

_README = 'README.md, "Numeric configuration"'


def _is_controller(config) -> bool:
    return not hasattr(config, "workerinput")  # pytest-xdist's workers have it


def pytest_configure(config):
    try:
        config.numeric_uncovered = numeric.uncovered_reason()
    except ValueError as error:  # a mistyped MLSD_NUMERIC
        raise pytest.UsageError(str(error)) from None
    if config.numeric_uncovered:
        if config.getoption("nbval", default=False):
            config.option.nbval = False  # no output comparison: test_portable.py takes over
    elif _is_controller(config):
        _stop_unless_in_force(config)


def _stop_unless_in_force(config):
    """Raise a one-message usage error unless the configuration holds here and in a fresh kernel."""
    problems = numeric.not_in_force()
    if not problems:
        from nbval.kernel import CURRENT_ENV_KERNEL_NAME, start_new_kernel

        manager, client = start_new_kernel(kernel_name=CURRENT_ENV_KERNEL_NAME, stderr=subprocess.DEVNULL)
        try:
            config.numeric_state = numeric.probe_kernel(client)
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
        problems = [f"in a notebook's kernel, {m}" for m in numeric.mismatches(config.numeric_state)]
    if problems:
        raise pytest.UsageError(
            "the book's numeric configuration is not in force, so no stored output is compared:\n"
            + "".join(f"  - {p}\n" for p in problems)
            + f"Run `make test`, which sets it ({_README}). To run pytest by hand, first put it in your\n"
            "shell: export $(python3 -m mlsd.numeric exports)"
        )


def _mode_line(config) -> str:
    if config.numeric_uncovered:
        return (f"numeric configuration: cannot hold here ({config.numeric_uncovered}). Notebooks run to "
                "the end and their headlines are compared within tolerance (tests/test_portable.py); "
                "comparing every stored output needs Linux on x86-64 with AVX2.")
    state = getattr(config, "numeric_state", None)
    if state is None:
        return "numeric configuration: in force"
    return (f"numeric configuration: in force (numpy {state['numpy']}, OpenBLAS {'/'.join(state['openblas'])}, "
            f"faiss {state['faiss']}): every stored output is compared (strict nbval)")


def pytest_report_header(config):
    return _mode_line(config)


def pytest_terminal_summary(terminalreporter, config):
    if config.numeric_uncovered:
        terminalreporter.write_line(_mode_line(config), yellow=True)
