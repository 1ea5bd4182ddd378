from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnaernie.motifs import MotifMatcher


def naive(seqs, motifs):
    """Every occurrence by str.find, after the same normalisation."""
    norm = [m.upper().replace("T", "U") for m in motifs]
    out = set()
    for si, s in enumerate(seqs):
        s = s.upper().replace("T", "U")
        for mi, m in enumerate(norm):
            i = s.find(m)
            while i >= 0:
                out.add((si, i, i + len(m), mi))
                i = s.find(m, i + 1)
    return out


def as_set(h):
    return set(zip(h.seq_index.tolist(), h.start.tolist(), h.end.tolist(), h.motif_id.tolist()))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet="ACGUTN", max_size=80), max_size=5),
    st.lists(st.text(alphabet="ACGUT", min_size=1, max_size=6), min_size=1, max_size=12),
)
def test_matches_naive_scan(seqs, motifs):
    assert as_set(MotifMatcher(motifs).find(seqs)) == naive(seqs, motifs)


def test_default_lists_on_long_text_match_naive_and_chunking():
    m = MotifMatcher.default()
    assert len(m) == 3232 + 1805 + 10000  # each list read once per distinct motif
    assert set(np.unique(m.sources).tolist()) == {0, 1, 2}
    rng = np.random.default_rng(1)
    text = (
        np.frombuffer(b"ACGU", np.uint8)[rng.integers(0, 4, 3_000_000)].tobytes().decode()
    )  # > 1 MiB chunk
    h = m.find([text])
    # every reported hit is real, and no hit is lost or doubled at chunk borders
    sample = rng.choice(len(h), size=2000, replace=False)
    motifs = [x.upper().replace("T", "U") for x in m.motifs]
    for k in sample:
        assert text[h.start[k] : h.end[k]] == motifs[h.motif_id[k]]
    border = 1 << 20
    window = text[border - 300 : border + 300]
    local = naive([window], m.motifs)
    got = {
        (0, s - (border - 300), e - (border - 300), mi)
        for s, e, mi in zip(h.start.tolist(), h.end.tolist(), h.motif_id.tolist())
        if s >= border - 300 and e <= border + 300
    }
    assert got == local
    key = h.start * len(m) + h.motif_id
    assert len(np.unique(key)) == len(h)


def test_whitespace_positions_are_normalised():
    h = MotifMatcher(["ACG"]).find(["UA C\nG", "acg"])
    assert as_set(h) == {(0, 1, 4, 0), (1, 0, 3, 0)}


def test_sources_and_errors():
    m = MotifMatcher(["ACG", "GG"], sources=[0, 1], source_names=("a", "Statistics"))
    assert m.tiers.tolist() == [0, 1]
    h = m.find(["ACGG"])
    assert h.source.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"motif 1 \('AXG'\)"):
        MotifMatcher(["ACG", "AXG"])
    with pytest.raises(ValueError, match="motif 0 is empty"):
        MotifMatcher([""])
    with pytest.raises(ValueError, match=r"sequence 1 \('r2'\), position 0"):
        MotifMatcher(["A"]).find(["A", "?A"], names=["r1", "r2"])
    with pytest.raises(ValueError, match="sources has"):
        MotifMatcher(["A"], sources=[0, 0])


def test_empty_inputs():
    m = MotifMatcher(["A"])
    assert len(m.find([])) == 0
    assert len(m.find(["", "NNN"])) == 0
