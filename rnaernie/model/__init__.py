"""The model layer: configuration, encoder, task heads, the kernel dispatch, loading and saving.

Imports only the native wrappers below it (vocabulary, tokenizer, masking) and torch; the Triton
kernels are reached through :mod:`rnaernie.model.dispatch` only.
"""

from __future__ import annotations

from .config import RnaErnieConfig
from .encoder import RnaErnieModel, RnaErnieModelOutput
from .heads import (
    RnaErnieForContactPrediction,
    RnaErnieForInteraction,
    RnaErnieForMaskedLM,
    RnaErnieForPreTraining,
    RnaErnieForSequenceClassification,
    RnaErnieForTokenClassification,
)
from .pretrained import MODEL_NAMES, RnaErniePreTrainedModel, quantize_int8, resolve_model_dir

__all__ = [
    "MODEL_NAMES",
    "RnaErnieConfig",
    "RnaErnieForContactPrediction",
    "RnaErnieForInteraction",
    "RnaErnieForMaskedLM",
    "RnaErnieForPreTraining",
    "RnaErnieForSequenceClassification",
    "RnaErnieForTokenClassification",
    "RnaErnieModel",
    "RnaErnieModelOutput",
    "RnaErniePreTrainedModel",
    "quantize_int8",
    "resolve_model_dir",
]
