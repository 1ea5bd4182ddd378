// Secondary-structure decoders over an L x L pair-score matrix (the logits or probabilities of a
// pair head).
//
// Every decoder reads only the upper triangle scores[i * L + j] for i < j (the diagonal and the
// lower triangle are never read; symmetrise first if your model does not). One DecodeOptions
// selects the method and carries its settings:
//   * nested: the nested (pseudoknot-free) structure maximising sum(score - threshold) (Nussinov
//     DP) with canonical-pair, minimum-loop, no-lonely-pair and hard constraints. Sparse: the work
//     grows with the number of candidate pairs.
//   * mea: maximum expected accuracy over a base-pair probability matrix P (CONTRAfold /
//     ViennaRNA): the nested structure maximising sum_{(i,j) paired} 2 gamma P_ij
//     + sum_{i unpaired} q_i with q_i = 1 - sum_{j != i} P_ij (P read from the upper triangle),
//     under the same rules as nested; a pair also needs P_ij > threshold. Same DP, with pair
//     weights 2 gamma P_ij - q_i - q_j.
//   * greedy: mutual best partners with score > threshold (pseudoknots allowed).
//   * threshknot: ThreshKnot (Zhang et al. 2019) over probabilities: mutual best partners with
//     P_ij >= threshold (pseudoknots allowed). It is greedy with an inclusive threshold.
// mea and threshknot need every upper-triangle value in [0, 1]. The DPs accumulate in double.
// Indices are 0-based. Bad input throws std::invalid_argument with a message naming what is wrong.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rnaernie {

enum class DecodeMethod { kNested, kGreedy, kMea, kThreshKnot };

// "nested", "greedy", "mea", "threshknot" (the names the Python side uses).
const char* decode_method_name(DecodeMethod method);
DecodeMethod parse_decode_method(const std::string& name);  // throws std::invalid_argument

// Decoder settings, passed whole (mirrored field by field by rnaernie.structure.DecodeOptions).
struct DecodeOptions {
  DecodeMethod method = DecodeMethod::kNested;
  // A pair (i, j) may be chosen only when scores[i][j] > threshold (>= for threshknot). Pairs
  // forced by the constraint, or that involve a position it says must pair, are exempt. Must be
  // within the float32 range.
  double threshold = 0.0;
  // mea only: weight of a paired base against an unpaired one; > 0 and within the float32 range.
  double gamma = 1.0;
  // Only AU, GC, GU pairs (both orientations; case-insensitive, T counts as U). Pairs forced by
  // "( )" in the constraint are exempt.
  bool canonical_only = true;
  // A pair (i, j) needs j - i - 1 >= min_loop unpaired bases in between (hairpin loop length).
  int min_loop = 3;
  // nested and mea only: every chosen pair must stack on (i+1, j-1) or (i-1, j+1). Forced
  // "( )" pairs are exempt.
  bool no_lonely_pairs = false;
};

struct DecodeResult {
  std::vector<std::pair<int32_t, int32_t>> pairs;  // (i, j), i < j, sorted by i
  // nested, greedy, threshknot: sum of (score - threshold) over the pairs; mea: the MEA objective.
  double score = 0.0;
};

// Decodes one sequence. `scores` points at rows * cols float32 values, row-major. `constraint`
// (nested and mea only; nullptr: none) is a ViennaRNA-style hard constraint of the sequence's
// length. Symbols: '.' none, 'x' unpaired, '|' paired (any allowed partner), '<' paired downstream
// (i is the 5' base), '>' paired upstream (i is the 3' base), '(' ')' paired with each other
// (matched like brackets). Greedy ties go to the smaller partner index.
DecodeResult decode(const std::string& seq, const float* scores, int64_t rows, int64_t cols,
                    const DecodeOptions& options, const std::string* constraint = nullptr);

struct DecodeInput {
  const std::string* seq;
  const float* scores;
  int64_t rows;
  int64_t cols;
  const std::string* constraint;  // nullptr: none
};

// Runs decode over a batch on up to num_threads threads (<= 0: all hardware threads). An error in
// item k is rethrown as std::invalid_argument("batch index k: ...") for the smallest such k.
std::vector<DecodeResult> decode_batch(const std::vector<DecodeInput>& inputs,
                                       const DecodeOptions& options, int num_threads);

}  // namespace rnaernie
