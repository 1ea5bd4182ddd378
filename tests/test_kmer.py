"""k-mer spectra (C++) against a brute-force count, and the k-mer classifier against scikit-learn."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from _micro_model import NRC_LABELS, save_micro_model
from hypothesis import given, settings
from hypothesis import strategies as st

from rnaernie.api import load
from rnaernie.kmer import KMER_FILE, KmerClassifier, combine_experts, kmer_spectra


def spectra_ref(seqs, kmax):
    """Brute force: every k-mer of ACGU listed in lexicographic order, every window compared."""
    rows = []
    for s in seqs:
        s = "".join(c for c in s.upper() if not c.isspace()).replace("T", "U")
        row = []
        for k in range(1, kmax + 1):
            windows = [s[i : i + k] for i in range(len(s) - k + 1)]
            for kmer in itertools.product("ACGU", repeat=k):
                c = windows.count("".join(kmer))
                row.append(c / len(windows) if windows else 0.0)
        rows.append(row)
    width = sum(4**k for k in range(1, kmax + 1))
    return np.array(rows, dtype=np.float32).reshape(len(seqs), width)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.text(alphabet="ACGUTacgutNRY-", max_size=30), max_size=5),
    st.integers(1, 4),
)
def test_matches_brute_force(seqs, kmax):
    got = kmer_spectra(seqs, kmax, replace_invalid=True)  # '-' is invalid: counted as an IUPAC code
    assert got.shape == (len(seqs), sum(4**k for k in range(1, kmax + 1)))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, spectra_ref(seqs, kmax))


def test_exhaustive_short_sequences():
    seqs = ["".join(p) for n in range(6) for p in itertools.product("ACGU", repeat=n)]
    seqs += ["ACGUTACGNN", "acgUnA", "GGGG"]  # T, lower case, IUPAC codes
    np.testing.assert_array_equal(kmer_spectra(seqs, 3), spectra_ref(seqs, 3))


def test_long_kmax_threads_and_whitespace():
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGU"), size=n)) for n in rng.integers(0, 300, size=40)]
    one = kmer_spectra(seqs, 8, threads=1)
    assert one.shape == (40, sum(4**k for k in range(1, 9)))
    np.testing.assert_array_equal(one, kmer_spectra(seqs, 8, threads=2))
    np.testing.assert_array_equal(one[:3, :340], spectra_ref(seqs[:3], 4))
    spaced = [" ".join(s[i : i + 7] for i in range(0, len(s), 7)) + "\n" for s in seqs]
    np.testing.assert_array_equal(kmer_spectra(spaced, 8), one)  # whitespace is dropped
    assert kmer_spectra([], 2).shape == (0, 20)
    assert not kmer_spectra([""], 2).any()


def test_errors_name_the_sequence():
    with pytest.raises(ValueError, match=r"sequence 1 \('b'\), position 2: invalid character 'X'"):
        kmer_spectra(["ACGU", "ACXG"], names=["a", "b"])
    for kmax in (0, 9):
        with pytest.raises(ValueError, match="kmax must be in"):
            kmer_spectra(["ACGU"], kmax)
    with pytest.raises(ValueError, match="expected str or bytes"):
        kmer_spectra(["ACGU", 3])


def _toy_data(n_classes, n=120, seed=0):
    """Classes with different base compositions, so a k-mer classifier can tell them apart."""
    rng = np.random.default_rng(seed)
    comps = rng.dirichlet(np.ones(4), size=n_classes)
    y = np.arange(n) % n_classes
    seqs = ["".join(rng.choice(list("ACGU"), size=rng.integers(20, 60), p=comps[c])) for c in y]
    return seqs, y


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_matches_scikit_learn(tmp_path, n_classes):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    seqs, y = _toy_data(n_classes)
    labels = [f"c{i}" for i in range(n_classes)]
    clf = KmerClassifier.fit(seqs[:90], y[:90], labels, kmax=3)
    grid = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        {"logisticregression__C": [0.01, 0.1, 1.0]},
        cv=5,
    ).fit(kmer_spectra(seqs[:90], 3), y[:90])
    want = grid.predict_proba(kmer_spectra(seqs[90:], 3))
    np.testing.assert_allclose(clf.predict_proba(seqs[90:]), want, atol=1e-6)
    back = KmerClassifier.load(clf.save(tmp_path))  # float32 on disk
    assert back.labels == labels and back.kmax == 3
    np.testing.assert_allclose(back.predict_proba(seqs[90:]), want, atol=1e-4)
    assert (back.predict_proba(seqs[90:]).argmax(1) == y[90:]).mean() > 1 / n_classes


def test_classifier_errors(tmp_path):
    seqs, y = _toy_data(3, n=30)
    with pytest.raises(ValueError, match="none for c2"):
        KmerClassifier.fit(seqs, y % 2, ["c0", "c1", "c2"])
    (tmp_path / KMER_FILE).write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="cannot read a k-mer classifier"):
        KmerClassifier.load(tmp_path)
    from safetensors.numpy import save_file

    save_file({"mean": np.zeros(3, np.float32)}, str(tmp_path / "x.safetensors"), {"kmax": "1"})
    with pytest.raises(ValueError, match="not a k-mer classifier file"):
        KmerClassifier.load(tmp_path / "x.safetensors")


def test_combine_experts():
    a = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    b = np.array([[0.9, 0.1, 0.0], [0.5, 0.25, 0.25]])
    got = combine_experts(a, b)
    want = a * b / (a * b).sum(1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-6)


def test_classify_multiplies_the_kmer_expert(tmp_path):
    d = save_micro_model(tmp_path / "m", heads=("nrc",))
    seqs, y = _toy_data(3, n=30)
    m = load(d)
    alone = m.classify(seqs, top_k=3, with_type=False)
    clf = KmerClassifier.fit(seqs, y, NRC_LABELS, kmax=2)
    clf.save(d / "heads" / "nrc")
    both = load(d).classify(seqs, top_k=3, with_type=False)
    p_model = np.array(
        [[dict(zip(c.labels, c.probabilities))[k] for k in NRC_LABELS] for c in alone]
    )
    p_both = np.array([[dict(zip(c.labels, c.probabilities))[k] for k in NRC_LABELS] for c in both])
    want = combine_experts(p_model, clf.predict_proba(seqs))
    np.testing.assert_allclose(p_both, want, atol=1e-5)
    off = load(d).classify(seqs, top_k=3, with_type=False, kmer=False)
    assert [c.probabilities for c in off] == [c.probabilities for c in alone]
    # a type-guided head: the product is taken after the type mixing
    cfg = json.loads((d / "heads/nrc/config.json").read_text())
    cfg["extra"] = {**cfg.get("extra", {}), "type_guided": True, "top_k": 2}
    (d / "heads/nrc/config.json").write_text(json.dumps(cfg))
    g_model = load(d).classify(seqs, top_k=3, kmer=False)
    g_both = load(d).classify(seqs, top_k=3)
    gm = np.array([[dict(zip(c.labels, c.probabilities))[k] for k in NRC_LABELS] for c in g_model])
    gb = np.array([[dict(zip(c.labels, c.probabilities))[k] for k in NRC_LABELS] for c in g_both])
    assert not np.array_equal(gm, p_model)  # the guided path ran (typed inputs differ)
    np.testing.assert_allclose(gb, combine_experts(gm, clf.predict_proba(seqs)), atol=1e-5)
    # a k-mer classifier for other labels is refused, naming both label sets
    KmerClassifier.fit(seqs, y, ["x", "y", "z"], kmax=2).save(d / "heads" / "nrc")
    with pytest.raises(ValueError, match=r"kmer_logreg.safetensors has labels \['x'"):
        load(d).classify(seqs[:2])
    assert json.loads((d / "heads/nrc/labels.json").read_text()) == NRC_LABELS


def test_cli_no_kmer(tmp_path, capsys):
    from rnaernie.cli import main

    d = save_micro_model(tmp_path / "m", heads=("nrc",))
    seqs, y = _toy_data(3, n=30)
    KmerClassifier.fit(seqs, y, NRC_LABELS, kmax=2).save(d / "heads" / "nrc")
    fa = tmp_path / "in.fa"
    fa.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(seqs[:4])))
    rows = {}
    for flag in ([], ["--no-kmer"]):
        assert main(["classify", str(fa), "--model", str(d), "--no-type", "-q", *flag]) == 0
        rows[bool(flag)] = capsys.readouterr().out.splitlines()[1:]
    m = load(d)
    for kmer, lines in rows.items():
        want = m.classify(seqs[:4], with_type=False, kmer=not kmer)
        assert [float(r.split("\t")[2]) for r in lines] == pytest.approx(
            [c.probability for c in want], rel=1e-3
        )


def test_classifier_without_room_for_cross_validation():
    """A class of one sequence: no CV, C is the middle of the grid (0.1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    seqs, y = _toy_data(3, n=20)
    y[y == 0] = 1
    y[0] = 0  # class 0 keeps one sequence
    clf = KmerClassifier.fit(seqs, y, ["c0", "c1", "c2"], kmax=2)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    want = pipe.fit(kmer_spectra(seqs, 2), y).predict_proba(kmer_spectra(seqs, 2))
    np.testing.assert_allclose(clf.predict_proba(seqs), want, atol=1e-6)
