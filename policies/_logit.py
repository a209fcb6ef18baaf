"""The logistic the resident rule turns a logit into a probability with, for the policies' kernels.

The same function as ``agents.residents.logistic``; policies may not import the agents (the
layers of DESIGN.md point one way), so the points-rule models' kernels take it from here.
"""
import math

from twin._jit import inline


@inline
def logistic(x):
    return 1.0 / (1.0 + math.exp(-x))
