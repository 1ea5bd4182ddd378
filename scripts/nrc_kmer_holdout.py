"""The k-mer hybrid on validation data: a head fine-tuned on part of nRC train (``finetune classify
--valid-fraction F``), scored on the held-out part alone, with the k-mer classifier fitted on the
same training part, and multiplied with it (as ``classify`` does). No test sequence is read.

    python scripts/nrc_kmer_holdout.py runs/nrc-aug/m0 --fraction 0.1 --seed 0 \\
        --out benchmarks/results/nrc_kmer_holdout.json

``--fraction``/``--seed`` must be the run's ``--valid-fraction``/``--seed`` (the same held-out rows).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rnaernie.evaluate import paired_bootstrap
from rnaernie.kmer import KmerClassifier, combine_experts
from rnaernie.model import RnaErnieForSequenceClassification
from rnaernie.predict import classifier_probs
from rnaernie.training.common import (
    classification_metrics,
    read_labelled_fasta,
    stratified_holdout,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("head", type=Path, help="an unguided classifier head fine-tuned on the rest")
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/nrc_kmer_holdout.json"))
    a = p.parse_args()
    labels = json.loads((a.head / "labels.json").read_text())
    seqs, y, _ = read_labelled_fasta(a.data / "nrc" / "train.fasta", labels=labels)
    held = stratified_holdout(y, a.fraction, seed=a.seed)
    keep = np.setdiff1d(np.arange(len(seqs)), held)
    model = RnaErnieForSequenceClassification.from_pretrained(a.head)
    if model.config.extra.get("type_guided", False):
        raise SystemExit(f"{a.head}: a type-guided head; this script scores unguided heads")
    hs, hy = [seqs[i] for i in held], y[held]
    pm = classifier_probs(model, hs, replace_invalid=True)
    pk = KmerClassifier.fit([seqs[i] for i in keep], y[keep], labels).predict_proba(hs)
    ph = combine_experts(pm, pk)

    def ok(q):
        return q.argmax(1) == hy

    res = {
        "head": str(a.head),
        "n_train": len(keep),
        "n_valid": len(held),
        "model": classification_metrics(pm, hy),
        "kmer": classification_metrics(pk, hy),
        "hybrid": {**classification_metrics(ph, hy), "vs_kmer": paired_bootstrap(ok(ph), ok(pk)),
                   "vs_model": paired_bootstrap(ok(ph), ok(pm))},
    }  # fmt: skip
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
