"""Devices: jitgrad's eager tensors live on the CPU."""


class device:
    """PyTorch's torch.device: a type and an optional index."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            type, index = type.type, type.index
        if ":" in type:
            type, _, idx = type.partition(":")
            index = int(idx)
        if type not in ("cpu", "cuda"):
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device "
                               f"string: {type}")
        self.type = type
        self.index = index

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"


CPU = device("cpu")


def check_device(value):
    """Accept None or a CPU device; a CUDA device needs the CUDA target (not in eager jitgrad)."""
    if value is None:
        return CPU
    d = device(value) if not isinstance(value, device) else value
    if d.type != "cpu":
        raise RuntimeError("jitgrad eager tensors live on the CPU; device "
                           f"'{d}' is not available")
    return d
