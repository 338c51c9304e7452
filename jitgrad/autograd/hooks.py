"""Removable hook handles, shared by tensor hooks and node hooks."""
import itertools

_ids = itertools.count()


class RemovableHandle:
    """Returned by `register_hook`; `.remove()` unregisters the hook (idempotent)."""

    def __init__(self, hooks_dict, hook):
        self.id = next(_ids)
        self.hooks_dict = hooks_dict
        hooks_dict[self.id] = hook

    def remove(self):
        self.hooks_dict.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
