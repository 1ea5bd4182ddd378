"""rnaernie: a fast RNA language model (RNAErnie) with a C++ core and Triton kernels."""

from __future__ import annotations

__version__ = "0.1.0"
