"""gradcheck: compare autograd's Jacobian with central finite differences."""
import warnings

import numpy as np

from ..cuda import host_only
from ..tensor import Tensor
from .engine import grad as _grad
from .grad_mode import no_grad


class GradcheckError(RuntimeError):
    """Raised by gradcheck when the analytical and numerical Jacobians disagree."""


def _outputs(func, inputs):
    out = func(*inputs)
    return (out,) if isinstance(out, Tensor) else tuple(o for o in out if isinstance(o, Tensor))


def _numerical(func, inputs, index, eps):
    x = inputs[index]
    flat = x._data.reshape(-1)
    columns = []
    with no_grad():
        for k in range(flat.size):
            orig = flat[k].item()
            flat[k] = orig + eps
            plus = [o._data.astype(np.float64).reshape(-1) for o in _outputs(func, inputs)]
            flat[k] = orig - eps
            minus = [o._data.astype(np.float64).reshape(-1) for o in _outputs(func, inputs)]
            flat[k] = orig
            columns.append([(p - m) / (2 * eps) for p, m in zip(plus, minus)])
    # one (out_numel, in_numel) matrix per output
    return [np.stack([c[o] for c in columns], axis=1) if columns else None
            for o in range(len(columns[0]) if columns else 0)]


def _analytical(outputs, inputs, index):
    x = inputs[index]
    result = []
    for out in outputs:
        flat = out.reshape(-1)
        rows = []
        for j in range(flat.numel()):
            (g,) = _grad(flat[j], (x,), retain_graph=True, allow_unused=True)
            rows.append(np.zeros(x._data.size) if g is None else
                        g._data.astype(np.float64).reshape(-1))
        result.append(np.stack(rows) if rows else np.zeros((0, x._data.size)))
    return result


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True,
              nondet_tol=0.0, check_undefined_grad=True, check_grad_dtypes=False,
              check_batched_grad=False, check_batched_forward_grad=False,
              check_forward_ad=False, check_backward_ad=True, fast_mode=False, masked=None):
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    for x in inputs:
        if isinstance(x, Tensor):
            host_only(x, "gradcheck")   # its finite differences perturb the input on the host
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x._requires_grad and x._data.dtype != np.float64:
            warnings.warn(f"Input #{i} requires gradient and is not a double precision floating "
                          "point or complex. This check will likely fail if all the inputs are "
                          "not of double precision floating point or complex. ", UserWarning)
    outputs = _outputs(func, inputs)
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x._requires_grad):
            continue
        analytical = _analytical(outputs, inputs, i)
        numerical = _numerical(func, inputs, i, eps)
        for o, (a, n) in enumerate(zip(analytical, numerical)):
            if not np.allclose(a, n, rtol=rtol, atol=atol):
                if not raise_exception:
                    return False
                raise GradcheckError(
                    f"Jacobian mismatch for output {o} with respect to input {i},\n"
                    f"numerical:{Tensor._make(n.T.copy())!r}\n"
                    f"analytical:{Tensor._make(a.T.copy())!r}\n")
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3,
                  raise_exception=True, **kwargs):
    """gradcheck of the function's gradient (second derivatives)."""
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    diff_inputs = [x for x in inputs if isinstance(x, Tensor) and x._requires_grad]

    def first_grads(*xs):
        outs = _outputs(func, xs)
        seeds = grad_outputs or tuple(Tensor._make(np.ones_like(o._data)) for o in outs)
        grads = _grad(outs, [x for x in xs if isinstance(x, Tensor) and x._requires_grad],
                      seeds, create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    if not diff_inputs:
        return True
    return gradcheck(first_grads, inputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
