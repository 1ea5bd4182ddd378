// Aho–Corasick motif matcher over the nucleotide alphabet {A, U, C, G}, as a dense DFA.
// Any other symbol (IUPAC code, special token) breaks a match; every occurrence is reported,
// overlapping ones included.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer.hpp"

namespace rnaernie {

struct MotifHit {
  int64_t start;  // 0-based
  int64_t end;    // exclusive
  int32_t motif;
};

struct MotifHits {
  size_t size = 0;
  BigArray<int64_t> seq, start, end;  // uninitialised until filled (see alloc_big)
  BigArray<int32_t> motif;
};

class MotifMatcher {
 public:
  // motifs are normalised like sequences (upper-case, T -> U); each must then be non-empty ACGU.
  explicit MotifMatcher(const std::vector<std::string>& motifs);

  int32_t num_motifs() const { return static_cast<int32_t>(length_.size()); }
  int32_t num_states() const { return static_cast<int32_t>(states_.size()); }
  int64_t max_length() const { return max_len_; }
  int32_t length(int32_t motif) const { return length_[motif]; }

  // All occurrences in a batch of raw sequences; positions are in normalised coordinates
  // (whitespace removed). Invalid characters raise std::invalid_argument naming sequence and position.
  MotifHits find(const std::vector<SeqView>& seqs, int threads,
                 const std::vector<std::string>* names = nullptr) const;

  // All occurrences in one row of token ids (nucleotide ids 35..38; anything else breaks matches),
  // appended to out in order of end position.
  void find_ids(const int64_t* ids, int64_t n, std::vector<MotifHit>& out) const;

 private:
  template <class Code, class Emit>
  void scan(int64_t n, Code&& code_at, Emit&& emit) const;

  // One packed record per state, numbered breadth-first so the shallow states that random text
  // visits most sit together in cache: DFA transitions (failure links folded in) and the range
  // in out_ of the motifs that end here (own ones first, then along the failure chain).
  struct State {
    std::array<int32_t, 4> next;
    int32_t out_begin;
    int32_t out_end;
  };
  struct Out {
    int32_t motif;
    int32_t length;
  };
  std::vector<State> states_;
  std::vector<Out> out_;
  std::vector<int32_t> length_;
  int64_t max_len_ = 0;
};

}  // namespace rnaernie
