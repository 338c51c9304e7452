"""The kernel cache: generated modules keyed by a hash of their source (and the versions that
compile it), written atomically as importable files; Numba's own cache=True then keeps the
machine code beside them, so a new process loads kernels without compiling.

Faults never crash a compile nor load a wrong kernel; each gives one UserWarning naming the
problem and the path:
- a module file whose text is not the expected source (truncated, corrupted, planted by another
  version) is rewritten atomically and its Numba index/data files are dropped; the module is
  always executed from the expected source text, never from the file or a stale .pyc;
- an unreadable Numba index or data file (.nbi/.nbc) is deleted and the kernel recompiled (Numba
  then rewrites it atomically);
- a cache directory that cannot be created or written falls back to a per-process temporary
  directory (removed at exit); if even that fails, kernels are compiled in memory.
"""
import atexit
import hashlib
import os
import shutil
import sys
import tempfile
import threading
import types
import warnings
from pathlib import Path

_lock = threading.RLock()
_loaded = {}
_warned = set()
_fallback = {}            # unusable directory -> per-process temporary directory
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


def _warn(key, message):
    if key not in _warned:
        _warned.add(key)
        warnings.warn(f"jitgrad kernel cache: {message}", UserWarning, stacklevel=4)


def _temporary_directory():
    directory = tempfile.mkdtemp(prefix="jitgrad-kernels-")
    atexit.register(shutil.rmtree, directory, True)
    return Path(directory)


def _writable_directory(directory):
    """`directory`, created if needed, or a per-process temporary one if it is unusable."""
    if directory in _fallback:
        return _fallback[directory]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if not directory.is_dir():
            raise NotADirectoryError(f"not a directory: {directory}")
        probe = tempfile.TemporaryFile(dir=directory)   # mkdir succeeds on read-only parents
        probe.close()
        return directory
    except OSError as error:
        replacement = _temporary_directory()
        _fallback[directory] = replacement
        _warn(("dir", str(directory)), f"cannot use the cache directory {directory} "
              f"({type(error).__name__}: {error}); compiling into the temporary directory "
              f"{replacement} for this process")
        return replacement


def _drop_numba_files(directory, name):
    for stale in (directory / "__pycache__").glob(f"{name}.*"):
        try:
            stale.unlink()
        except OSError:
            pass


def _write_atomically(directory, path, source):
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(source)
        os.replace(tmp, path)   # atomic: readers see the old file or the whole new one
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _place_source(directory, name, source):
    """Make `directory/name.py` hold exactly `source`; return its path (or None if it can't)."""
    path = directory / f"{name}.py"
    try:
        current = path.read_bytes() if path.exists() else None
    except OSError:
        current = b""
    if current == source.encode():
        return path
    try:
        if current is not None:
            _drop_numba_files(directory, name)   # their stamps and code belong to other text
        _write_atomically(directory, path, source)
    except OSError as error:
        _warn(("write", str(path)), f"cannot write the kernel module {path} "
              f"({type(error).__name__}: {error}); compiling it in memory")
        return None
    if current is not None:
        _warn(("stale", str(path)), f"the cached kernel module {path} was corrupted or written "
              "by another version; rebuilt it")
    STATS["compiled_modules"] += 1
    return path


def _guard_numba_cache(dispatcher):
    """Make an unreadable Numba index/data file a recompile (files deleted), not a crash."""
    numba_cache = getattr(dispatcher, "_cache", None)
    load = getattr(numba_cache, "load_overload", None)
    save = getattr(numba_cache, "save_overload", None)
    if load is None or save is None:
        return

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except Exception as error:  # noqa: BLE001 - any unreadable entry means: rebuild it
            files = numba_cache._cache_file
            folder = Path(files._index_path).parent
            base = files._index_name[:-len(".nbi")]
            for stale in folder.glob(f"{base}.*"):
                try:
                    stale.unlink()
                except OSError:
                    pass
            _warn(("numba", files._index_path), "unreadable Numba cache entry "
                  f"{files._index_path} ({type(error).__name__}); deleted it and recompiling")
            return None

    def save_overload(sig, data):
        try:
            save(sig, data)
        except Exception as error:  # noqa: BLE001 - the kernel works, it is just not kept
            _warn(("numba-save", repr(dispatcher)), "cannot save the compiled kernel to the "
                  f"Numba cache in {numba_cache.cache_path} ({type(error).__name__}: {error})")

    numba_cache.load_overload = load_overload
    numba_cache.save_overload = save_overload


def _execute(name, source, path):
    """Run `source` as module `name` (file-backed when `path`, else in memory)."""
    module = types.ModuleType(name)
    if path is None:
        # No usable file: Numba's cache=True needs one, so compile without it.
        source = source.replace("cache=True", "cache=False")
        filename = f"<jitgrad kernels {name}>"
    else:
        filename = str(path)
        module.__file__ = filename
    sys.modules[name] = module
    try:
        # The expected text, never the file's (which may have changed) nor a stale .pyc.
        exec(compile(source, filename, "exec"), module.__dict__)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    import numba.core.registry
    kinds = (numba.core.registry.CPUDispatcher,)
    cuda_dispatcher = sys.modules.get("numba.cuda.dispatcher")   # loaded by CUDA modules only
    if cuda_dispatcher is not None:
        kinds += (cuda_dispatcher.CUDADispatcher,)
    for value in list(module.__dict__.values()):
        if isinstance(value, kinds):
            _guard_numba_cache(value)
    return module


def load_module(source, target="cpu"):
    """Import (writing it first if needed) the module with this source; return it."""
    digest = hashlib.sha256(f"{target}|{_versions()}|{source}".encode()).hexdigest()[:20]
    name = f"jitgrad_kernels_{digest}"
    with _lock:
        module = _loaded.get(name)
        if module is not None:
            STATS["hits"] += 1
            return module
        directory = _writable_directory(cache_dir() / "kernels")
        path = _place_source(directory, name, source)
        if path is None and directory not in _fallback.values():
            directory = _fallback.setdefault(directory, _temporary_directory())
            path = _place_source(directory, name, source)
        try:
            module = _execute(name, source, path)
        except Exception as error:  # noqa: BLE001 - e.g. Numba finds no writable cache locator
            if path is None:
                raise
            _warn(("exec", str(path)), f"cannot load the kernel module {path} with Numba's "
                  f"cache ({type(error).__name__}: {error}); compiling it in memory")
            module = _execute(name, source, None)
        _loaded[name] = module
        return module


def cache_info():
    directory = cache_dir() / "kernels"
    files = list(directory.glob("jitgrad_kernels_*.py")) if directory.is_dir() else []
    size = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) \
        if directory.is_dir() else 0
    return {"directory": str(directory), "kernel_modules": len(files), "bytes": size,
            "loaded_this_process": len(_loaded), **STATS}


def clear_cache():
    directory = cache_dir() / "kernels"
    with _lock:
        if directory.is_dir():
            shutil.rmtree(directory)
        _loaded.clear()
