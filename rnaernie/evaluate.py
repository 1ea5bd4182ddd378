"""Evaluation on the real data sets, with the baselines recomputed in the same run.

``rnaernie evaluate --data-dir DATA`` (or ``RNAERNIE_DATA=DATA rnaernie evaluate``; DATA is the
folder described in docs/results.md) reproduces every accuracy figure of the README and
docs/results.md from the shipped weights, into ``benchmarks/results/accuracy.json``:

* nRC ncRNA families (13 classes): the shipped classifier vs a k-mer spectrum (k = 1…5) + logistic
  regression baseline (C chosen by 5-fold CV on train only); when the head carries a k-mer
  classifier (:mod:`rnaernie.kmer`), also that classifier alone and the product of the two, as
  ``classify`` runs it, with paired bootstraps against the baseline and the model alone;
* lncRNA vs mRNA (mouse, split by gene): the shipped ``lncrna`` head (windows) vs the same baseline;
* miRNA–target interaction (MirTarRAW), official split and the grouped random split: logistic
  regression on the k-mer spectra of both sequences on both; the shipped ``interaction`` head on
  the split it was trained on (its config's ``extra.split``), since the other split's test rows
  overlap its training rows;
* secondary structure: the shipped pair head + C++ Nussinov decoder vs ViennaRNA ``RNA.fold`` on
  bpRNA TS0 and ArchiveII (≤ 600 nt), mean per-sequence F1 (exact pairs, and ±1 shift); also
  with the head's priors: RNAfold's MFE pairs (``prior_rnafold``) and ViennaRNA's base-pair
  probabilities (``prior_bpp``, when the head has it; ``scripts/structure_fusion.py`` chooses it
  and scores it family by family);
* unsupervised: k-means (k = 13) on mean-pooled and ``[CLS]`` embeddings of nRC test vs on k-mer
  spectra, adjusted Rand index and NMI.

Each section caches its result under ``--cache`` so a long evaluation can be resumed; results of the
model are cached per model (a hash of its weights and configs), baselines once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .kmer import KMER_FILE, KmerClassifier, combine_experts, fit_logreg, kmer_spectra
from .model import (
    RnaErnieForContactPrediction,
    RnaErnieForInteraction,
    RnaErnieForSequenceClassification,
    RnaErnieModel,
)
from .predict import classifier_probs, embed_batches, interaction_probs, pair_logits
from .structure import f1, read_dbn
from .structure.prior import (
    Partition,
    load_partitions,
    rnafold_pairs,
    save_partitions,
    vienna_partition,
)
from .training.common import classification_metrics, frozen_indicator, read_labelled_fasta
from .training.interaction import interaction_split
from .training.structure import (
    choose_decoding,
    choose_prior,
    decoding_options,
    fusion_scores,
    prior_scores,
    score_structures,
)

log = logging.getLogger(__name__)

__all__ = ["data_dir", "nrc_kmer_probs", "paired_bootstrap", "run"]


def logreg_cv(x_train: np.ndarray, y_train, x_test: np.ndarray) -> np.ndarray:
    """Standardised logistic regression, C by 5-fold CV on train only (:func:`fit_logreg`); test
    probabilities."""
    return fit_logreg(x_train, y_train).predict_proba(x_test)


def kmer_logreg(train_seqs, y_train, test_seqs) -> np.ndarray:
    """k-mer spectrum (k = 1…5) + :func:`logreg_cv`; test probabilities."""
    return logreg_cv(kmer_spectra(train_seqs), y_train, kmer_spectra(test_seqs))


def nrc_kmer_probs(data: Path, cache: Path | None) -> tuple[np.ndarray, list[str]]:
    """The nRC baseline: :func:`kmer_logreg` test probabilities (columns in the training file's
    sorted label order, returned too), cached as ``nrc_kmer_lr_test_probs.npy``."""

    tr, y_tr, names = read_labelled_fasta(data / "nrc" / "train.fasta")
    f = None if cache is None else cache / "nrc_kmer_lr_test_probs.npy"
    if f is not None and f.exists():
        return np.load(f), names
    te, _, _ = read_labelled_fasta(data / "nrc" / "test.fasta", labels=names)
    probs = kmer_logreg(tr, y_tr, te)
    if f is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(f, probs)
    return probs, names


def paired_bootstrap(a, b, n: int = 10_000, seed: int = 0) -> dict:
    """Mean of ``a − b`` (per-item scores of two methods on the same items: F1, or 0/1 for
    correct) and its 95 % percentile interval over ``n`` resamples of the items."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    means = d[np.random.default_rng(seed).integers(0, len(d), size=(n, len(d)))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {
        "mean_diff": round(float(d.mean()), 4),
        "ci95": [round(float(lo), 4), round(float(hi), 4)],
    }


def rnafold_f1(records, pairs: Sequence[np.ndarray] | None = None) -> dict:
    """ViennaRNA MFE structures (default parameters), mean per-sequence F1. ``pairs``: the MFE
    pairs when already folded (then ``seconds`` is not reported here)."""

    t0 = time.perf_counter()
    folded_here = pairs is None
    if pairs is None:
        pairs = rnafold_pairs([r.sequence for r in records])
    if len(pairs) != len(records):
        raise ValueError(f"got {len(pairs)} structures for {len(records)} records")
    fe = [f1(p, r.pairs) for p, r in zip(pairs, records)]
    fs = [f1(p, r.pairs, shift=1) for p, r in zip(pairs, records)]
    res = {"f1": float(np.mean(fe)), "f1_shift1": float(np.mean(fs)), "n": len(records)}
    if folded_here:
        res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def _records_key(records) -> str:
    h = hashlib.sha1()
    for r in records:
        h.update(r.sequence.encode() + b"\n")
    return h.hexdigest()[:12]


def rnafold_structures(cache: Path | None, name: str, records) -> tuple[list[np.ndarray], float]:
    """RNAfold MFE pairs of the records on all cores and the seconds that took, cached as
    ``NAME_rnafold_pairs-<hash of the sequences>.npz``."""

    f = cache / f"{name}_rnafold_pairs-{_records_key(records)}.npz" if cache is not None else None
    if f is not None and f.exists():
        z = np.load(f)
        n = len(z.files) - 1
        return [z[f"arr_{i}"] for i in range(n)], float(z["seconds"])
    t0 = time.perf_counter()
    pairs = rnafold_pairs([r.sequence for r in records], processes=os.cpu_count() or 1)
    seconds = round(time.perf_counter() - t0, 1)
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        np.savez(f, *pairs, seconds=np.float64(seconds))
    return pairs, seconds


def vienna_partitions(cache: Path | None, name: str, records) -> list[Partition]:
    """ViennaRNA partition functions of the records (:func:`vienna_partition`, all cores; each
    carries its own seconds), cached as ``NAME_vienna_pf-<hash of the sequences>.npz``."""
    f = cache / f"{name}_vienna_pf-{_records_key(records)}.npz" if cache is not None else None
    if f is not None and f.exists():
        return load_partitions(f)
    parts = vienna_partition([r.sequence for r in records], processes=os.cpu_count() or 1)
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        save_partitions(f, parts)
    return parts


def head_pair_logits(cache: Path | None, head: Path, name: str, records) -> list[np.ndarray]:
    """A structure head's pair logits of the records (:func:`pair_logits`), cached by a hash of
    the head's weights (not its config, whose decoder settings do not change the logits) and
    the sequences as ``logits-<hash>/NAME-<hash>.npz``."""
    head = Path(head)
    h = hashlib.sha1((head / "model.safetensors").read_bytes()).hexdigest()[:12]
    f = None if cache is None else cache / f"logits-{h}" / f"{name}-{_records_key(records)}.npz"
    if f is not None and f.exists():
        with np.load(f, allow_pickle=False) as z:
            return [z[f"arr_{i}"] for i in range(len(z.files))]
    model = RnaErnieForContactPrediction.from_pretrained(head)
    if model.config.extra.get("type_guided"):
        raise ValueError(f"{head}: a type-guided head needs its indicator; not supported here")
    out = pair_logits(model, [r.sequence for r in records], replace_invalid=True)
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        np.savez(f, *out)
    return out


# Bumped when the way the model is scored changes (v2: long sequences read through windows,
# decoder settings chosen with the lonely-pair rule; v3: decoder settings reported as one
# options object), so no cached result of an older protocol
# is reused.
EVAL_PROTOCOL = 3


def model_cache(cache: Path | None, model_dir: Path) -> Path | None:
    """Cache folder for results that depend on the model: keyed by a hash of its weights and
    configs and the evaluation protocol, so evaluating another model (or retrained heads, or
    after a change of protocol) never reads stale numbers."""
    if cache is None:
        return None
    h = hashlib.sha1(f"protocol {EVAL_PROTOCOL}".encode())
    for f in sorted(model_dir.rglob("*")):
        if f.is_file() and f.suffix in (".safetensors", ".json"):
            h.update(str(f.relative_to(model_dir)).encode())
            h.update(f.read_bytes())
    return cache / f"model-{h.hexdigest()[:12]}"


def _cached(cache: Path | None, name: str, fn: Callable[[], dict]) -> dict:
    if cache is not None:
        f = cache / f"{name}.json"
        if f.exists():
            return json.loads(f.read_text())
    t0 = time.perf_counter()
    res = fn()
    res.setdefault("seconds", round(time.perf_counter() - t0, 1))
    log.warning("%s: %s", name, json.dumps(res))
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        (cache / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


def _structure_sets(data: Path):

    ts0 = read_dbn(data / "bprna_ts0_vl0_tr0" / "TS0.dbn")
    arch = [r for r in read_dbn(data / "archiveII" / "archiveII.dbn.gz") if len(r.sequence) <= 600]
    return {"bprna_ts0": ts0, "archiveII_600": arch}


def _rnafold_baseline(cache: Path | None, name: str, records) -> dict:
    pairs, seconds = rnafold_structures(cache, name, records)
    return {**rnafold_f1(records, pairs), "seconds": seconds}


SECTIONS = ("nrc", "lncrna", "interaction", "structure", "clustering")


def _indicator(model, model_dir: Path, device: str):
    """The type indicator (the frozen pretraining model) of a head fine-tuned with type guidance."""
    return frozen_indicator(model_dir, bool(model.config.extra.get("type_guided")), device)


def _classifier_result(
    head: Path, model_dir: Path, seqs, labels, device: str, keep: dict | None = None
) -> dict:
    """Test metrics of a classifier head; its probabilities go to ``keep["probs"]`` too."""
    model = RnaErnieForSequenceClassification.from_pretrained(head).to(device)
    ind = _indicator(model, model_dir, device)
    p = classifier_probs(model, seqs, indicator=ind, replace_invalid=True)
    if keep is not None:
        keep["probs"] = p
    return {**classification_metrics(p, labels), "type_guided": ind is not None,
            "max_windows": model.config.extra.get("max_windows")}  # fmt: skip


def _kmer_hybrid(head: Path, model_probs: np.ndarray, baseline: np.ndarray, seqs, y) -> dict:
    """The k-mer classifier stored with ``head`` alone and multiplied with the model's test
    probabilities (as ``RnaErnie.classify`` does), each against the k-mer baseline fitted in
    this run and the model alone: paired bootstraps of per-sequence correctness."""

    kprobs = KmerClassifier.load(head / KMER_FILE).predict_proba(seqs)
    hybrid = combine_experts(model_probs, kprobs)
    y = np.asarray(y)

    def correct(p):
        return p.argmax(1) == y

    return {
        "kmer_head": {**classification_metrics(kprobs, y),
                      "max_abs_prob_diff_vs_baseline": float(np.abs(kprobs - baseline).max())},
        "hybrid": {**classification_metrics(hybrid, y),
                   "vs_kmer_baseline": paired_bootstrap(correct(hybrid), correct(baseline)),
                   "vs_model": paired_bootstrap(correct(hybrid), correct(model_probs))},
    }  # fmt: skip


def _pair_spectra(data) -> np.ndarray:
    """k-mer spectra of the miRNA and of the target side by side (the interaction baseline)."""
    return np.hstack([kmer_spectra(data.a), kmer_spectra(data.b)])


def run(
    data: Path,
    model_dir: Path,
    out: Path,
    cache: Path | None,
    device: str = "cpu",
    sections=None,
    ablations: dict | None = None,
) -> dict:
    """Run every section (or those named) and write the combined JSON to ``out``; ``ablations``
    (name → test metrics of other fine-tuning runs) are stored as given under ``"ablations"``."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    want = set(SECTIONS if sections is None else sections)
    mcache = model_cache(cache, model_dir) if model_dir.exists() else None
    res: dict = {"machine": {"platform": platform.platform(), "processor": platform.processor(), "python": platform.python_version()},
                 "model": model_dir.name}  # fmt: skip
    if want & {"nrc", "clustering"}:
        names = read_labelled_fasta(data / "nrc" / "train.fasta")[2]  # the label order
        te_seqs, y_te, _ = read_labelled_fasta(data / "nrc" / "test.fasta", labels=names)

    if "nrc" in want:
        res["nrc_kmer_lr"] = _cached(
            cache,
            "nrc_kmer_lr",
            lambda: classification_metrics(nrc_kmer_probs(data, cache)[0], y_te),
        )
        head = model_dir / "heads" / "nrc"
        kept: dict = {}  # the model's test probabilities, when it runs
        if head.exists():
            res["nrc_rnaernie"] = _cached(
                mcache,
                "nrc_rnaernie",
                lambda: _classifier_result(head, model_dir, te_seqs, y_te, device, kept),
            )
        if (head / KMER_FILE).exists():

            def hybrid() -> dict:
                if "probs" not in kept:  # the model's metrics came from the cache
                    _classifier_result(head, model_dir, te_seqs, y_te, device, kept)
                base = nrc_kmer_probs(data, cache)[0]
                return _kmer_hybrid(head, kept["probs"], base, te_seqs, y_te)

            h = _cached(mcache, "nrc_kmer_hybrid", hybrid)
            res["nrc_kmer_head"], res["nrc_rnaernie_kmer_hybrid"] = h["kmer_head"], h["hybrid"]

    if "lncrna" in want:
        folder = data / "lncrna_mouse_prelnc"
        ltr, ly_tr, lnames = read_labelled_fasta(folder / "train.fasta.gz")
        lte, ly_te, _ = read_labelled_fasta(folder / "test.fasta.gz", labels=lnames)
        res["lncrna_kmer_lr"] = _cached(
            cache,
            "lncrna_kmer_lr",
            lambda: {
                **classification_metrics(kmer_logreg(ltr, ly_tr, lte), ly_te),
                "labels": lnames,
            },
        )
        head = model_dir / "heads" / "lncrna"
        if head.exists():
            res["lncrna_rnaernie"] = _cached(
                mcache,
                "lncrna_rnaernie",
                lambda: _classifier_result(head, model_dir, lte, ly_te, device),
            )

    if "interaction" in want:
        head = model_dir / "heads" / "interaction"
        head_split = (
            json.loads((head / "config.json").read_text()).get("extra", {}).get("split")
            if head.exists()
            else None
        )
        for split in ("official", "grouped"):
            itr, ite = interaction_split(data / "mirtarraw", split)
            res[f"mirtarraw_{split}_kmer_lr"] = _cached(
                cache,
                f"mirtarraw_{split}_kmer_lr",
                lambda itr=itr, ite=ite: {
                    **classification_metrics(
                        logreg_cv(_pair_spectra(itr), itr.labels, _pair_spectra(ite)), ite.labels
                    ),
                    "n_test": len(ite),
                },
            )
            if split == head_split:  # the other split's test rows overlap this head's training

                def ours(ite=ite) -> dict:
                    model = RnaErnieForInteraction.from_pretrained(head).to(device)
                    ind = _indicator(model, model_dir, device)
                    p = interaction_probs(model, ite.a, ite.b, indicator=ind)
                    return {**classification_metrics(p, ite.labels), "n_test": len(ite),
                            "type_guided": ind is not None}  # fmt: skip

                res[f"mirtarraw_{split}_rnaernie"] = _cached(
                    mcache, f"mirtarraw_{split}_rnaernie", ours
                )

    if "structure" in want:
        sets = _structure_sets(data)
        for name, recs in sets.items():
            res[f"{name}_rnafold"] = _cached(
                cache,
                f"{name}_rnafold",
                lambda name=name, recs=recs: _rnafold_baseline(cache, name, recs),
            )
        head = model_dir / "heads" / "structure"
        if head.exists():
            model = RnaErnieForContactPrediction.from_pretrained(head).to(device)
            ind = _indicator(model, model_dir, device)
            extra = model.config.extra
            sets["bprna_vl0"] = read_dbn(data / "bprna_ts0_vl0_tr0" / "VL0.dbn")
            got: dict[str, list[np.ndarray]] = {}

            def logits(name: str) -> list[np.ndarray]:  # computed once per set, when needed
                if name not in got:
                    got[name] = pair_logits(model, [r.sequence for r in sets[name]], indicator=ind,
                                            replace_invalid=True)  # fmt: skip
                return got[name]

            if "decode" not in extra:
                best = choose_decoding(model, sets["bprna_vl0"], logits=logits("bprna_vl0"))
                extra["decode"] = best.to_dict()
            if "prior_rnafold" not in extra:
                mfe, _ = rnafold_structures(cache, "bprna_vl0", sets["bprna_vl0"])
                extra["prior_rnafold"] = choose_prior(logits("bprna_vl0"), sets["bprna_vl0"], mfe)
            for name in ("bprna_ts0", "archiveII_600"):
                recs = sets[name]
                res[f"{name}_rnaernie"] = _cached(
                    mcache,
                    f"{name}_rnaernie",
                    lambda name=name, recs=recs: {
                        **score_structures(logits(name), recs, decoding_options(model)),
                        "type_guided": ind is not None,
                    },
                )
                res[f"{name}_rnaernie_rnafold_prior"] = _cached(
                    mcache,
                    f"{name}_rnaernie_rnafold_prior",
                    lambda name=name, recs=recs: {
                        **prior_scores(
                            logits(name), recs, rnafold_structures(cache, name, recs)[0],
                            extra["prior_rnafold"],
                        ),
                        "type_guided": ind is not None,
                    },
                )  # fmt: skip
                if "prior_bpp" in extra:  # chosen on VL0 by scripts/structure_fusion.py
                    res[f"{name}_rnaernie_bpp_prior"] = _cached(
                        mcache,
                        f"{name}_rnaernie_bpp_prior",
                        lambda name=name, recs=recs: {
                            **fusion_scores(logits(name), recs, vienna_partitions(cache, name, recs),
                                            extra["prior_bpp"]),
                            "type_guided": ind is not None,
                        },
                    )  # fmt: skip

    if "clustering" in want:

        def cluster(x: np.ndarray) -> dict:
            lab = KMeans(n_clusters=len(names), n_init=10, random_state=0).fit_predict(x)
            return {
                "ari": float(adjusted_rand_score(y_te, lab)),
                "nmi": float(normalized_mutual_info_score(y_te, lab)),
            }

        res["clustering_kmer"] = _cached(
            cache, "clustering_kmer", lambda: cluster(kmer_spectra(te_seqs))
        )
        if (model_dir / "config.json").exists():
            enc = RnaErnieModel.from_pretrained(model_dir).to(device).eval()
            seqs = [s.upper().replace("T", "U")[:510] for s in te_seqs]
            for pooling in ("mean", "cls"):

                def emb(pooling=pooling) -> dict:
                    return cluster(embed_batches(enc, seqs, pooling=pooling).numpy())

                res[f"clustering_rnaernie_{pooling}"] = _cached(
                    mcache, f"clustering_rnaernie_{pooling}", emb
                )

    if ablations:
        res["ablations"] = ablations
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(res, indent=1) + "\n")
    tmp.replace(out)
    return res


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The evaluation data folder: ``path``, else ``$RNAERNIE_DATA``; a clear error otherwise."""
    p = path or os.environ.get("RNAERNIE_DATA")
    if not p:
        raise ValueError("no evaluation data: pass --data-dir DIR or set RNAERNIE_DATA (the folder "
                         "with nrc/, lncrna_mouse_prelnc/, mirtarraw/, bprna_ts0_vl0_tr0/, archiveII/)")  # fmt: skip
    if not Path(p).is_dir():
        raise FileNotFoundError(f"evaluation data folder {str(p)!r} does not exist")
    return Path(p)
