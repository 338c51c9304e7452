"""PyTorch-worded error messages shared by several modules."""
from . import dtypes

BACKWARD_TWICE = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed when "
    "you call .backward() or autograd.grad(). Specify retain_graph=True if you need to backward "
    "through the graph a second time or if you need to access saved tensors after calling "
    "backward.")

LEAF_INPLACE = "a leaf Variable that requires grad is being used in an in-place operation."
VIEW_OF_LEAF_INPLACE = ("a view of a leaf Variable that requires grad is being used in an "
                        "in-place operation.")
_NO_GRAD_VIEW_ADVICE = (
    " with grad mode enabled. Given that this use case is ambiguous and error-prone, it is "
    "forbidden. You can clarify your code by moving both the view and the inplace either both "
    "inside the no_grad block (if you don't want the inplace to be tracked) or both outside (if "
    "you want the inplace to be tracked).")
NO_GRAD_VIEW_INPLACE = ("A view was created in no_grad mode and is being modified inplace"
                        + _NO_GRAD_VIEW_ADVICE)
NO_GRAD_VIEW_BASE_MODIFIED = ("A view was created in no_grad mode and its base or another view "
                              "of its base has been modified inplace" + _NO_GRAD_VIEW_ADVICE)


def no_grad_view_of_view_inplace(op):
    return (f"Output 0 of {op} is a view of a view which was created in no_grad mode and is "
            "being modified inplace" + _NO_GRAD_VIEW_ADVICE)


NONLEAF_REQUIRES_GRAD = (
    "you can only change requires_grad flags of leaf variables. If you want to use a computed "
    "variable in a subgraph that doesn't require differentiation use var_no_grad = var.detach().")


def size_str(shape):
    return "[" + ", ".join(str(s) for s in shape) + "]"


def torch_size(shape):
    return "torch.Size([" + ", ".join(str(s) for s in shape) + "])"


def tensor_desc(array):
    """PyTorch's short tensor description: 'torch.FloatTensor [3, 2]' ('torch.cuda.FloatTensor
    [3, 2]' on the device)."""
    name = dtypes.LEGACY_NAMES.get(dtypes.from_numpy_dtype(array.dtype).name, "Tensor")
    where = "" if type(array).__module__ == "numpy" else "cuda."
    return f"torch.{where}{name} {size_str(array.shape)}"


def device_mismatch(op, first, other, arg_index, ndims):
    """PyTorch's error for tensors of one op on two devices. A 2-D matmul is checked by the
    mm kernel's wrapper, which names the argument; elementwise ops and reductions
    (TensorIterator) name the two devices in argument order."""
    if op == "matmul" and ndims == (2, 2):
        name = ("self", "mat2")[arg_index]
        return (f"Expected all tensors to be on the same device, but got {name} is on {other}, "
                f"different from other tensors on {first} (when checking argument in method "
                "wrapper_CUDA_mm)")
    return (f"Expected all tensors to be on the same device, but found at least two devices, "
            f"{first} and {other}!")


def scalar_type_name(np_dtype):
    return dtypes.SCALAR_TYPE_NAMES[dtypes.from_numpy_dtype(np_dtype).name]
