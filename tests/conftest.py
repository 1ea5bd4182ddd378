"""Shared test set-up.

On a machine without a CUDA GPU the Triton kernels run in Triton's interpreter, so the kernel tests
exercise the real kernel code on CPU tensors at small shapes.
"""

from __future__ import annotations

import os

try:
    import torch

    _HAS_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover - torch is a core dependency
    _HAS_CUDA = False

if not _HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")
