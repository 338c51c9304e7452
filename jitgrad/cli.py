"""The `jitgrad` command (also `python -m jitgrad`)."""
import argparse
import sys


def _demo(args):
    from .demo import main
    _, last, error = main(steps=args.steps)
    return 0 if error < 1e-5 else 1


def _bench(args):
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    if not (root / "benchmarks" / "suite.py").is_file():
        print("jitgrad bench runs benchmarks/suite.py of a source checkout (pip install -e .); "
              f"there is none next to this jitgrad ({root})", file=sys.stderr)
        return 2
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks.suite import run
    return run(args)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="jitgrad",
        description="jitgrad: PyTorch's autograd on NumPy, compiled to fused Numba kernels.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="fit a small model by gradient descent; check gradients against finite "
                     "differences")
    demo.add_argument("--steps", type=int, default=300, help="gradient steps (default 300)")
    demo.set_defaults(run=_demo)
    bench = commands.add_parser(
        "bench", help="benchmark fused kernels: jitgrad eager and compiled vs NumPy by hand, "
                      "PyTorch (eager, torch.compile) and JAX, results checked",
        description="Run the fused-kernel benchmark suite (benchmarks/suite.py): five workloads "
                    "(W1 elementwise chain, W2 MLP step, W3 layer norm + softmax, W4 200 small "
                    "ops, W5 Lennard-Jones forces), each forward + backward on every installed "
                    "peer, every result checked against a float64 reference.")
    bench.add_argument("--quick", action="store_true",
                       help="smaller sizes, fewer repeats: about a minute on 2 cores")
    bench.add_argument("--workload", metavar="W1,W3",
                       help="comma-separated workloads to run (default: all)")
    bench.add_argument("--repeats", type=int, help="timed steps per peer (default: per workload)")
    bench.add_argument("--size", choices=("tiny", "quick", "full"),
                       help="problem sizes (default: full, or quick with --quick)")
    bench.add_argument("--json", metavar="PATH",
                       help="results file (default: benchmarks/results/latest.json)")
    bench.add_argument("--threads", type=int, default=2,
                       help="threads for every peer (BLAS, OpenMP, Numba, torch; the run is "
                            "pinned to that many CPUs) (default 2)")
    bench.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                       help="where the autograd peers run: cpu, or cuda (jitgrad and torch "
                            "tensors on the GPU, matmul through cuBLAS when CuPy is installed; "
                            "the bound is a device-to-device copy)")
    bench.add_argument("--cache-dir", metavar="DIR",
                       help="jitgrad kernel cache to use and keep (default: a fresh temporary "
                            "one, so the cold first call really compiles)")
    bench.set_defaults(run=_bench)
    from .cli_inspect import add_commands
    add_commands(commands)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
