"""autograd.functional: jacobian, hessian, vjp, jvp, hvp, vhp built on autograd.grad."""
from ..tensor import Tensor
from .engine import grad as _grad
from .grad_mode import enable_grad


def _tuple(x):
    return (x,) if isinstance(x, Tensor) else tuple(x)


def _prepare(inputs, create_graph):
    # matches torch: differentiate with respect to fresh leaves (or views when create_graph)
    if create_graph:
        return tuple(x.view_as(x) if x._requires_grad else x.detach().requires_grad_(True)
                     for x in inputs)
    return tuple(x.detach().requires_grad_(True) for x in inputs)


def _zeros_for(grads, inputs):
    from ..creation import zeros_like
    return tuple(zeros_like(x) if g is None else g for g, x in zip(grads, inputs))


def _finish(x, create_graph):
    return x if create_graph else x.detach()


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    is_tuple = not isinstance(inputs, Tensor)
    inputs = _prepare(_tuple(inputs), create_graph)
    with enable_grad():
        outputs = func(*inputs)
        outs = _tuple(outputs)
        if v is None:
            if len(outs) != 1 or outs[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the user-provided function "
                                   "returns a single Tensor with a single element.")
            vs = None
        else:
            vs = _tuple(v)
        grads = _grad(outs, inputs, vs, create_graph=create_graph, allow_unused=True)
    grads = tuple(_finish(g, create_graph) for g in _zeros_for(grads, inputs))
    outputs = tuple(_finish(o, create_graph) for o in outs)
    return (outputs if not isinstance(_unwrap_single(outputs), Tensor) or len(outputs) > 1
            else outputs[0],
            grads if is_tuple else grads[0])


def _unwrap_single(x):
    return x[0] if len(x) == 1 else x


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """Forward-mode product through two reverse passes (the double-vjp trick)."""
    from ..creation import zeros_like
    inputs = _prepare(_tuple(inputs), True)
    vs = _tuple(v) if v is not None else None
    with enable_grad():
        outputs = _tuple(func(*inputs))
        if vs is None:
            if len(inputs) != 1 or inputs[0].numel() != 1:
                raise RuntimeError("The vector v can only be None if the input to the "
                                   "user-provided function is a single Tensor with a single "
                                   "element.")
            vs = (inputs[0].detach() * 0 + 1,)
        dummies = tuple(zeros_like(o).requires_grad_(True) for o in outputs)
        grads = _grad(outputs, inputs, dummies, create_graph=True, allow_unused=True)
        pairs = [(g, x) for g, x in zip(grads, vs) if g is not None]
        if pairs:
            results = _grad([g for g, _ in pairs], dummies, [x for _, x in pairs],
                            create_graph=create_graph, allow_unused=True)
        else:
            results = (None,) * len(outputs)
    results = tuple(_finish(r, create_graph) for r in _zeros_for(results, outputs))
    outputs = tuple(_finish(o, create_graph) for o in outputs)
    single_out = len(outputs) == 1
    return (outputs[0] if single_out else outputs, results[0] if single_out else results)


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False,
             strategy="reverse-mode"):
    from ..ops.movement import stack
    is_tuple = not isinstance(inputs, Tensor)
    inputs = _prepare(_tuple(inputs), create_graph)
    with enable_grad():
        raw = func(*inputs)
        out_tuple = not isinstance(raw, Tensor)
        outputs = _tuple(raw)
        jac = []
        for out in outputs:
            flat = out.reshape(-1)
            rows = [[] for _ in inputs]
            for j in range(flat.numel()):
                grads = _grad(flat[j], inputs, retain_graph=True, create_graph=create_graph,
                              allow_unused=True)
                for i, g in enumerate(_zeros_for(grads, inputs)):
                    rows[i].append(g)
            per_input = []
            for i, x in enumerate(inputs):
                if rows[i]:
                    block = stack(rows[i]).reshape(tuple(out.shape) + tuple(x.shape))
                else:
                    from ..creation import zeros
                    block = zeros(tuple(out.shape) + tuple(x.shape), dtype=x.dtype)
                per_input.append(_finish(block, create_graph))
            jac.append(tuple(per_input))
    if not out_tuple and not is_tuple:
        return jac[0][0]
    if not out_tuple:
        return jac[0]
    if not is_tuple:
        return tuple(j[0] for j in jac)
    return tuple(jac)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    is_tuple = not isinstance(inputs, Tensor)
    inputs_t = _tuple(inputs)

    def gradient(*xs):
        out = func(*xs)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("The function given to hessian should return a single Tensor "
                               "with a single element")
        return jacobian(func, xs if is_tuple else xs[0], create_graph=True)

    return jacobian(gradient, inputs if is_tuple else inputs_t[0], create_graph=create_graph)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    is_tuple = not isinstance(inputs, Tensor)
    inputs = _prepare(_tuple(inputs), True)
    with enable_grad():
        out = func(*inputs)
        grads = _grad(out, inputs, create_graph=True, allow_unused=True)
        grads = _zeros_for(grads, inputs)
        result = _grad(grads, inputs, _tuple(v), create_graph=create_graph, allow_unused=True)
    result = tuple(_finish(r, create_graph) for r in _zeros_for(result, inputs))
    return _finish(out, create_graph), result if is_tuple else result[0]


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    # The Hessian of a scalar function is symmetric, so H v == v^T H.
    return vhp(func, inputs, v, create_graph, strict)
