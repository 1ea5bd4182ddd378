"""Fits the k-mer classifier (rnaernie.kmer.KmerClassifier: the evaluation's k-mer baseline) on a
labelled FASTA and stores it beside a classifier head, in the head's label order.

    python scripts/fit_kmer_head.py HEAD_DIR TRAIN_FASTA     # e.g. the nRC head, nrc/train.fasta
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rnaernie.kmer import KmerClassifier
from rnaernie.training.common import read_labelled_fasta


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("head", type=Path, help="classifier head folder (with labels.json)")
    p.add_argument("train", type=Path, help="FASTA with the label as the first word of each header")
    p.add_argument("--kmax", type=int, default=5)
    a = p.parse_args()
    labels = json.loads((a.head / "labels.json").read_text())
    seqs, y, names = read_labelled_fasta(a.train, labels=labels)
    print(KmerClassifier.fit(seqs, y, names, kmax=a.kmax).save(a.head))


if __name__ == "__main__":
    main()
