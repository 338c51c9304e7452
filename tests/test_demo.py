"""`jitgrad demo` (the README's first look) fits its model and its gradients pass the check."""
import subprocess
import sys
from pathlib import Path

from jitgrad.demo import main

ROOT = Path(__file__).resolve().parents[1]


def test_demo_loss_falls_and_gradients_match_finite_differences():
    lines = []
    first, last, error = main(steps=60, print_every=20, out=lines.append)
    assert last < first / 5
    assert error < 1e-5
    assert any("finite differences" in line for line in lines)


def test_cli_help_and_demo_entry_point():
    out = subprocess.run([sys.executable, "-m", "jitgrad", "--help"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert "demo" in out.stdout
