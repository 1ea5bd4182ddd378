// Masked-language-model span selection at the three levels of RNAErnie, and the 80/10/10 replacement.
#pragma once

#include <cstdint>
#include <vector>

#include "motifs.hpp"

namespace rnaernie {

enum MaskLevel : int8_t { kBase = 0, kSubsequence = 1, kMotif = 2 };

struct MaskingOptions {
  double mask_prob = 0.15;       // budget = min(max_predictions, max(1, round(n * mask_prob)))
  int64_t max_predictions = 77;  // ceil(0.15 * 512), the official cap
  int64_t span_min = 5;          // subsequence level: spans of span_min..span_max, p(k) ∝ 1/(k-span_min+1)
  int64_t span_max = 8;
  bool base = true, subsequence = true, motif = true;  // levels to draw from, one per row
  int threads = 0;
};

// Chooses the positions to mask in each row of token ids (B, L). Maskable positions are nucleotides
// and [UNK]; special and type tokens never are. Motif level: occurrences of tier-0 motifs in random
// order, then tier-1 motifs in text order, whole and non-overlapping, within the budget.
// Deterministic in (seed, row index). Writes selected (B*L, 0/1) and level per row (B).
void select_mask_positions(const int64_t* ids, int64_t rows, int64_t cols, const MotifMatcher* matcher,
                           const std::vector<uint8_t>& motif_tier, const MaskingOptions& opt, uint64_t seed,
                           uint8_t* selected, int8_t* level);

// 80 % [MASK] / 10 % random nucleotide / 10 % unchanged on the selected positions, by the counter-based
// hash h = fmix32(uint32(b*L + l) ^ fmix32(seed)) shared with the Triton kernel. labels = original id
// where selected, -100 elsewhere.
void apply_mlm_replacement(const int64_t* ids, const uint8_t* selected, int64_t rows, int64_t cols,
                           uint32_t seed, int64_t* out_ids, int64_t* labels, int threads);

}  // namespace rnaernie
