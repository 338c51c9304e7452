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
