"""The numeric configuration (mlsd.numeric): what it sets, that every path's kernel runs under it,
that the session guard stops a run outside it, and that nbval's comparison has teeth."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import nbformat
import pytest
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

from conftest import ROOT
from mlsd import numeric

AVX2_FLAGS = {"avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "abm", "sse4_2"}
LINUX_AVX2 = {"machine": "x86_64", "system": "Linux", "cpu_flags": AVX2_FLAGS}
# A deliberately different SIMD configuration: numpy on its baseline (SSE4) kernels and faiss on
# its scalar ones. OPENBLAS_CORETYPE stays: a different one would be respected, not caught.
OTHER_SIMD = {"NPY_DISABLE_CPU_FEATURES": "X86_V3", "FAISS_SIMD_LEVEL": "NONE"}
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg")]
COVERED = numeric.uncovered_reason() is None
needs_cover = pytest.mark.skipif(not COVERED, reason=f"the configuration cannot hold here: {numeric.uncovered_reason()}")


def without_configuration() -> dict:
    return {k: v for k, v in os.environ.items() if k not in numeric.CONFIGURATION}


# --- what the configuration is, on which machine -------------------------------------------------


def test_linux_x86_64_with_avx2_is_covered_and_gets_the_whole_configuration():
    assert numeric.uncovered_reason({}, **LINUX_AVX2) is None
    assert numeric.environment({}, **LINUX_AVX2) == numeric.CONFIGURATION


@pytest.mark.parametrize(
    "machine, why",
    [
        ({**LINUX_AVX2, "machine": "aarch64"}, "aarch64 machine"),
        ({**LINUX_AVX2, "system": "Darwin"}, "Darwin"),
        ({**LINUX_AVX2, "cpu_flags": AVX2_FLAGS - {"avx2", "fma"}}, "lacks avx2, fma"),
    ],
)
def test_other_machines_are_not_covered_and_get_nothing(machine, why):
    assert why in numeric.uncovered_reason({}, **machine)
    assert numeric.environment({}, **machine) == {}  # numpy refuses x86 names on ARM


def test_an_openblas_core_the_machine_sets_is_kept_and_said():
    environ = {"OPENBLAS_CORETYPE": "Zen"}
    assert "OPENBLAS_CORETYPE" not in numeric.environment(environ, **LINUX_AVX2)
    assert "sets OPENBLAS_CORETYPE=Zen for itself" in numeric.uncovered_reason(environ, **LINUX_AVX2)
    assert numeric.uncovered_reason({"OPENBLAS_CORETYPE": "Haswell"}, **LINUX_AVX2) is None


def test_a_mistyped_mode_stops_the_session_with_one_message():
    run = pytest_run("tests/test_headline.py", env={**os.environ, "MLSD_NUMERIC": "loose"})
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert "MLSD_NUMERIC must be 'exact' or 'headlines', got 'loose'" in run.stderr and "Traceback" not in run.stderr


def test_the_mode_variable_is_checked():
    assert "asks for it" in numeric.uncovered_reason({"MLSD_NUMERIC": "headlines"}, **LINUX_AVX2)
    with pytest.raises(ValueError, match="MLSD_NUMERIC must be 'exact' or 'headlines'"):
        numeric.uncovered_reason({"MLSD_NUMERIC": "loose"}, **LINUX_AVX2)


def test_not_in_force_names_each_missing_or_different_variable():
    if not COVERED:
        pytest.skip("nothing is exported here")
    environ = {**numeric.CONFIGURATION, "FAISS_SIMD_LEVEL": "NONE"}
    del environ["OPENBLAS_CORETYPE"]
    problems = numeric.not_in_force(environ)
    assert problems == [
        "OPENBLAS_CORETYPE is unset (the book's configuration: Haswell)",
        "FAISS_SIMD_LEVEL is 'NONE' (the book's configuration: AVX2)",
    ]
    assert numeric.not_in_force(dict(numeric.CONFIGURATION)) == []


def test_mismatches_compare_a_probe_with_the_expected_state():
    assert numeric.mismatches(dict(numeric.EXPECTED)) == []
    assert numeric.mismatches({**numeric.EXPECTED, "openblas": ["Haswell", "SkylakeX"]}) == [
        "OpenBLAS kernels: ['Haswell', 'SkylakeX'], expected ['Haswell']"
    ]


def test_the_command_line_prints_what_the_makefile_and_binder_read():
    run = lambda *a: subprocess.run([sys.executable, "-m", "mlsd.numeric", *a], cwd=ROOT, capture_output=True, text=True)
    exports = run("exports")
    assert exports.returncode == 0
    assert dict(pair.split("=", 1) for pair in exports.stdout.split()) == numeric.environment()
    bad = run("everything")
    assert bad.returncode == 2 and "usage: python -m mlsd.numeric" in bad.stderr


# --- every path that executes a chapter runs its kernel under the configuration --------------------


def probe_with(manager: KernelManager, **start) -> dict:
    manager.start_kernel(stderr=subprocess.DEVNULL, **start)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        return numeric.probe_kernel(client)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


@needs_cover
def test_make_exports_the_configuration_to_every_recipe():
    """`make test`, `outputs`, `bench`, `student` and `lab` share the Makefile's exports."""
    shown = subprocess.run(["make", "-s", "--no-print-directory", "--eval", "show-env: ; @env", "show-env"],
                           cwd=ROOT, env=without_configuration(), capture_output=True, text=True, check=True)
    environ = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
    assert numeric.not_in_force(environ) == []


@needs_cover
def test_nbvals_kernel_runs_under_it():
    """`make test`: nbval starts the current environment's kernel, which inherits the exports."""
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

    manager = KernelManager(kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager())
    assert probe_with(manager) == numeric.EXPECTED


@needs_cover
def test_make_outputs_and_bench_kernels_run_under_it(tmp_path):
    """`make outputs` and `make bench` execute chapters with nbclient (tools/notebooks.py)."""
    from notebooks import execute

    path = tmp_path / "probe.ipynb"
    code = "import json\nfrom mlsd import numeric\nprint(json.dumps(numeric.probe()))"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), path)
    nb, _ = execute(path)
    assert json.loads(nb.cells[0].outputs[0]["text"]) == numeric.EXPECTED


@needs_cover
def test_the_environments_own_kernel_runs_under_it_however_jupyter_is_started():
    """A learner's `.venv/bin/jupyter lab` (or an editor using .venv's kernel), without `make lab`."""
    kernels = os.path.join(sys.prefix, "share", "jupyter", "kernels")
    spec = KernelSpecManager(kernel_dirs=[kernels], ensure_native_kernel=False).get_kernel_spec("python3")
    assert spec.env == numeric.environment(), "run `make setup`: it writes the configuration into .venv's kernel"
    manager = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[kernels]))
    assert probe_with(manager, env=without_configuration()) == numeric.EXPECTED


@needs_cover
def test_binders_start_script_runs_the_server_and_its_kernels_under_it():
    """repo2docker runs `start` before the server it starts (with its kernels) on Binder."""
    script = (
        "from jupyter_client import KernelManager\n"
        "from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager\n"
        "import json, subprocess, sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from test_numeric import probe_with\n"
        "m = KernelManager(kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager())\n"
        "print(json.dumps(probe_with(m)))\n"
    )
    run = subprocess.run([str(ROOT / "start"), sys.executable, "-c", script], cwd=ROOT,
                         env=without_configuration(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == numeric.EXPECTED


@needs_cover
def test_a_kernel_on_other_simd_kernels_is_seen_as_such():
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

    manager = KernelManager(kernel_name=CURRENT_ENV_KERNEL_NAME, kernel_spec_manager=NbvalKernelspecManager())
    state = probe_with(manager, env={**os.environ, **OTHER_SIMD})
    assert numeric.mismatches(state) == [
        "numpy's SIMD dispatch: 'mixed: baseline(X86_V2)', expected 'X86_V3'",
        "faiss SIMD level: 'NONE', expected 'AVX2'",
    ]


# --- the guard, and the comparison it protects -----------------------------------------------------


def pytest_run(*args, env=None, timeout=300):
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@needs_cover
def test_the_guard_stops_a_notebook_run_on_other_simd_kernels_with_one_message():
    run = pytest_run(*NBVAL, "chapters/02_offline_metrics.ipynb", env={**os.environ, **OTHER_SIMD})
    output = run.stdout + run.stderr
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "the book's numeric configuration is not in force, so no stored output is compared" in output
    assert "NPY_DISABLE_CPU_FEATURES is 'X86_V3'" in output and "FAISS_SIMD_LEVEL is 'NONE'" in output
    assert "Run `make test`" in output
    assert "Cell" not in output and "passed" not in output and "failed" not in output  # nothing ran


@needs_cover
def test_make_outputs_stores_nothing_computed_on_other_simd_kernels(tmp_path):
    copy = tmp_path / "chapter.ipynb"
    copy.write_bytes((ROOT / "chapters" / "02_offline_metrics.ipynb").read_bytes())
    before = copy.read_bytes()
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "notebooks.py"), str(copy)], cwd=ROOT,
                         env={**os.environ, **OTHER_SIMD}, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "Outputs are stored only under the book's numeric configuration" in run.stderr
    assert "NPY_DISABLE_CPU_FEATURES is 'X86_V3'" in run.stderr and "Run `make outputs`" in run.stderr
    assert copy.read_bytes() == before


@needs_cover
def test_a_changed_digit_in_one_stored_output_fails(tmp_path):
    """Strict nbval has teeth: one digit changed in one stored result, and that cell fails."""
    chapter = ROOT / "chapters" / "02_offline_metrics.ipynb"
    (tmp_path / "chapters").mkdir()
    (tmp_path / "data").symlink_to(ROOT / "data")
    nb = nbformat.read(chapter, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code"
                for o in c.get("outputs", []) if re.search(r"\d\.\d{4}", o.get("data", {}).get("text/plain", "")))
    result = next(o for o in cell.outputs if "text/plain" in o.get("data", {}))
    text = result["data"]["text/plain"]
    digit = re.search(r"\d\.\d{3}(\d)", text)
    changed = text[: digit.start(1)] + str((int(digit.group(1)) + 1) % 10) + text[digit.end(1):]
    result["data"]["text/plain"] = changed
    copy = tmp_path / "chapters" / chapter.name
    nbformat.write(nb, copy)

    run = pytest_run(*NBVAL, str(copy), "--rootdir", str(tmp_path))
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.stdout[-2000:]
    assert "1 failed" in run.stdout, run.stdout[-2000:]
    assert changed.splitlines()[0][:40] in run.stdout or digit.group(0) in run.stdout


def test_headline_mode_runs_a_notebook_on_other_kernels_and_says_why(tmp_path):
    """Where the configuration cannot hold, notebooks still run and headlines are checked."""
    env = {**without_configuration(), **OTHER_SIMD, "OPENBLAS_CORETYPE": "Sandybridge", "MLSD_NUMERIC": "headlines"}
    run = pytest_run(*NBVAL, "tests/test_portable.py", "chapters", "-k", "01_framework", env=env)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "1 passed" in run.stdout  # the headline test; nbval collected nothing
    assert "comparing every stored output needs Linux on x86-64 with AVX2" in output


def test_the_readme_quotes_the_configuration_as_defined():
    readme = (ROOT / "README.md").read_text()
    for name, value in numeric.CONFIGURATION.items():
        assert f"`{name}={value}`" in readme, f"README.md should quote {name}={value} (mlsd/numeric.py)"
