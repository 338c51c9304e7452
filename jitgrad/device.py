"""Devices: the CPU, and CUDA device 0 (tensors there hold numba device arrays; see
jitgrad/cuda.py, which loads numba.cuda only when a CUDA device is used)."""


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
CUDA = device("cuda", 0)


def check_device(value):
    """None (the CPU) or a device spelling ("cpu", "cuda", "cuda:0", a device) as the device a
    tensor lives on: "cuda" means cuda:0. A CUDA device must be available (numba.cuda sees a
    GPU, or Numba's CUDA simulator is on); only device 0 is supported."""
    if value is None:
        return CPU
    if isinstance(value, int) and not isinstance(value, bool):
        value = device("cuda", value)   # matches torch: an int is a CUDA device index
    d = device(value) if not isinstance(value, device) else value
    if d.type == "cpu":
        return CPU
    from . import cuda
    cuda.require(d.index or 0)
    return CUDA
