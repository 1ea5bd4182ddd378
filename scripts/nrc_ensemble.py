"""nRC test accuracy of several fine-tuned nRC heads and of their ensembles (mean probabilities).

    python scripts/nrc_ensemble.py HEAD_DIR [HEAD_DIR ...] --data ../shared/data \\
        --cache runs/eval-cache --out benchmarks/results/nrc_ensemble.json

Each head is applied as ``rnaernie evaluate`` applies the shipped one (type-guided when its config
says so, with ``--indicator`` as the indicator: the pretraining model it was fine-tuned from).
Test-set probabilities are cached in ``--cache`` under ``model-<hash of the head>/`` (for a guided
head, keyed by its indicator too). Reported: every head alone, the first two heads together and,
beyond two, all heads together, each with its accuracy, macro-F1, mean NLL and expected
calibration error. With ``--versus-kmer``, also the k-mer baseline of ``rnaernie evaluate``
(its test probabilities cached as ``nrc_kmer_lr_test_probs.npy``) and, for every head and
ensemble, a paired bootstrap (10,000 resamples) of its accuracy minus the baseline's (``vs_kmer``).
With ``--times-kmer``, also each of them multiplied with the baseline's probabilities (``NAME x
kmer``: the renormalised product, as ``RnaErnie.classify`` combines a head with its k-mer classifier),
each after the first against the first head's product (``vs_FIRST x kmer``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rnaernie.evaluate import model_cache, nrc_kmer_probs, paired_bootstrap
from rnaernie.io import read_fasta
from rnaernie.kmer import combine_experts
from rnaernie.model import RnaErnieForSequenceClassification
from rnaernie.predict import classifier_probs
from rnaernie.training.common import classification_metrics, frozen_indicator

SHIPPED = Path(__file__).resolve().parents[1] / "rnaernie" / "data" / "models" / "rnaernie-tiny"


def _probs(
    head: Path, seqs: list[str], labels: list[str], cache: Path, indicator: Path
) -> np.ndarray:
    if (json.loads((head / "labels.json").read_text())) != labels:
        raise SystemExit(f"{head}: its labels.json differs from the first head's")
    model = RnaErnieForSequenceClassification.from_pretrained(head)
    # keyed by the head's weights and config, and for a type-guided head by its indicator's too
    guided = model.config.extra.get("type_guided", False)
    name = (
        f"nrc_test_probs-{model_cache(cache, indicator).name}.npy"
        if guided
        else "nrc_test_probs.npy"
    )
    f = model_cache(cache, head) / name
    if not f.exists():
        ind = frozen_indicator(indicator, guided, "cpu")
        f.parent.mkdir(parents=True, exist_ok=True)
        np.save(f, classifier_probs(model, seqs, indicator=ind, replace_invalid=True))
        print(head, "done", flush=True)
    return np.load(f)


def calibration(p: np.ndarray, y: np.ndarray, bins: int = 15) -> dict:
    """Mean negative log-likelihood of the true class and the expected calibration error (top-1
    confidence against accuracy in ``bins`` equal-width bins, weighted by their share)."""
    conf, ok = p.max(1), p.argmax(1) == y
    which = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    ece = sum(
        (which == b).mean() * abs(conf[which == b].mean() - ok[which == b].mean())
        for b in range(bins)
        if (which == b).any()
    )
    nll = -np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None)).mean()
    return {"nll": round(float(nll), 4), "ece": round(float(ece), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("heads", nargs="+", type=Path)
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--cache", type=Path, default=Path("runs/eval-cache"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/nrc_ensemble.json"))
    p.add_argument(
        "--indicator",
        type=Path,
        default=SHIPPED,
        help="the pretraining model the type-guided heads were fine-tuned with (default: the shipped one)",
    )
    p.add_argument("--versus-kmer", action="store_true", help="paired bootstrap against k-mer LR")
    p.add_argument(
        "--times-kmer",
        action="store_true",
        help="also every head multiplied with the k-mer baseline (as classify does with a head's "
        "k-mer classifier); implies --versus-kmer",
    )
    p.add_argument("--no-ensembles", action="store_true", help="each head alone only")
    a = p.parse_args()
    a.versus_kmer |= a.times_kmer
    recs = list(read_fasta(a.data / "nrc" / "test.fasta"))
    seqs = [r.seq.upper().replace("T", "U") for r in recs]
    labels = json.loads((a.heads[0] / "labels.json").read_text())
    y = np.array([labels.index(r.description.split()[0]) for r in recs])
    probs = {str(h): _probs(h, seqs, labels, a.cache, a.indicator) for h in a.heads}
    names = list(probs)
    if len(names) > 1 and not a.no_ensembles:
        probs["ensemble_first_two"] = np.mean([probs[n] for n in names[:2]], 0)
    if len(names) > 2 and not a.no_ensembles:
        probs[f"ensemble_all_{len(names)}"] = np.mean([probs[n] for n in names], 0)
    if a.versus_kmer:
        kprobs, knames = nrc_kmer_probs(a.data, a.cache)
    if a.times_kmer:
        if knames != labels:
            raise SystemExit(
                f"the k-mer baseline's labels {knames} differ from the heads' {labels}"
            )
        for name in list(probs):
            probs[f"{name} x kmer"] = combine_experts(probs[name], kprobs)
    res = {name: {**classification_metrics(p, y), **calibration(p, y)} for name, p in probs.items()}
    if a.versus_kmer:
        truth = np.array([labels[i] for i in y])
        kmer_ok = np.array([knames[i] for i in kprobs.argmax(1)]) == truth
        ky = np.array([knames.index(labels[i]) for i in y])  # y in the baseline's column order
        res["kmer_lr"] = {"accuracy": float(kmer_ok.mean()), **calibration(kprobs, ky)}
        for name, p in probs.items():
            ok = np.array([labels[i] for i in p.argmax(1)]) == truth
            res[name]["vs_kmer"] = paired_bootstrap(ok, kmer_ok)
        if a.times_kmer:  # every other hybrid against the first head's
            first = probs[f"{names[0]} x kmer"].argmax(1) == y
            for name in names[1:]:
                ok = probs[f"{name} x kmer"].argmax(1) == y
                res[f"{name} x kmer"][f"vs_{names[0]} x kmer"] = paired_bootstrap(ok, first)
    res["n_test"] = len(y)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
