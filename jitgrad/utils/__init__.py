"""jitgrad.utils, as torch.utils: `dlpack`."""
from . import dlpack  # noqa: F401
