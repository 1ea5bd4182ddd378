"""rnaernie: a fast RNA language model (RNAErnie) with a C++ core and Triton kernels."""

from __future__ import annotations

from .motifs import MotifMatcher
from .tokenizer import Encoding, Tokenizer

__version__ = "0.1.0"

__all__ = ["Encoding", "MotifMatcher", "Tokenizer", "__version__"]
