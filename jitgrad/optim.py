"""jitgrad.optim: SGD and Adam with PyTorch's update rules (one in-place update, one version
bump, per parameter per step).

The update arithmetic runs on the parameters' arrays: NumPy arrays for CPU parameters, and for
CUDA parameters detached tensors (so each operator is a device kernel), written back into the
parameter's memory on the device. The helpers below are the few operations that are spelled
differently for the two."""
import math

import numpy as np

from .tensor import Tensor


def _value(p):
    return p._data if type(p._data) is np.ndarray else p.detach()


def _grad(p):
    return p._grad._data if type(p._data) is np.ndarray else p._grad.detach()


def _clone(v):
    return np.array(v, copy=True) if type(v) is np.ndarray else v.clone()


def _zeros_like(v):
    return np.zeros_like(v) if type(v) is np.ndarray else v.new_zeros(v.shape)


def _sqrt(v):
    return np.sqrt(v) if type(v) is np.ndarray else v.sqrt()


def _maximum_into(out, v):
    if type(out) is np.ndarray:
        np.maximum(out, v, out=out)
    else:
        out.copy_(out.maximum(v))


class Optimizer:
    def __init__(self, params, defaults):
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        self.defaults = defaults
        self.param_groups = []
        for group in params:
            group = dict(group)
            group["params"] = list(group["params"])
            for key, value in defaults.items():
                group.setdefault(key, value)
            self.param_groups.append(group)
        self.state = {}

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if p._grad is None:
                    continue
                if set_to_none:
                    p._grad = None
                else:
                    p._grad = p._grad.detach()
                    p._grad.zero_()

    def _params_with_grad(self):
        """(group, parameter, gradient) with PyTorch's maximize and weight_decay applied."""
        for group in self.param_groups:
            for p in group["params"]:
                if p._grad is None:
                    continue
                grad = _grad(p)
                grad = -grad if group["maximize"] else grad
                if group["weight_decay"]:
                    grad = grad + group["weight_decay"] * _value(p)
                yield group, p, grad

    @staticmethod
    def _write(p, value):
        if type(p._data) is np.ndarray:
            p._data[...] = value
        else:
            from .cuda import backend
            backend().write(p._data, value._data)
        p._vc[0] += 1

    def state_dict(self):
        return {"state": self.state, "param_groups": self.param_groups}


class SGD(Optimizer):
    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group, p, grad in self._params_with_grad():
            momentum = group["momentum"]
            if momentum:
                state = self.state.setdefault(id(p), {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = _clone(grad)
                else:
                    buf *= momentum
                    buf += (1 - group["dampening"]) * grad
                state["momentum_buffer"] = buf
                grad = grad + momentum * buf if group["nesterov"] else buf
            self._write(p, _value(p) - group["lr"] * grad)
        return loss


class Adam(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False):
        if lr < 0:
            raise ValueError(f"Invalid learning rate: {lr}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group, p, grad in self._params_with_grad():
            beta1, beta2 = group["betas"]
            state = self.state.setdefault(id(p), {})
            if not state:
                state["step"] = 0
                state["exp_avg"] = _zeros_like(_value(p))
                state["exp_avg_sq"] = _zeros_like(_value(p))
                if group["amsgrad"]:
                    state["max_exp_avg_sq"] = _zeros_like(_value(p))
            state["step"] += 1
            step = state["step"]
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg += (1 - beta1) * (grad - exp_avg)
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * grad * grad
            bias1 = 1 - beta1 ** step
            bias2_sqrt = math.sqrt(1 - beta2 ** step)
            second = exp_avg_sq
            if group["amsgrad"]:
                _maximum_into(state["max_exp_avg_sq"], exp_avg_sq)
                second = state["max_exp_avg_sq"]
            denom = _sqrt(second) / bias2_sqrt + group["eps"]
            self._write(p, _value(p) - (group["lr"] / bias1) * exp_avg / denom)
        return loss


__all__ = ["Optimizer", "SGD", "Adam", "Tensor"]
