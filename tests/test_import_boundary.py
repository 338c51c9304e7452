"""The import direction of the design: `import jitgrad` loads neither `compiler` nor `numba`."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_jitgrad_loads_neither_compiler_nor_numba():
    code = ("import sys, jitgrad; "
            "print(','.join(m for m in ('compiler', 'numba', 'llvmlite') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_cpu_work_and_device_objects_load_neither():
    """CPU tensors, ops and backward, device objects (even "cuda") and the jitgrad.cuda module
    never load numba.cuda, numba or the compiler: only a CUDA tensor or jitgrad.cuda's
    functions do."""
    code = ("import sys, jitgrad; x = jitgrad.ones(3, requires_grad=True); "
            "(x.exp() * 2).sum().backward(); x.to('cpu'); x.cpu(); jitgrad.device('cuda:0'); "
            "jitgrad.zeros(2, device='cpu'); repr(x); "
            "print(','.join(m for m in ('compiler', 'numba', 'llvmlite') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_jitgrad_package_has_no_compiler_imports():
    # A static check too, so a lazy import cannot turn eager by accident.
    offenders = []
    for path in (ROOT / "jitgrad").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import numba", "from numba", "import compiler",
                                    "from compiler")) and not line.startswith((" ", "\t")):
                offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert offenders == []


def test_cuda_is_an_optional_extra():
    """Real GPUs need numba-cuda (and the NumPy it supports): the `cuda` extra, never a base
    dependency, so `import jitgrad` and the CPU backend install without it."""
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["cuda"]
    assert any(d.startswith("numba-cuda") for d in extra)
    assert any(d.replace(" ", "").startswith("numpy<2.5") for d in extra)
    assert not any(d.startswith("numba-cuda") for d in project["dependencies"])
