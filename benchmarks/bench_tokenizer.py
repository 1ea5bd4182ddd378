"""Tokenizer benchmarks: C++ ``Tokenizer.encode_batch`` vs a vectorised numpy encoder, HF ``tokenizers``
(char-level WordLevel) and multimolecule's ``RnaTokenizer``.

Run: python -m pytest benchmarks/bench_tokenizer.py --benchmark-enable -p no:cacheprovider \
        --benchmark-json=benchmarks/results/tokenizer.json
Data: N random ACGU sequences of 50-1000 nt (seeded). Every implementation returns padded (B, L)
int64 ``input_ids`` and ``attention_mask`` with the ``[CLS] seq [SEP]`` layout; the HF and
multimolecule baselines run on the first ``SUBSET`` sequences and are compared per MB.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_rna, record

from rnaernie import Tokenizer

SIZES = [10_000, 100_000]
SUBSET = 2_000  # sequences for the slow baselines
ROUNDS = 5
MAX_LENGTH = 1100
CLS, SEP, UNK = 2, 3, 1


def make_lut() -> np.ndarray:
    lut = np.full(256, UNK, dtype=np.int64)
    for ch, tok in zip("AUCGT", (35, 36, 37, 38, 36)):
        lut[ord(ch)] = lut[ord(ch.lower())] = tok
    return lut


_LUT = make_lut()


def encode_numpy(seqs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised lookup-table encoder (no validation, no whitespace handling): (B, L) ids and mask."""
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    codes = _LUT[np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8)]
    cols = int(lengths.max()) + 2
    ids = np.zeros((len(seqs), cols), dtype=np.int64)
    body = (
        np.arange(cols - 2) < lengths[:, None]
    )  # (B, L-2): row-major order == concatenation order
    ids[:, 1:-1][body] = codes
    ids[:, 0] = CLS
    ids[np.arange(len(seqs)), lengths + 1] = SEP
    mask = (np.arange(cols) < (lengths + 2)[:, None]).astype(np.int64)
    return ids, mask


def hf_tokenizer():
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import Regex, models, pre_tokenizers, processors

    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "A": 35, "U": 36, "C": 37, "G": 38}
    tok = tokenizers.Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", CLS), ("[SEP]", SEP)]
    )
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def encode_hf(tok, seqs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encs = tok.encode_batch(seqs)
    ids = np.array([e.ids for e in encs], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
    return ids, mask


@pytest.fixture(scope="module", params=SIZES, ids=lambda n: f"n{n}")
def seqs(request) -> list[str]:
    return random_rna(request.param, 50, 1000, seed=request.param)


def _nbytes(seqs: list[str]) -> int:
    return sum(map(len, seqs))


def test_encode_rnaernie(benchmark, seqs):
    tok = Tokenizer(max_length=MAX_LENGTH)
    benchmark.group = f"encode-n{len(seqs)}"
    enc = benchmark.pedantic(
        tok.encode_batch, args=(seqs,), rounds=ROUNDS, iterations=1, warmup_rounds=1
    )
    assert enc.input_ids.shape[0] == len(seqs)
    record(benchmark, f"encode-n{len(seqs)}", "rnaernie", n_bytes=_nbytes(seqs), n_seqs=len(seqs))


def test_encode_rnaernie_1thread(benchmark, seqs):
    tok = Tokenizer(max_length=MAX_LENGTH, threads=1)
    benchmark.group = f"encode-n{len(seqs)}"
    benchmark.pedantic(tok.encode_batch, args=(seqs,), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    record(
        benchmark,
        f"encode-n{len(seqs)}",
        "rnaernie-1thread",
        n_bytes=_nbytes(seqs),
        n_seqs=len(seqs),
    )


def test_encode_numpy_baseline(benchmark, seqs):
    ours = Tokenizer(max_length=MAX_LENGTH).encode_batch(seqs)  # correctness, outside timing
    ids, mask = encode_numpy(seqs)
    np.testing.assert_array_equal(ids, ours.input_ids)
    np.testing.assert_array_equal(mask, ours.attention_mask)
    benchmark.group = f"encode-n{len(seqs)}"
    benchmark.pedantic(encode_numpy, args=(seqs,), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    record(benchmark, f"encode-n{len(seqs)}", "numpy-lut", n_bytes=_nbytes(seqs), n_seqs=len(seqs))


def test_encode_hf_tokenizers_baseline(benchmark, seqs):
    tok = hf_tokenizer()
    sub = seqs[:SUBSET]
    ids, _ = encode_hf(tok, sub[:50])
    np.testing.assert_array_equal(
        ids, Tokenizer(max_length=MAX_LENGTH).encode_batch(sub[:50]).input_ids
    )
    benchmark.group = f"encode-n{len(seqs)}"
    benchmark.extra_info["subset_seqs"] = len(sub)
    benchmark.pedantic(encode_hf, args=(tok, sub), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    record(
        benchmark, f"encode-n{len(seqs)}", "hf-tokenizers", n_bytes=_nbytes(sub), n_seqs=len(sub)
    )


def test_encode_multimolecule_baseline(benchmark, seqs):
    mm = pytest.importorskip("multimolecule")
    tok = mm.RnaTokenizer()
    sub = seqs[:SUBSET]
    benchmark.group = f"encode-n{len(seqs)}"
    benchmark.extra_info["subset_seqs"] = len(sub)
    benchmark.pedantic(
        lambda: tok(sub, padding=True, return_tensors="np"),
        rounds=ROUNDS,
        iterations=1,
        warmup_rounds=1,
    )
    record(
        benchmark, f"encode-n{len(seqs)}", "multimolecule", n_bytes=_nbytes(sub), n_seqs=len(sub)
    )
