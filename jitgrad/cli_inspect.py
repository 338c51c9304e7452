"""The `jitgrad dump`, `jitgrad explain` and `jitgrad cache` commands.

A target is `SCRIPT.py` or `SCRIPT.py:FUNCTION`. With a function, the script is imported (its
`if __name__ == "__main__":` block does not run) and the function is called with the arguments
that `FUNCTION_inputs()` or else `example_inputs()` in the same script returns (no arguments
when it defines neither).
"""
import importlib.util
import os
import runpy
import sys


def _load(target):
    script, _, function = target.partition(":")
    if not os.path.isfile(script):
        raise SystemExit(f"jitgrad: no such script: {script}")
    if not function:
        return script, None, None, ()
    directory = os.path.dirname(os.path.abspath(script))
    sys.path.insert(0, directory)
    name = os.path.splitext(os.path.basename(script))[0]
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    if not hasattr(module, function):
        raise SystemExit(f"jitgrad: {script} has no function {function!r}")
    make_inputs = getattr(module, f"{function}_inputs", None) or \
        getattr(module, "example_inputs", None)
    args = tuple(make_inputs()) if make_inputs is not None else ()
    return script, module, getattr(module, function), args


def dump_command(args):
    import jitgrad
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    os.environ["JITGRAD_DUMP"] = out
    script, module, function, inputs = _load(args.target)
    written = []
    if function is None:
        runpy.run_path(script, run_name="__main__")
    else:
        from compiler import CompiledFunction
        compiled = function if isinstance(function, CompiledFunction) else \
            jitgrad.compile(function)
        result = compiled(*inputs)
        for stage in ("captured", "joint", "forward", "backward", "fused"):
            if not compiled.variants or args.format == "text":
                break   # JITGRAD_DUMP already wrote the text stages and the kernel source
            path = os.path.join(out, f"{compiled.__name__}.{stage}.{_ext(args.format)}")
            with open(path, "w") as handle:
                handle.write(jitgrad.dump(compiled, format=args.format, stage=stage) + "\n")
            written.append(path)
        eager = function.fn if isinstance(function, CompiledFunction) else function
        value = eager(*inputs)
        if isinstance(value, jitgrad.Tensor) and value.grad_fn is not None:
            path = os.path.join(out, f"{compiled.__name__}.eager.{_ext(args.format)}")
            with open(path, "w") as handle:
                handle.write(jitgrad.dump(value, format=args.format) + "\n")
            written.append(path)
        for kind, text in compiled.events:
            print(f"{kind}: {text}")
        del result
    written += sorted(os.path.join(out, f) for f in os.listdir(out)
                      if os.path.join(out, f) not in written)
    print(f"wrote {len(written)} file(s) to {out}:")
    for path in written:
        print(f"  {os.path.basename(path)}")
    return 0


def _ext(fmt):
    return {"text": "txt", "dot": "dot", "json": "json"}[fmt]


def explain_command(args):
    import jitgrad
    script, module, function, inputs = _load(args.target)
    if function is None:
        raise SystemExit("jitgrad explain needs SCRIPT.py:FUNCTION")
    print(jitgrad.explain(function, *inputs))
    return 0


def cache_command(args):
    import jitgrad
    if args.action == "clear":
        info = jitgrad.cache_info()
        jitgrad.clear_cache()
        print(f"removed {info['kernel_modules']} kernel module(s) from {info['directory']}")
    else:
        info = jitgrad.cache_info()
        print(f"kernel cache: {info['directory']}")
        print(f"  {info['kernel_modules']} kernel module(s), {info['bytes'] / 1024:.1f} KiB "
              "(sources and Numba machine code)")
        print("  set JITGRAD_CACHE_DIR to move it; `jitgrad cache clear` empties it")
    return 0


def add_commands(commands):
    dump = commands.add_parser(
        "dump", help="run a script or function and write its graphs (every compile stage, "
                     "the eager autograd graph, the generated kernels)",
        description="Write graph dumps. SCRIPT.py runs the script with JITGRAD_DUMP set, so "
                    "every jitgrad.compile'd function in it writes one file per stage plus "
                    "its kernel source. SCRIPT.py:FUNCTION compiles and calls FUNCTION with "
                    "the arguments FUNCTION_inputs() or example_inputs() returns.")
    dump.add_argument("target", metavar="SCRIPT.py[:FUNCTION]")
    dump.add_argument("--out", default="jitgrad_dump", help="output directory "
                                                            "(default ./jitgrad_dump)")
    dump.add_argument("--format", choices=("text", "dot", "json"), default="text",
                      help="text (like code), dot (Graphviz) or json (networkx node-link)")
    dump.set_defaults(run=dump_command)
    explain = commands.add_parser(
        "explain", help="compile a function and explain its kernels, saved values, "
                        "refusals to fuse, graph breaks and recompilations",
        description="Compile and call FUNCTION from SCRIPT.py (with the arguments "
                    "FUNCTION_inputs() or example_inputs() returns) and print the report.")
    explain.add_argument("target", metavar="SCRIPT.py:FUNCTION")
    explain.set_defaults(run=explain_command)
    cache = commands.add_parser("cache", help="show or clear the compiled-kernel cache")
    cache.add_argument("action", choices=("info", "clear"))
    cache.set_defaults(run=cache_command)
