"""Stores a fine-tuned head in fp16 (half the size; loaded back as fp32), with its labels and
k-mer classifier. A screening detector must be recalibrated afterwards (its scores move a little):
``rnaernie finetune screen ... --out DST --calibrate-only``.

python scripts/fp16_head.py KIND SRC DST     # KIND: nrc | lncrna | structure | interaction | screen
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch

import rnaernie.model as H

CLASSES = {
    "nrc": H.RnaErnieForSequenceClassification,
    "lncrna": H.RnaErnieForSequenceClassification,
    "structure": H.RnaErnieForContactPrediction,
    "interaction": H.RnaErnieForInteraction,
    "screen": H.RnaErnieForSequenceClassification,
}


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[1] not in CLASSES:
        raise SystemExit(f"usage: fp16_head.py {{{'|'.join(CLASSES)}}} SRC DST")
    kind, src, dst = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    CLASSES[kind].from_pretrained(src).save_pretrained(dst, dtype=torch.float16)
    for name in ("labels.json", "kmer_logreg.safetensors", "cnn.safetensors", "library.fasta.gz"):
        if (src / name).exists():
            shutil.copy(src / name, dst / name)


if __name__ == "__main__":
    main()
