#include "tokenizer.hpp"

#include <cstdio>
#include <stdexcept>

#include "common.hpp"

namespace rnaernie {
namespace {

std::string describe(int64_t index, const std::vector<std::string>* names) {
  std::string s = "sequence " + std::to_string(index);
  if (names && index < static_cast<int64_t>(names->size())) s += " ('" + (*names)[index] + "')";
  return s;
}

std::string show_byte(uint8_t b) {
  char buf[32];
  if (b >= 0x20 && b < 0x7f) {
    std::snprintf(buf, sizeof buf, "'%c'", static_cast<char>(b));
  } else {
    std::snprintf(buf, sizeof buf, "byte 0x%02X", b);
  }
  return buf;
}

// The byte class of seqs[s][i]; a byte that is neither a nucleotide, an IUPAC code nor whitespace
// throws, naming the sequence and position, unless replace_invalid (then it is returned as is).
inline int8_t checked_class(const std::array<int8_t, 256>& table, const uint8_t* p, int64_t i, int64_t s,
                            bool replace_invalid, const std::vector<std::string>* names) {
  const int8_t c = table[p[i]];
  if (c == kByteInvalid && !replace_invalid) {
    throw std::invalid_argument(describe(s, names) + ", position " + std::to_string(i) + ": invalid character " +
                                show_byte(p[i]) + " (expected A, C, G, U/T or an IUPAC code)");
  }
  return c;
}

inline int64_t token_of(int8_t cls) { return (cls >= 0 && cls < 4) ? kNucOffset + cls : kUnkId; }

// Writes the tokens of normalised nucleotides [start, end) of seq into out; returns tokens written.
int64_t write_tokens(const SeqView& s, bool clean, int64_t start, int64_t end, int64_t* out) {
  const auto& table = byte_classes();
  const auto* p = reinterpret_cast<const uint8_t*>(s.data);
  if (clean) {  // no whitespace: raw offset == normalised offset
    for (int64_t i = start; i < end; ++i) out[i - start] = token_of(table[p[i]]);
    return end - start;
  }
  int64_t k = 0, written = 0;
  for (int64_t i = 0; i < s.size && k < end; ++i) {
    const int8_t c = table[p[i]];
    if (c == kByteSkip) continue;
    if (k >= start) out[written++] = token_of(c);
    ++k;
  }
  return written;
}

}  // namespace

std::vector<int64_t> normalized_lengths(const std::vector<SeqView>& seqs, bool replace_invalid,
                                        const std::vector<std::string>* names, int threads) {
  std::vector<int64_t> lengths(seqs.size());
  const auto& table = byte_classes();
  parallel_for(static_cast<int64_t>(seqs.size()), threads, [&](int64_t b, int64_t e) {
    for (int64_t s = b; s < e; ++s) {
      const auto* p = reinterpret_cast<const uint8_t*>(seqs[s].data);
      int64_t n = 0;
      for (int64_t i = 0; i < seqs[s].size; ++i) {
        if (checked_class(table, p, i, s, replace_invalid, names) != kByteSkip) ++n;
      }
      lengths[s] = n;
    }
  });
  return lengths;
}

BigArray<float> kmer_spectra(const std::vector<SeqView>& seqs, int kmax, bool replace_invalid,
                             const std::vector<std::string>* names, int threads) {
  if (kmax < 1 || kmax > 8) throw std::invalid_argument("kmax must be in [1, 8], got " + std::to_string(kmax));
  int64_t width = 0;
  for (int k = 1; k <= kmax; ++k) width += int64_t{1} << (2 * k);
  const int64_t nseq = static_cast<int64_t>(seqs.size());
  auto out = alloc_big<float>(static_cast<size_t>(nseq * width));
  const auto& table = byte_classes();
  // byte class (A=0, U=1, C=2, G=3) -> lexicographic code (A=0, C=1, G=2, U=3)
  constexpr int64_t kLex[4] = {0, 3, 1, 2};
  parallel_for(nseq, threads, [&](int64_t b, int64_t e) {
    std::vector<uint32_t> counts(static_cast<size_t>(width));
    for (int64_t s = b; s < e; ++s) {
      std::fill(counts.begin(), counts.end(), 0U);
      const auto* p = reinterpret_cast<const uint8_t*>(seqs[s].data);
      int64_t n = 0, run = 0, code = 0;  // run: valid nucleotides ending here; code: last kmax of them
      const int64_t keep = (int64_t{1} << (2 * kmax)) - 1;
      for (int64_t i = 0; i < seqs[s].size; ++i) {
        const int8_t c = checked_class(table, p, i, s, replace_invalid, names);
        if (c == kByteSkip) continue;
        ++n;
        if (c < 0 || c > 3) {
          run = 0;
          continue;
        }
        code = ((code << 2) | kLex[c]) & keep;
        ++run;
        int64_t offset = 0;
        for (int k = 1; k <= kmax; ++k) {
          if (run >= k) ++counts[offset + (code & ((int64_t{1} << (2 * k)) - 1))];
          offset += int64_t{1} << (2 * k);
        }
      }
      float* row = out.get() + s * width;
      int64_t offset = 0;
      for (int k = 1; k <= kmax; ++k) {
        const int64_t size = int64_t{1} << (2 * k), windows = n - k + 1;
        for (int64_t j = 0; j < size; ++j) {
          row[offset + j] = windows > 0 ? static_cast<float>(static_cast<double>(counts[offset + j]) / windows) : 0.0F;
        }
        offset += size;
      }
    }
  });
  return out;
}

std::vector<std::pair<int64_t, int64_t>> plan_windows(int64_t n, int64_t window, int64_t stride) {
  if (window <= 0) throw std::invalid_argument("window must be positive, got " + std::to_string(window));
  if (stride <= 0 || stride > window) {
    throw std::invalid_argument("stride must be in [1, window=" + std::to_string(window) + "] so that no " +
                                "nucleotide is skipped, got " + std::to_string(stride));
  }
  std::vector<std::pair<int64_t, int64_t>> out;
  if (n <= window) {
    out.emplace_back(0, n);
    return out;
  }
  int64_t start = 0;
  for (; start + window < n; start += stride) out.emplace_back(start, start + window);
  out.emplace_back(n - window, n);  // last window aligned to the end
  return out;
}

Encoded encode_batch(const std::vector<SeqView>& seqs, const std::vector<int64_t>& types,
                     const EncodeOptions& opt, const std::vector<std::string>* names) {
  const int64_t nseq = static_cast<int64_t>(seqs.size());
  if (!types.empty() && static_cast<int64_t>(types.size()) != nseq) {
    throw std::invalid_argument("got " + std::to_string(types.size()) + " type ids for " +
                                std::to_string(nseq) + " sequences");
  }
  for (size_t i = 0; i < types.size(); ++i) {
    const int64_t t = types[i];
    if (!((t >= kTypeOffset && t < kTypeOffset + kNumTypes) || t == kMaskId)) {
      throw std::invalid_argument(describe(static_cast<int64_t>(i), names) + ": type id " +
                                  std::to_string(t) + " is not an RNA-type token or [MASK]");
    }
  }
  if (opt.max_length < 0) throw std::invalid_argument("max_length must be >= 0");
  if (opt.window < 0) throw std::invalid_argument("window must be >= 0 (0 = no windows)");
  if (opt.stride < 0) throw std::invalid_argument("stride must be >= 0 (0 = the window length)");
  const int64_t specials = (opt.add_special ? 2 : 0) + (types.empty() ? 0 : 2);
  const int64_t room = opt.max_length > 0 ? opt.max_length - specials : INT64_MAX;
  if (room <= 0) {
    throw std::invalid_argument("max_length " + std::to_string(opt.max_length) +
                                " leaves no room for nucleotides after " + std::to_string(specials) +
                                " special tokens");
  }
  if (opt.window > 0 && opt.window > room) {
    throw std::invalid_argument("window " + std::to_string(opt.window) + " does not fit max_length " +
                                std::to_string(opt.max_length) + " with special tokens");
  }

  std::vector<int64_t> n = normalized_lengths(seqs, opt.replace_invalid, names, opt.threads);
  std::vector<uint8_t> clean(nseq);
  for (int64_t s = 0; s < nseq; ++s) clean[s] = n[s] == seqs[s].size;

  Encoded enc;
  if (opt.window > 0) {
    const int64_t stride = opt.stride > 0 ? opt.stride : opt.window;
    for (int64_t s = 0; s < nseq; ++s) {
      for (auto [b, e] : plan_windows(n[s], opt.window, stride)) enc.spans.push_back({s, b, e});
    }
  } else {
    enc.spans.reserve(nseq);
    for (int64_t s = 0; s < nseq; ++s) {
      if (n[s] > room && !opt.truncate) {
        throw std::invalid_argument(describe(s, names) + " has " + std::to_string(n[s]) +
                                    " nucleotides, more than the " + std::to_string(room) +
                                    " that fit max_length " + std::to_string(opt.max_length) +
                                    "; pass truncate=True or use windows");
      }
      enc.spans.push_back({s, 0, std::min(n[s], room)});
    }
  }
  enc.rows = static_cast<int64_t>(enc.spans.size());
  for (const auto& sp : enc.spans) enc.cols = std::max(enc.cols, sp.end - sp.start + specials);
  enc.input_ids = alloc_big<int64_t>(static_cast<size_t>(enc.rows * enc.cols));
  enc.attention_mask = alloc_big<int64_t>(static_cast<size_t>(enc.rows * enc.cols));
  enc.lengths.assign(enc.rows, 0);

  parallel_for(enc.rows, opt.threads, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const RowSpan& sp = enc.spans[r];
      int64_t* row = enc.input_ids.get() + r * enc.cols;
      int64_t k = 0;
      if (opt.add_special) row[k++] = kClsId;
      k += write_tokens(seqs[sp.seq], clean[sp.seq], sp.start, sp.end, row + k);
      if (!types.empty()) {
        row[k++] = kIndId;
        row[k++] = types[sp.seq];
      }
      if (opt.add_special) row[k++] = kSepId;
      enc.lengths[r] = k;
      std::fill(row + k, row + enc.cols, kPadId);
      int64_t* mask = enc.attention_mask.get() + r * enc.cols;
      std::fill(mask, mask + k, 1);
      std::fill(mask + k, mask + enc.cols, 0);
    }
  });
  return enc;
}

}  // namespace rnaernie
