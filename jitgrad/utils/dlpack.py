"""torch.utils.dlpack's names: a tensor from a DLPack object or capsule, and a tensor's capsule."""
from ..creation import from_dlpack  # noqa: F401


def to_dlpack(tensor):
    """The tensor's memory as a DLPack capsule (shared; consumed once by its importer)."""
    return tensor.__dlpack__()
