// Secondary-structure decoders over an L x L pair-score matrix (e.g. the logits of a pair head).
//
// Two decoders, both reading only the upper triangle scores[i * L + j] for i < j (the diagonal and
// the lower triangle are never read; symmetrise first if your model does not):
//   * decode_nested: the nested (pseudoknot-free) structure maximising sum(score - threshold)
//     (Nussinov / MEA-style DP) with canonical-pair, minimum-loop, no-lonely-pair and hard
//     constraints. Sparse: the work grows with the number of candidate pairs.
//   * decode_greedy: mutual best partners above the threshold (pseudoknots allowed).
// Indices are 0-based. Bad input throws std::invalid_argument with a message naming what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rnaernie {

struct DecodeOptions {
  // A pair (i, j) may be chosen only when scores[i][j] > threshold (pairs forced by the
  // constraint, or that involve a position the constraint says must pair, are exempt).
  double threshold = 0.0;
  // Only AU, GC, GU pairs (both orientations; case-insensitive, T counts as U). Pairs forced by
  // "( )" in the constraint are exempt.
  bool canonical_only = true;
  // A pair (i, j) needs j - i - 1 >= min_loop unpaired bases in between (hairpin loop length).
  int min_loop = 3;
  // Every chosen pair must stack on (i+1, j-1) or (i-1, j+1). Forced "( )" pairs are exempt.
  bool no_lonely_pairs = false;
  // ViennaRNA-style hard constraint of the sequence's length; empty with has_constraint=false
  // means none. Symbols: '.' none, 'x' unpaired, '|' paired (any allowed partner), '<' paired
  // downstream (i is the 5' base), '>' paired upstream (i is the 3' base), '(' ')' paired with
  // each other (matched like brackets).
  bool has_constraint = false;
  std::string constraint;
};

struct DecodeResult {
  std::vector<std::pair<int32_t, int32_t>> pairs;  // (i, j), i < j, sorted by i
  double score = 0.0;                              // sum of (score - threshold) over pairs
};

// Nested decoder. `scores` points at rows * cols float32 values, row-major.
DecodeResult decode_nested(const std::string& seq, const float* scores, int64_t rows, int64_t cols,
                           const DecodeOptions& options);

// Greedy decoder (pseudoknots allowed): among allowed pairs with score > threshold (canonical if
// requested, j - i - 1 >= min_loop), keep (i, j) when j is i's best partner and i is j's best
// partner; ties go to the smaller partner index. Constraint fields and no_lonely_pairs are ignored.
DecodeResult decode_greedy(const std::string& seq, const float* scores, int64_t rows, int64_t cols,
                           const DecodeOptions& options);

struct DecodeInput {
  const std::string* seq;
  const float* scores;
  int64_t rows;
  int64_t cols;
  const DecodeOptions* options;
};

// Runs decode_nested (or decode_greedy when greedy) over a batch on up to num_threads threads
// (<= 0: all hardware threads). An error in item k is rethrown as
// std::invalid_argument("batch index k: ...") for the smallest such k.
std::vector<DecodeResult> decode_batch(const std::vector<DecodeInput>& inputs, bool greedy,
                                       int num_threads);

}  // namespace rnaernie
