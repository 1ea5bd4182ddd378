"""Motif matching benchmarks: C++ Aho–Corasick (``MotifMatcher.default()``, ~17k motifs) vs pyahocorasick
and ahocorapy.

Run: python -m pytest benchmarks/bench_motifs.py --benchmark-enable -p no:cacheprovider \
        --benchmark-json=benchmarks/results/motifs.json
Data: ``MB`` random ACGU sequences of 1 MB each (seeded). pyahocorasick scans at most
``PYAHO_MAX_MB`` of them and ahocorapy a ``AHOCORAPY_BYTES`` slice; all are compared per MB.
Every implementation materialises its matches (ours: numpy arrays; baselines: a Python list).
The shipped lists hold 17,010 motifs but 14,041 distinct ones after T→U: ours reports one hit per
motif id (duplicates included), pyahocorasick one per distinct string, so ``n_matches`` differ.
"""

from __future__ import annotations

import pytest
from conftest import random_text, record

from rnaernie import MotifMatcher

SIZES_MB = [1, 10, 50]
PYAHO_MAX_MB = 5
AHOCORAPY_BYTES = 100_000
MB = 1 << 20


def normalise(m: str) -> str:
    return m.strip().upper().replace("T", "U")


@pytest.fixture(scope="module", params=SIZES_MB, ids=lambda n: f"{n}MB")
def texts(request) -> list[str]:
    return [random_text(MB, seed=1000 + i) for i in range(request.param)]


@pytest.fixture(scope="module")
def matcher() -> MotifMatcher:
    return MotifMatcher.default()


@pytest.fixture(scope="module")
def pyaho(matcher):
    ahocorasick = pytest.importorskip("ahocorasick")
    auto = ahocorasick.Automaton()
    for word in {normalise(m) for m in matcher.motifs}:
        auto.add_word(word, len(word))
    auto.make_automaton()
    return auto


def find_pyaho(auto, texts: list[str]) -> list[list[tuple[int, int]]]:
    return [list(auto.iter(t)) for t in texts]


def test_matches_equal_pyahocorasick(matcher, pyaho):
    """Same (start, end, motif string) set as pyahocorasick on a 1 MB text (not timed)."""
    text = random_text(MB, seed=1000)
    hits = matcher.find([text])
    names = [normalise(m) for m in matcher.motifs]
    ours = {
        (s, e, names[m])
        for s, e, m in zip(hits.start.tolist(), hits.end.tolist(), hits.motif_id.tolist())
    }
    theirs = {(end + 1 - n, end + 1, text[end + 1 - n : end + 1]) for end, n in pyaho.iter(text)}
    assert ours == theirs


def _key(texts) -> str:
    return f"motifs-{len(texts)}MB"


def test_find_rnaernie(benchmark, matcher, texts):
    benchmark.group = _key(texts)
    hits = benchmark.pedantic(matcher.find, args=(texts,), rounds=3, iterations=1, warmup_rounds=1)
    record(
        benchmark,
        _key(texts),
        "rnaernie",
        n_bytes=len(texts) * MB,
        n_seqs=len(texts),
        n_matches=len(hits),
    )


def test_find_rnaernie_1thread(benchmark, matcher, texts):
    one = MotifMatcher(matcher.motifs, matcher.sources, matcher.source_names, threads=1)
    benchmark.group = _key(texts)
    hits = benchmark.pedantic(one.find, args=(texts,), rounds=3, iterations=1, warmup_rounds=1)
    record(
        benchmark,
        _key(texts),
        "rnaernie-1thread",
        n_bytes=len(texts) * MB,
        n_seqs=len(texts),
        n_matches=len(hits),
    )


def test_find_pyahocorasick_baseline(benchmark, pyaho, texts):
    sub = texts[:PYAHO_MAX_MB]
    benchmark.group = _key(texts)
    benchmark.extra_info["subset_mb"] = len(sub)
    out = benchmark.pedantic(find_pyaho, args=(pyaho, sub), rounds=2, iterations=1)
    record(
        benchmark,
        _key(texts),
        "pyahocorasick",
        n_bytes=len(sub) * MB,
        n_seqs=len(sub),
        n_matches=sum(map(len, out)),
    )


@pytest.fixture(scope="module")
def ahocorapy_tree(matcher):
    pytest.importorskip("ahocorapy")
    from ahocorapy.keywordtree import KeywordTree

    tree = KeywordTree()
    for word in {normalise(m) for m in matcher.motifs}:
        tree.add(word)
    tree.finalize()
    return tree


def test_find_ahocorapy_baseline(benchmark, ahocorapy_tree, texts):
    tree = ahocorapy_tree
    text = texts[0][:AHOCORAPY_BYTES]
    benchmark.group = _key(texts)
    benchmark.extra_info["subset_bytes"] = len(text)
    out = benchmark.pedantic(lambda: list(tree.search_all(text)), rounds=1, iterations=1)
    record(benchmark, _key(texts), "ahocorapy", n_bytes=len(text), n_seqs=1, n_matches=len(out))
