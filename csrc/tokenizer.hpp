// Batch tokenizer: normalises RNA sequences (upper-case, T->U, whitespace dropped, IUPAC -> [UNK]) and
// writes padded token-id rows in the official RNAErnie layout [CLS] seq ([IND] TYPE) [SEP].
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.hpp"

namespace rnaernie {

struct SeqView {
  const char* data;
  int64_t size;
};

struct EncodeOptions {
  int64_t max_length = 0;        // row length limit including special tokens; 0 = none
  bool truncate = false;         // cut sequences that do not fit (else: error)
  bool replace_invalid = false;  // invalid characters -> [UNK] (else: error)
  bool add_special = true;       // [CLS] ... [SEP]
  int64_t window = 0;            // > 0: overlapping windows of this many nucleotides
  int64_t stride = 0;            // step between window starts (default: window)
  int threads = 0;               // 0 = all cores
};

// One output row: which sequence, and which normalised nucleotides [start, end) it holds.
struct RowSpan {
  int64_t seq;
  int64_t start;
  int64_t end;
};

struct Encoded {
  int64_t rows = 0, cols = 0;
  // rows * cols each; allocated uninitialised and written row by row by the workers (padding
  // included), so the page faults and writes of large batches are spread over the threads
  BigArray<int64_t> input_ids;       // padded with [PAD]
  BigArray<int64_t> attention_mask;  // 1 for real tokens
  std::vector<int64_t> lengths;         // rows: tokens per row, specials included
  std::vector<RowSpan> spans;           // rows
};

// Normalised length of each sequence (number of tokens, whitespace excluded).
// Throws std::invalid_argument naming sequence (index, or names[i] when given) and position of a bad byte.
std::vector<int64_t> normalized_lengths(const std::vector<SeqView>& seqs, bool replace_invalid,
                                        const std::vector<std::string>* names, int threads);

// Normalised k-mer spectra, k = 1..kmax (1 <= kmax <= 8): row s holds, for each k in turn, the counts of
// the 4^k k-mers of sequence s (columns in lexicographic order over A < C < G < U) divided by the
// number of windows of that k (n - k + 1, n = normalised length; 0 when n < k). Windows with an
// IUPAC code (or, with replace_invalid, a bad byte) count in the denominator but in no column.
// Returns (seqs.size(), sum 4^k) floats, row-major. Bad bytes throw as in normalized_lengths.
BigArray<float> kmer_spectra(const std::vector<SeqView>& seqs, int kmax, bool replace_invalid,
                             const std::vector<std::string>* names, int threads);

// types: one token id per sequence to place after [IND] (empty = no type section).
Encoded encode_batch(const std::vector<SeqView>& seqs, const std::vector<int64_t>& types,
                     const EncodeOptions& opt, const std::vector<std::string>* names = nullptr);

// Windows [start, end) of a sequence of n nucleotides: starts 0, stride, 2*stride, ...; the last window
// is aligned to the end so every nucleotide is covered; a sequence shorter than the window is one row.
std::vector<std::pair<int64_t, int64_t>> plan_windows(int64_t n, int64_t window, int64_t stride);

}  // namespace rnaernie
