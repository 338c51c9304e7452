"""The tracer seam: the compiler installs a tracer here and the dispatcher reports every op to it.

jitgrad itself never creates a tracer; `compiler.capture` does. A tracer implements
`record(spec, args, attrs, result)`, `record_inplace(spec, target, args, attrs)` and
`escape(tensor, how)` (a value leaving the graph: `.item()`, `.numpy()`, `bool(t)`).
"""
import contextvars

CURRENT = contextvars.ContextVar("jitgrad_tracer", default=None)


def notify_escape(tensor, how):
    tracer = CURRENT.get()
    if tracer is not None:
        tracer.escape(tensor, how)
