"""Masking span-selection benchmarks: C++ ``select_mask_positions`` vs the plain-Python reference
(``rnaernie._masking_ref.select_row``, one call per row), per level and with all three levels.

Run: python -m pytest benchmarks/bench_masking.py --benchmark-enable -p no:cacheprovider \
        --benchmark-json=benchmarks/results/masking.json
Data: 20,000 Rfam 14.2 seed sequences of at most 508 nt (seeded sample), encoded with their RNA type
(``[CLS] seq [IND] TYPE [SEP]``, so rows fit the model's 512 positions), padded to the batch maximum.
The reference runs on the first ``REF_ROWS`` rows and is compared per sequence. Its motif level finds
motifs by brute force over all 17,010 motifs (about 1 s per row), so the ratio at that level mostly
measures Aho–Corasick against brute-force search.
"""

from __future__ import annotations

import pytest
from conftest import record, rfam_sequences

from rnaernie import MotifMatcher, Tokenizer
from rnaernie import _masking_ref as ref
from rnaernie.masking import LEVELS, select_mask_positions

LEVEL_SETS = {
    "base": ["base"],
    "subsequence": ["subsequence"],
    "motif": ["motif"],
    "all": list(LEVELS),
}
REF_ROWS = {"base": 300, "subsequence": 300, "motif": 4, "all": 12}
SEED = 1234


@pytest.fixture(scope="module")
def ids():
    seqs, types = rfam_sequences(20_000, max_nt=508)
    return Tokenizer(max_length=512).encode_batch(seqs, types=types, replace_invalid=True).input_ids


@pytest.fixture(scope="module")
def matcher() -> MotifMatcher:
    return MotifMatcher.default()


@pytest.mark.parametrize("threads", [1, 0], ids=["1thread", "allcores"])
@pytest.mark.parametrize("levels", list(LEVEL_SETS))
def test_select_rnaernie(benchmark, ids, matcher, levels, threads):
    benchmark.group = f"mask-{levels}"
    benchmark.pedantic(
        select_mask_positions,
        args=(ids,),
        kwargs=dict(seed=SEED, levels=LEVEL_SETS[levels], matcher=matcher, threads=threads),
        rounds=5,
        iterations=1,
        warmup_rounds=1,
    )
    impl = "rnaernie-1thread" if threads == 1 else "rnaernie-allcores"
    benchmark.extra_info.update(rows=ids.shape[0], cols=ids.shape[1])
    record(benchmark, f"mask-{levels}", impl, n_seqs=ids.shape[0])


@pytest.mark.parametrize("levels", list(LEVEL_SETS))
def test_select_python_reference_baseline(benchmark, ids, matcher, levels):
    n = REF_ROWS[levels]
    rows = ids[:n].tolist()
    level_idx = [LEVELS.index(lv) for lv in LEVEL_SETS[levels]]
    nuc = {c: 35 + i for i, c in enumerate("AUCG")}
    motifs = [[nuc[c] for c in m.upper().replace("T", "U")] for m in matcher.motifs]
    tiers = matcher.tiers.tolist()

    def run():
        return [
            ref.select_row(row, r, SEED, level_idx, motifs, tiers) for r, row in enumerate(rows)
        ]

    # the reference must agree with the C++ rows it is compared with (not timed)
    sel, lv = select_mask_positions(ids[:n], seed=SEED, levels=LEVEL_SETS[levels], matcher=matcher)
    out = run()
    assert [o[1] for o in out] == lv.tolist()
    assert [o[0] for o in out] == sel.astype(int).tolist()

    benchmark.group = f"mask-{levels}"
    benchmark.extra_info.update(rows=n, cols=ids.shape[1])
    benchmark.pedantic(run, rounds=1, iterations=1)
    record(benchmark, f"mask-{levels}", "python-reference", n_seqs=n)
