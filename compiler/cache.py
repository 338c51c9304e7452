"""The kernel cache: generated modules keyed by a hash of their source (and the versions that
compile it), written atomically as importable files; Numba's own cache=True then keeps the
machine code beside them, so a new process loads kernels without compiling."""
import hashlib
import importlib
import os
import sys
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()
_loaded = {}
STATS = {"hits": 0, "compiled_modules": 0}


def cache_dir():
    root = os.environ.get("JITGRAD_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "jitgrad"


def _versions():
    import numba
    import numpy
    import jitgrad
    helpers = Path(__file__).with_name("codegen") / "scalar.py"
    return "|".join([numba.__version__, numpy.__version__, jitgrad.__version__,
                     hashlib.sha256(helpers.read_bytes()).hexdigest()[:12]])


def load_module(source, target="cpu"):
    """Import (writing it first if needed) the module with this source; return it."""
    digest = hashlib.sha256(f"{target}|{_versions()}|{source}".encode()).hexdigest()[:20]
    name = f"jitgrad_kernels_{digest}"
    with _lock:
        module = _loaded.get(name)
        if module is not None:
            STATS["hits"] += 1
            return module
        directory = cache_dir() / "kernels"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.py"
        if not path.exists() or path.read_text() != source:
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "w") as handle:
                handle.write(source)
            os.replace(tmp, path)   # atomic: readers see the old file or the whole new one
            STATS["compiled_modules"] += 1
        if str(directory) not in sys.path:
            sys.path.insert(0, str(directory))
        importlib.invalidate_caches()
        module = importlib.import_module(name)
        _loaded[name] = module
        return module


def cache_info():
    directory = cache_dir() / "kernels"
    files = list(directory.glob("jitgrad_kernels_*.py")) if directory.exists() else []
    size = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) \
        if directory.exists() else 0
    return {"directory": str(directory), "kernel_modules": len(files), "bytes": size,
            "loaded_this_process": len(_loaded), **STATS}


def clear_cache():
    import shutil
    directory = cache_dir() / "kernels"
    with _lock:
        if directory.exists():
            shutil.rmtree(directory)
        _loaded.clear()
