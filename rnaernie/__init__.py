"""rnaernie: a fast RNA language model (RNAErnie) with a C++ core and Triton kernels.

The public API is :func:`load` / :class:`RnaErnie` (prediction), the model classes
(``RnaErnieModel``, ``RnaErnieFor*`` with ``from_pretrained``), and the tokenizer and motif
matcher. Layers, each importing only those before it: native wrappers (``tokenizer``, ``motifs``,
``masking``, ``kmer``, ``structure``) → ``model`` → ``predict`` / ``screen`` → ``training`` / ``evaluate`` →
``api`` → ``cli``; ``io`` (readers, writers, the sharded runner) serves the API and the CLI.
``import rnaernie`` loads no training or evaluation code.
"""

from __future__ import annotations

try:
    from . import _core  # noqa: F401  (the C++ extension, built by the install)
except ImportError as e:  # e.g. a source checkout that was never installed
    raise ImportError(
        "rnaernie's C++ extension (rnaernie._core) is not built: install the package "
        "(pip install .; to develop: pip install -e '.[test,bench]')"
    ) from e

from .api import RnaErnie, load
from .model import (
    RnaErnieConfig,
    RnaErnieForContactPrediction,
    RnaErnieForInteraction,
    RnaErnieForMaskedLM,
    RnaErnieForPreTraining,
    RnaErnieForSequenceClassification,
    RnaErnieForTokenClassification,
    RnaErnieModel,
)
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
