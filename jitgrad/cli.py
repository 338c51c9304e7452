"""The `jitgrad` command (also `python -m jitgrad`)."""
import argparse
import sys


def _demo(args):
    from .demo import main
    _, last, error = main(steps=args.steps)
    return 0 if error < 1e-5 else 1


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
