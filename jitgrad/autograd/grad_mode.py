"""Grad mode: the one per-thread switch that says whether ops record an autograd graph.

Context variables, not threading.local: each new thread starts from the defaults (grad mode on),
as PyTorch's thread-local grad mode does, and a read costs a third as much on the op path.
"""
import contextvars
import functools
import inspect

ENABLED = contextvars.ContextVar("jitgrad_grad_enabled", default=True)
INFERENCE = contextvars.ContextVar("jitgrad_inference_mode", default=False)

is_grad_enabled = ENABLED.get


def is_inference_mode_enabled():
    return INFERENCE.get()


class _DecoratorContextManager:
    """A context manager that also decorates functions and generator functions.

    Like PyTorch's, the mode is set around every resumption of a decorated generator, and
    restored when the body raises.
    """

    def __call__(self, fn):
        if inspect.isclass(fn):
            raise TypeError("grad-mode decorators apply to functions, not classes")
        if inspect.isgeneratorfunction(fn):
            return self._wrap_generator(fn)

        @functools.wraps(fn)
        def decorated(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)
        return decorated

    def _wrap_generator(self, fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            gen = fn(*args, **kwargs)
            try:
                with self.clone():
                    response = gen.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with self.clone():
                            gen.close()
                        raise
                    except BaseException as error:
                        with self.clone():
                            response = gen.throw(error)
                    else:
                        with self.clone():
                            response = gen.send(request)
            except StopIteration as stop:
                return stop.value
        return generator

    def clone(self):
        return self.__class__()


class no_grad(_DecoratorContextManager):
    """Disable gradient recording. `with no_grad():`, `@no_grad()` or `no_grad(fn)`."""

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        if fn is not None and callable(fn):
            # matches torch: no_grad(fn) decorates directly
            self.__init__()
            return self(fn)
        return self

    def __init__(self, fn=None):
        self.token = None

    def __enter__(self):
        self.token = ENABLED.set(False)

    def __exit__(self, *exc):
        ENABLED.reset(self.token)


class enable_grad(no_grad):
    """Enable gradient recording inside a no_grad region; also `@enable_grad` bare."""

    def __enter__(self):
        self.token = ENABLED.set(True)


class set_grad_enabled(_DecoratorContextManager):
    """Set grad mode: at once as a plain call, or as a context manager / decorator."""

    def __init__(self, mode):
        self.prev = ENABLED.get()
        self.mode = bool(mode)
        ENABLED.set(self.mode)   # matches torch: a plain call takes effect at once

    def __call__(self, fn):
        # Used as a decorator: the constructor already flipped the mode; undo that.
        ENABLED.set(self.prev)
        return super().__call__(fn)

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        ENABLED.set(self.prev)

    def clone(self):
        return self.__class__(self.mode)


class inference_mode(_DecoratorContextManager):
    """Like no_grad (jitgrad has no separate inference tensors); `inference_mode(False)` is a no-op."""

    def __new__(cls, mode=True):
        self = super().__new__(cls)
        if callable(mode) and not isinstance(mode, bool):
            self.__init__(True)
            return self(mode)
        return self

    def __init__(self, mode=True):
        self.mode = bool(mode)
        self.tokens = None

    def __enter__(self):
        if self.mode:
            self.tokens = (ENABLED.set(False), INFERENCE.set(True))

    def __exit__(self, *exc):
        if self.tokens is not None:
            ENABLED.reset(self.tokens[0])
            INFERENCE.reset(self.tokens[1])
            self.tokens = None

    def clone(self):
        return self.__class__(self.mode)
