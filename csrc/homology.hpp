// Homology search of genome windows against a library of family members (the screening
// detector's references): seeds (exact k-mers, or spaced seeds), then Smith–Waterman–Gotoh local
// alignment of the window against the references that the seeds point to, as BLASTN does.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"

namespace rnaernie {

// Linear scores of a local alignment; a gap of length g costs gap_open + g * gap_extend.
// Nucleotide codes 0..3; code 4 (ambiguous) mismatches everything, itself included.
struct AlignScoring {
  int match = 2;
  int mismatch = -3;
  int gap_open = 5;
  int gap_extend = 2;
};

struct LocalAlignment {
  int32_t score = 0;  // 0: no alignment
  int32_t ref = -1;
  int32_t q_begin = 0, q_end = 0;  // [begin, end) in the query
  int32_t r_begin = 0, r_end = 0;  // [begin, end) in the reference
};

// The best local alignment of a (length n) against b (length m) within the band of diagonals
// diag_lo <= j - i <= diag_hi (a[i] aligned to b[j]; the default: the whole matrix); its end is
// the first best cell in row order.
LocalAlignment smith_waterman(const uint8_t* a, int n, const uint8_t* b, int m, const AlignScoring& s,
                              int diag_lo = -(1 << 30), int diag_hi = 1 << 30);

// Low-complexity positions (DUST, Morgulis et al. 2006, in its windowed form): 1 for every position of
// a `window`-nt stretch whose triplet score sum_t c_t (c_t - 1) / 2 / (l - 1) exceeds `threshold`
// (c_t: count of triplet t among the stretch's l = window - 2 triplets; a sequence shorter than the
// window is one stretch). Triplets holding an ambiguous code (4) are not counted. threshold <= 0: none.
std::vector<uint8_t> dust_mask(const uint8_t* s, int64_t n, int window, double threshold);
// The same positions, written as `value` into out[0, n) (the others are left as they are).
void dust_fill(const uint8_t* s, int64_t n, int window, double threshold, uint8_t* out, uint8_t value);

// Codes of a sequence as byte_classes has them (A 0, U/T 1, C 2, G 3, either case); anything else 4.
std::vector<uint8_t> nucleotide_codes(const std::string& seq);

// A seed (a match of the seed's pattern) is extended without gaps until its score drops xdrop below the
// best; a reference whose best extension scores at least `ungapped` is a candidate, and the
// max_candidates best are aligned with gaps to the reference around that diagonal (pad nt each side).
struct SeedOptions {
  int ungapped = 36;
  int xdrop = 20;
  int max_candidates = 4;
  int pad = 32;  // also the band: diagonals within pad of the seed's
};

struct WindowAlignments {
  int64_t n = 0;
  int32_t families = 0;
  std::vector<int32_t> family_score;  // (n, families): best score of each family's references (0: none)
  std::vector<LocalAlignment> best;   // (n,): the best alignment (ref -1: none)
  std::vector<int32_t> candidates;    // (n,): references aligned (gapped)
};

class HomologyIndex {
 public:
  // refs are normalised sequences (ACGU; other letters never seed); family[i] in [0, families).
  // seed: the seed's pattern, '1' where the bases must match and '0' where they need not (a spaced
  // seed, as PatternHunter has it; "11111111111": an exact 11-mer); its first and last are '1', it
  // has 4 to 12 ones and spans at most 32 nt. Seeds found more than max_occurrences times in the
  // library are not indexed.
  // dust_window/dust_threshold: low-complexity stretches (dust_mask) of the references and of the
  // searched sequences give no seeds (alignments may still run through them).
  HomologyIndex(const std::vector<std::string>& refs, const std::vector<int32_t>& family, const std::string& seed,
                int max_occurrences, int dust_window = 64, double dust_threshold = 0.0);

  int k() const { return k_; }  // the seed's weight (its ones)
  int span() const { return span_; }
  int64_t num_refs() const { return static_cast<int64_t>(refs_.size()); }
  int32_t num_families() const { return families_; }
  int64_t indexed() const { return static_cast<int64_t>(occ_.size()); }

  // Windows seq[starts[i], starts[i] + width) (clipped to seq), each searched on its own (windows that
  // overlap share one lookup of their seeds; the results are those of separate searches).
  WindowAlignments align_windows(const std::string& seq, const std::vector<int64_t>& starts, int width,
                                 const AlignScoring& scoring, const SeedOptions& opt, int threads) const;

  // A search of windows on one strand of one of align_batch's sequences: starts (num_starts of them,
  // on that strand read 5'->3'; the minus strand is the sequence's reverse complement) and width.
  struct BatchJob {
    int64_t seq;
    bool minus;
    const int64_t* starts;
    int64_t num_starts;
    int width;
  };

  // Stretches of a sequence that give no seeds, as DUST's (a soft-masked genome's lower-case
  // repeats): num spans [data[2i], data[2i + 1]) on its plus strand, 0 <= start <= end <= length.
  struct Masked {
    const int64_t* data = nullptr;
    int64_t num = 0;
  };

  // align_windows of each job: each sequence's codes and DUST mask are made once (the minus strand's
  // from the plus strand's), and the sequences are shared out to the threads (the longest first;
  // each sequence's jobs searched on one thread, or on all of them when there is one sequence): for
  // the strands of many short records, where threads inside one would each get a few windows.
  // masked: none, or one entry per sequence.
  std::vector<WindowAlignments> align_batch(const std::vector<std::string>& seqs, const std::vector<BatchJob>& jobs,
                                            const AlignScoring& scoring, const SeedOptions& opt, int threads,
                                            const std::vector<Masked>& masked = {}) const;

 private:
  struct Strand {  // a strand's codes, and the codes seeds are read from: 4 where DUST masks them
    std::vector<uint8_t> codes, seeded;
    Strand reverse_complement() const;
  };
  Strand prepare(const std::string& seq, Masked masked) const;
  WindowAlignments search_strand(const std::vector<uint8_t>& codes, const std::vector<uint8_t>& seeded,
                                 const int64_t* starts, int64_t num_starts, int width, const AlignScoring& scoring,
                                 const SeedOptions& opt, int threads) const;
  // the seed's code at the last of span_ positions packed 2 bits each in a word (the last position
  // lowest): its runs of ones, each (shift, mask), the last run first
  uint32_t seed_code(uint64_t word) const {
    if (runs_.size() == 1) return static_cast<uint32_t>(word & runs_[0].mask);  // an exact k-mer
    uint32_t code = 0;
    int at = 0;
    for (const auto& r : runs_) {
      code |= static_cast<uint32_t>((word >> r.shift) & r.mask) << at;
      at += r.bits;
    }
    return code;
  }
  struct Run {
    int shift, bits;
    uint64_t mask;
  };
  std::vector<Run> runs_;
  std::vector<int32_t> free_;  // the seed's '0' positions (from its first)
  int k_;
  int span_;
  int dust_window_;
  double dust_threshold_;
  int32_t families_ = 0;
  std::vector<std::vector<uint8_t>> refs_;
  int64_t longest_ref_ = 0;
  std::vector<std::vector<uint8_t>> xrefs_;  // refs_ with ambiguous codes 5 (extensions compare bytes)
  std::vector<int32_t> family_;
  std::vector<uint64_t> present_;  // bit c: seed code c has occurrences (512 KB at k = 11: stays in
                                  // cache, where the offsets do not, for a sparse library)
  std::vector<uint32_t> offsets_;  // 4^k + 1: occurrences of seed code c are occ_[offsets_[c], offsets_[c + 1])
  struct Occurrence {
    int32_t ref;
    int32_t pos;
  };
  std::vector<Occurrence> occ_;
};

}  // namespace rnaernie
