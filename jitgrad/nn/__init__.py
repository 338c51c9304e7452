"""jitgrad.nn: the functional API, Parameter, and a small Module set for ordinary scripts."""
from . import functional  # noqa: F401
from .modules import (Module, Parameter, Linear, Sequential, ReLU, Tanh, Sigmoid,  # noqa
                      GELU, LayerNorm, MSELoss, CrossEntropyLoss)
