"""The compiler's ordered pipeline of passes; each is a pure function of the graph.

- dead_code: drop nodes no output needs.
- cse: merge nodes that apply the same op to the same arguments.
- partition: split the joint graph into a forward graph (which also outputs the saved values)
  and a backward graph that consumes them.
- fusion: group elementwise nodes over one iteration space into kernels.
"""
from .dead_code import dead_code
from .cse import cse
from .partition import partition
from .fusion import fuse

PIPELINE = (("dead_code", dead_code), ("cse", cse))

__all__ = ["PIPELINE", "dead_code", "cse", "partition", "fuse"]
