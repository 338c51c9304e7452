"""Tensor: a NumPy array, a version counter shared with views and detach(), and autograd state.

Op methods (`exp`, `sum`, `__add__`, ...) are attached by the modules under `jitgrad/ops`, next
to each op's record, so that an op lives in one place.
"""
import warnings
import weakref

import numpy as np

from . import dtypes, errors


class Size(tuple):
    """PyTorch's torch.Size: a tuple of ints with a matching repr."""

    __slots__ = ()

    def __repr__(self):
        return f"jitgrad.Size([{', '.join(str(s) for s in self)}])"

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n


class Tensor:
    # Hot attributes are slots; rarely-set ones fall back to the class defaults below through
    # the lazily created instance __dict__.
    __slots__ = ("_data", "_vc", "_requires_grad", "_grad_fn", "__dict__", "__weakref__")

    _output_nr = 0
    _base = None
    _grad = None
    _view_chain = ()
    _view_version = 0
    _hooks = None
    _accumulator = None
    _retains_grad = False
    # A view made under no_grad of a tensor that requires grad (True), or a view of such a
    # view ("of_view"): PyTorch's CreationMeta.NO_GRAD_MODE.
    _no_grad_view = None

    # NumPy defers to Tensor's reflected operators: np.float64(2) * t is a Tensor.
    __array_priority__ = 1000

    def __init__(self, *args, dtype=None):
        # Legacy constructor: Tensor(list) copies data, Tensor(*sizes) is uninitialised (zeros here).
        np_dtype = dtypes.to_numpy_dtype(dtype) or dtypes.default_float()
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            data = args[0]
            if isinstance(data, Tensor):
                data = data._data
            array = np.array(data, dtype=np_dtype)
        else:
            sizes = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
            array = np.zeros(tuple(int(s) for s in sizes), dtype=np_dtype)
        self._data = array
        self._vc = [0]
        self._requires_grad = False
        self._grad_fn = None

    @staticmethod
    def _make(array):
        t = _new_tensor(Tensor)
        t._data = array
        t._vc = [0]
        t._requires_grad = False
        t._grad_fn = None
        return t

    # -- autograd state ----------------------------------------------------------------------
    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        if self._grad_fn is not None:
            raise RuntimeError(errors.NONLEAF_REQUIRES_GRAD)
        self._set_requires_grad(
            bool(flag), "only Tensors of floating point and complex dtype can require gradients")

    def _set_requires_grad(self, flag, message):
        # matches torch: each path (attribute, requires_grad_(), creation) has its own wording
        if flag and self._data.dtype.kind not in "fc":
            raise RuntimeError(message)
        self._requires_grad = flag

    def requires_grad_(self, requires_grad=True):
        if self._grad_fn is not None:
            if not requires_grad:
                raise RuntimeError(errors.NONLEAF_REQUIRES_GRAD)
            return self
        self._set_requires_grad(bool(requires_grad),
                                "only Tensors of floating point dtype can require gradients")
        return self

    @property
    def grad_fn(self):
        if self._base is not None and self._view_version != self._vc[0] and \
                self._base._requires_grad and self._requires_grad:
            # The base changed in place since this view's graph was recorded: rebuild it.
            if self._no_grad_view is True:
                raise RuntimeError(errors.NO_GRAD_VIEW_BASE_MODIFIED)
            from .dispatch import regenerate_view_grad_fn
            regenerate_view_grad_fn(self)
        return self._grad_fn

    @property
    def is_leaf(self):
        return self._grad_fn is None

    @property
    def output_nr(self):
        return self._output_nr

    @property
    def grad(self):
        if self._grad_fn is not None and not self._retains_grad:
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. "
                "Its .grad attribute won't be populated during autograd.backward(). If you "
                "indeed want the .grad field to be populated for a non-leaf Tensor, use "
                ".retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor by "
                "mistake, make sure you access the leaf Tensor instead. See "
                "github.com/pytorch/pytorch/pull/30531 for more informations.",
                UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value):
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError("assigned grad expected to be a Tensor or None but got grad of "
                                f"type {type(value).__name__}")
            if value is self:
                raise RuntimeError("can't assign Variable as its own grad")
            if type(value._data) is not type(self._data) and \
                    (type(value._data) is np.ndarray or type(self._data) is np.ndarray):
                raise RuntimeError("assigned grad has data located on a different device")
            if value._data.dtype != self._data.dtype:
                raise RuntimeError(
                    "attempting to assign a gradient with dtype "
                    f"'{_c_type_name(value._data.dtype)}' to a tensor with dtype "
                    f"'{_c_type_name(self._data.dtype)}'. Please ensure that the gradient and "
                    "the tensor have the same dtype")
            if value._data.shape != self._data.shape:
                raise RuntimeError(
                    f"attempting to assign a gradient of size '{errors.size_str(value.shape)}' "
                    f"to a tensor of size '{errors.size_str(self.shape)}'. Please ensure that "
                    "the gradient and the tensor are the same size")
        self._grad = value

    @grad.deleter
    def grad(self):
        self._grad = None

    @property
    def retains_grad(self):
        return self._retains_grad

    def retain_grad(self):
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._grad_fn is None or self._retains_grad:
            return
        from . import tracing
        tracing.notify_escape(self, "retain_grad on an intermediate tensor")
        node = self.grad_fn
        if node._retained is None:
            node._retained = {}
        node._retained[self._output_nr] = weakref.ref(self)
        node._hooked = True
        self._retains_grad = True

    def register_hook(self, hook):
        if not self._requires_grad:
            raise RuntimeError(
                "cannot register a hook on a tensor that doesn't require gradient")
        from . import tracing
        tracing.notify_escape(self, "a hook on an intermediate tensor")
        if self._grad_fn is None:
            from .autograd.hooks import RemovableHandle
            if self._hooks is None:
                self._hooks = {}
            return RemovableHandle(self._hooks, hook)
        return self.grad_fn.add_tensor_hook(self._output_nr, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        from .autograd.engine import backward
        backward((self,), None if gradient is None else (gradient,), retain_graph,
                 create_graph, inputs=inputs)

    def detach(self):
        out = Tensor._make(self._data)
        out._vc = self._vc  # matches torch: detach() shares the version counter
        return out

    def detach_(self):
        if self._base is not None:
            raise RuntimeError("Can't detach views in-place. Use detach() instead. If you are "
                               "using DistributedDataParallel (DDP) for training ...")
        self._grad_fn = None
        self._requires_grad = False
        self._output_nr = 0
        return self

    @property
    def data(self):
        out = Tensor._make(self._data)  # matches torch: .data has its own version counter
        return out

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(value).__name__}")
        self._data = value._data

    @property
    def _version(self):
        return self._vc[0]

    def _is_view(self):
        return self._base is not None

    # -- metadata ------------------------------------------------------------------------------
    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim)]

    @property
    def dtype(self):
        return dtypes.from_numpy_dtype(self._data.dtype)

    @property
    def device(self):
        from .device import CPU, CUDA
        return CPU if type(self._data) is np.ndarray else CUDA

    @property
    def is_cuda(self):
        return type(self._data) is not np.ndarray

    @property
    def is_cpu(self):
        return type(self._data) is np.ndarray

    @property
    def __cuda_array_interface__(self):
        # A CPU tensor has no such attribute (hasattr is False), as in torch.
        if type(self._data) is np.ndarray:
            raise AttributeError("'Tensor' object has no attribute '__cuda_array_interface__'"
                                 " (it is on the CPU)")
        if self._requires_grad:
            raise RuntimeError("Can't get __cuda_array_interface__ on Variable that requires "
                               "grad. If gradients aren't required, use var.detach() to get "
                               "Variable that doesn't require grad.")
        return self._data.__cuda_array_interface__

    _DLPACK_ON_CUDA = ("DLPack exchange of CUDA tensors is not supported yet; share CUDA memory "
                       "through __cuda_array_interface__ (CuPy, numba, "
                       "torch.as_tensor(t, device='cuda'))")

    def __dlpack__(self, *args, **kwargs):
        """The tensor's memory as a DLPack capsule, shared (NumPy's export; CPU tensors)."""
        if self._requires_grad:
            raise BufferError("Can't export tensors that require gradient, use "
                              "tensor.detach()")
        if type(self._data) is not np.ndarray:
            raise BufferError(self._DLPACK_ON_CUDA)
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return (1, 0) if type(self._data) is np.ndarray else (2, 0)   # kDLCPU, kDLCUDA

    def cuda(self, device=None, non_blocking=False):
        from .device import check_device
        from .dispatch import transfer
        return transfer(self, check_device("cuda" if device is None else device))

    def cpu(self):
        from .device import CPU
        from .dispatch import transfer
        return transfer(self, CPU)

    def _host(self):
        """The values as a host array (a copy for a CUDA tensor; the array itself on the CPU)."""
        if type(self._data) is np.ndarray:
            return self._data
        from .cuda import backend
        return backend().to_host(self._data)

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    ndimension = dim

    def numel(self):
        return self._data.size

    nelement = numel

    def element_size(self):
        return self._data.dtype.itemsize

    def is_floating_point(self):
        return self._data.dtype.kind == "f"

    def is_contiguous(self):
        data = self._data
        return data.flags.c_contiguous if type(data) is np.ndarray else data.is_c_contiguous()

    def stride(self, dim=None):
        strides = tuple(s // self._data.dtype.itemsize for s in self._data.strides)
        return strides if dim is None else strides[_wrap_dim(dim, self._data.ndim)]

    def data_ptr(self):
        data = self._data
        if type(data) is not np.ndarray:
            interface = getattr(data, "__cuda_array_interface__", None)
            if interface is None:     # Numba's simulator: its arrays wrap host arrays
                return data._ary.__array_interface__["data"][0]
            return interface["data"][0]
        return data.__array_interface__["data"][0]

    # -- conversion ----------------------------------------------------------------------------
    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"a Tensor with {self._data.size} elements cannot be converted "
                               "to Scalar")
        from . import tracing
        tracing.notify_escape(self, "item")
        return self._host().reshape(()).item()

    def tolist(self):
        return self._host().tolist()

    def numpy(self, *, force=False):
        from .autograd.grad_mode import ENABLED
        if type(self._data) is not np.ndarray:
            if not force:
                raise TypeError("can't convert cuda:0 device type tensor to numpy. Use "
                                "Tensor.cpu() to copy the tensor to host memory first.")
            return self._host()
        if self._requires_grad and ENABLED.get() and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        from . import tracing
        tracing.notify_escape(self, "numpy")
        return self._data

    def __array__(self, dtype=None, copy=None):
        if type(self._data) is not np.ndarray:
            self.numpy()     # matches torch: TypeError, copy to the host explicitly
        if dtype is not None and dtype != self._data.dtype:
            return self._data.astype(dtype)
        return self._data.copy() if copy else self._data

    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
        from . import tracing
        tracing.notify_escape(self, "bool")
        return bool(self._host().reshape(()))

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return int(self._host().reshape(()))

    def __hash__(self):
        return id(self)

    def __repr__(self):
        from .printing import tensor_repr
        return tensor_repr(self)

    def __format__(self, spec):
        if self._data.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __reduce_ex__(self, protocol):
        return (_rebuild, (np.array(self._host(), copy=True), self._requires_grad,
                           str(self.device)))

    def __deepcopy__(self, memo):
        data = self._data
        if type(data) is np.ndarray:
            data = data.copy()
        else:
            from .cuda import backend
            data = backend().copy(data)
        out = Tensor._make(data)
        out._requires_grad = self._requires_grad
        if self._grad is not None:
            out._grad = self._grad.__deepcopy__(memo)
        memo[id(self)] = out
        return out


_new_tensor = object.__new__


def _rebuild(array, requires_grad, device="cpu"):
    if device != "cpu":
        from .cuda import backend
        array = backend().to_device(array)
    t = Tensor._make(array)
    t._requires_grad = requires_grad
    return t


def _wrap_dim(dim, ndim):
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")
    return dim + n if dim < 0 else dim


def _c_type_name(np_dtype):
    return {"float32": "float", "float64": "double", "float16": "c10::Half", "int64": "long int",
            "int32": "int", "bool": "bool"}.get(np.dtype(np_dtype).name, np.dtype(np_dtype).name)
