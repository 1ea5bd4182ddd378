"""rnaernie: a fast RNA language model (RNAErnie) with a C++ core and Triton kernels."""

from __future__ import annotations

from .api import RnaErnie, load
from .config import RnaErnieConfig
from .heads import (
    RnaErnieForContactPrediction,
    RnaErnieForInteraction,
    RnaErnieForMaskedLM,
    RnaErnieForPreTraining,
    RnaErnieForSequenceClassification,
    RnaErnieForTokenClassification,
)
from .model import RnaErnieModel
from .motifs import MotifMatcher
from .tokenizer import Encoding, Tokenizer

__version__ = "0.1.0"

__all__ = [
    "Encoding",
    "MotifMatcher",
    "RnaErnie",
    "RnaErnieConfig",
    "RnaErnieForContactPrediction",
    "RnaErnieForInteraction",
    "RnaErnieForMaskedLM",
    "RnaErnieForPreTraining",
    "RnaErnieForSequenceClassification",
    "RnaErnieForTokenClassification",
    "RnaErnieModel",
    "Tokenizer",
    "__version__",
    "load",
]
