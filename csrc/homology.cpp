#include "homology.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>

namespace rnaernie {

std::vector<uint8_t> nucleotide_codes(const std::string& seq) {
  const auto& cls = byte_classes();
  std::vector<uint8_t> out(seq.size());
  for (size_t i = 0; i < seq.size(); ++i) {
    const int8_t c = cls[static_cast<uint8_t>(seq[i])];
    out[i] = (c >= 0 && c < 4) ? static_cast<uint8_t>(c) : uint8_t{4};
  }
  return out;
}

std::vector<uint8_t> dust_mask(const uint8_t* s, int64_t n, int window, double threshold) {
  std::vector<uint8_t> mask(static_cast<size_t>(std::max<int64_t>(n, 0)), 0);
  dust_fill(s, n, window, threshold, mask.data(), 1);
  return mask;
}

void dust_fill(const uint8_t* s, int64_t n, int window, double threshold, uint8_t* mask, uint8_t value) {
  if (threshold <= 0.0 || n < 3) return;
  if (window < 4) throw std::invalid_argument("the DUST window must be at least 4 nt");
  const int64_t w = std::min<int64_t>(window, n);
  const double denom = static_cast<double>(w - 2 - 1);
  if (denom <= 0) return;
  // the least triplet sum whose score sum / denom exceeds the threshold (the same comparison in
  // doubles, done once: scores grow with the sum)
  int64_t least = std::max<int64_t>(0, static_cast<int64_t>(threshold * denom) - 2);
  while (!(static_cast<double>(least) / denom > threshold)) ++least;
  std::vector<int8_t> trip(static_cast<size_t>(n - 2));  // triplet codes; -1 where one is ambiguous
  for (int64_t p = 0; p + 2 < n; ++p)
    trip[p] = (s[p] > 3 || s[p + 1] > 3 || s[p + 2] > 3) ? int8_t{-1}
                                                         : static_cast<int8_t>(s[p] * 16 + s[p + 1] * 4 + s[p + 2]);
  int counts[64] = {0};
  int64_t sum = 0;  // sum_t c_t (c_t - 1) / 2
  for (int64_t p = 0; p + 3 <= w; ++p)
    if (trip[p] >= 0) sum += counts[trip[p]]++;
  for (int64_t a = 0, filled = 0;; ++a) {  // the stretch [a, a + w); mask[.. filled) is set
    if (sum >= least) {
      for (int64_t p = std::max(a, filled); p < a + w; ++p) mask[p] = value;
      filled = a + w;
    }
    if (a + w >= n) break;
    if (trip[a] >= 0) sum -= --counts[trip[a]];
    if (trip[a + w - 2] >= 0) sum += counts[trip[a + w - 2]]++;
  }
}

// The row passes vectorise; on x86-64 Linux (glibc: the clones are chosen through an ifunc) with a
// compiler that has target_clones, an AVX2 copy is built beside the baseline one and chosen at load
// time on a CPU that has AVX2 (the same results: integer arithmetic).
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define RNAERNIE_AVX2_CLONE __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef RNAERNIE_AVX2_CLONE
#define RNAERNIE_AVX2_CLONE
#endif

RNAERNIE_AVX2_CLONE
LocalAlignment smith_waterman(const uint8_t* a, int n, const uint8_t* b, int m, const AlignScoring& s,
                              int diag_lo, int diag_hi) {
  // Gotoh's recurrences over rows i of a. Ties: the diagonal before a gap, extending a gap before
  // opening one, the first best cell in row order. Cells off the band (j - i outside
  // [diag_lo, diag_hi]) hold H = 0 and no gap. Each cell notes where its H and gaps came from (a
  // byte), and the best alignment's start is traced back from its end: the start that carrying
  // each cell's start along would give, without carrying it.
  constexpr int kNeg = -(1 << 28);
  // the byte: H from the diagonal (kDiag), the diagonal of a cell with H <= 0 (kStart: the alignment
  // starts here), the horizontal gap (kE) or the vertical one (kF); kEOpen / kFOpen: that gap opens
  // here (from H of the cell to the left / above) rather than extends
  constexpr uint8_t kDiag = 0, kStart = 1, kE = 2, kF = 3, kEOpen = 4, kFOpen = 8;
  const int open = s.gap_open + s.gap_extend, ext = s.gap_extend;
  const int lo = std::max(diag_lo, -n), hi = std::min(diag_hi, m);
  if (n <= 0 || m <= 0 || lo > hi) return LocalAlignment{};
  const int64_t width = std::min<int64_t>(m, static_cast<int64_t>(hi) - lo + 1);
  auto row_lo = [&](int i) { return std::max(1, i + lo); };
  std::vector<uint8_t> from(static_cast<size_t>(n) * static_cast<size_t>(width));
  std::vector<int32_t> h_prev(m + 1, 0), h_cur(m + 1, 0), f(m + 1, kNeg), h0s(m + 1), hxs(m + 1), es(m + 1);
  // the score of each query code (0..4) against b[j - 1]: profile[c * (m + 1) + j]
  std::vector<int32_t> profile(5 * static_cast<size_t>(m + 1), s.mismatch);
  for (int c = 0; c < 4; ++c)
    for (int j = 1; j <= m; ++j)
      if (b[j - 1] == c) profile[c * static_cast<size_t>(m + 1) + j] = s.match;
  LocalAlignment best;
  for (int i = 1; i <= n; ++i) {
    const int jlo = row_lo(i), jhi = std::min(m, i + hi);
    if (jlo > jhi) {
      if (i + diag_lo > m) break;  // the band has left the matrix
      continue;                    // not entered yet: both rows are still all zero
    }
    const int32_t* sc = profile.data() + (a[i - 1] < 4 ? a[i - 1] : 4) * static_cast<size_t>(m + 1);
    const int32_t* hp = h_prev.data();
    int32_t* hc = h_cur.data();
    int32_t* fj = f.data();
    int32_t* h0 = h0s.data();
    int32_t* hx = hxs.data();
    int32_t* ej = es.data();
    uint8_t* dir = from.data() + static_cast<size_t>(i - 1) * width - jlo;
    // Three passes over the row: what does not depend on the cell to the left (the diagonal and
    // the vertical gap: vectorisable), the horizontal gap (a chain of two operations per cell; it
    // opens from the cell to the left's best without that gap: when the gap is H it extends at least
    // as well as it would open again, gap_open >= 0, so both give the same value and origin), and
    // the cell's H and origin byte (vectorisable).
    for (int j = jlo; j <= jhi; ++j) {
      const int32_t f_ext = fj[j] - ext, f_open = hp[j] - open;
      const int32_t fv = std::max(f_open, f_ext);
      fj[j] = fv;
      const int32_t d = hp[j - 1] + sc[j];
      h0[j] = d;
      hx[j] = std::max(std::max(d, fv), 0);
      dir[j] = static_cast<uint8_t>((f_open > f_ext ? kFOpen : 0) | (hp[j - 1] > 0 ? kDiag : kStart));
    }
    int32_t e = kNeg, hx_left = 0;
    for (int j = jlo; j <= jhi; ++j) {
      const int32_t e_ext = e - ext, e_open = hx_left - open;
      const bool e_opens = e_open > e_ext;
      e = e_opens ? e_open : e_ext;
      ej[j] = e;
      dir[j] |= e_opens ? kEOpen : 0;
      hx_left = hx[j];
    }
    int32_t row_max = 0;
    for (int j = jlo; j <= jhi; ++j) {
      const int32_t d = h0[j], ev = ej[j], fv = fj[j];
      const bool take_e = ev > d;
      int32_t h = take_e ? ev : d;
      const bool take_f = fv > h;
      h = take_f ? fv : h;
      h = std::max(h, 0);
      hc[j] = h;
      const uint8_t src = take_f ? kF : take_e ? kE : 0;
      dir[j] = static_cast<uint8_t>(src ? ((dir[j] & ~3) | src) : dir[j]);
      row_max = std::max(row_max, h);
    }
    if (row_max > best.score) {  // the first cell of the row that beats the best so far
      int j = jlo;
      while (hc[j] <= best.score) ++j;
      best.score = hc[j];
      best.q_end = i;
      best.r_end = j;
      for (++j; j <= jhi; ++j)
        if (hc[j] > best.score) {
          best.score = hc[j];
          best.r_end = j;
        }
    }
    hc[jlo - 1] = 0;  // the cell left of the band reads as H = 0 in the next row
    std::swap(h_prev, h_cur);
  }
  if (best.score <= 0) return best;
  // trace back from the best cell (an H state) to the diagonal step that started the alignment
  int i = best.q_end, j = best.r_end;
  uint8_t state = kDiag;  // kDiag: at H; kE, kF: inside that gap
  for (;;) {
    const uint8_t d = from[static_cast<size_t>(i - 1) * width + (j - row_lo(i))];
    if (state == kDiag) {
      const uint8_t src = d & 3;
      if (src == kStart) break;
      if (src == kDiag) {
        --i;
        --j;
      } else {
        state = src;
      }
    } else if (state == kE) {
      if (d & kEOpen) state = kDiag;  // the cell to the left's H (a diagonal or vertical-gap H)
      --j;
    } else {
      if (d & kFOpen) state = kDiag;
      --i;
    }
  }
  best.q_begin = i - 1;
  best.r_begin = j - 1;
  return best;
}

HomologyIndex::HomologyIndex(const std::vector<std::string>& refs, const std::vector<int32_t>& family,
                             const std::string& seed, int max_occurrences, int dust_window, double dust_threshold)
    : k_(static_cast<int>(std::count(seed.begin(), seed.end(), '1'))),
      span_(static_cast<int>(seed.size())),
      dust_window_(dust_window),
      dust_threshold_(dust_threshold) {
  if (dust_threshold > 0 && dust_window < 4) throw std::invalid_argument("the DUST window must be at least 4 nt");
  if (seed.find_first_not_of("01") != std::string::npos || seed.empty() || seed.front() != '1' ||
      seed.back() != '1' || k_ < 4 || k_ > 12 || span_ > 32)
    throw std::invalid_argument("a seed is a pattern of '1' and '0' that starts and ends with '1', with 4 to 12 ones, "
                                "at most 32 long; got '" + seed + "'");
  for (int i = span_ - 1; i >= 0;) {  // runs of ones, the last first (the code's lowest bits)
    if (seed[i] == '0') {
      free_.insert(free_.begin(), i--);
      continue;
    }
    int j = i;
    while (j > 0 && seed[j - 1] == '1') --j;
    const int bits = 2 * (i - j + 1);
    runs_.push_back(Run{2 * (span_ - 1 - i), bits, (uint64_t{1} << bits) - 1});
    i = j - 1;
  }
  if (max_occurrences < 1) throw std::invalid_argument("max_occurrences must be >= 1");
  if (family.size() != refs.size()) throw std::invalid_argument("one family per reference sequence is needed");
  refs_.reserve(refs.size());
  for (const auto& r : refs) refs_.push_back(nucleotide_codes(r));
  for (const auto& r : refs_) longest_ref_ = std::max(longest_ref_, static_cast<int64_t>(r.size()));
  xrefs_ = refs_;  // for the ungapped extensions: ambiguous 5, never equal to a query code
  for (auto& r : xrefs_)
    for (auto& c : r)
      if (c > 3) c = 5;
  for (const int32_t f : family) {
    if (f < 0) throw std::invalid_argument("family indices must be >= 0");
    families_ = std::max(families_, f + 1);
  }
  family_ = family;
  const uint32_t size = uint32_t{1} << (2 * k_);
  const uint64_t span_mask = span_ == 32 ? ~uint64_t{0} : (uint64_t{1} << (2 * span_)) - 1;
  std::vector<uint32_t> count(size + 1, 0);
  std::vector<std::vector<uint8_t>> low;  // each reference's low-complexity positions: no seeds
  low.reserve(refs_.size());
  for (const auto& r : refs_) low.push_back(dust_mask(r.data(), static_cast<int64_t>(r.size()), dust_window, dust_threshold));
  // fn(code, position) for every seed of reference r: every stretch of span_ unmasked bases
  auto each_kmer = [&](size_t r, auto&& fn) {
    const auto& s = refs_[r];
    uint64_t word = 0;
    int valid = 0;
    for (size_t p = 0; p < s.size(); ++p) {
      if (s[p] > 3 || low[r][p]) {
        valid = 0;
        continue;
      }
      word = ((word << 2) | s[p]) & span_mask;
      if (++valid >= span_) fn(seed_code(word), static_cast<int32_t>(p + 1 - span_));
    }
  };
  for (size_t r = 0; r < refs_.size(); ++r) each_kmer(r, [&](uint32_t c, int32_t) { ++count[c]; });
  for (uint32_t c = 0; c < size; ++c)
    if (count[c] > static_cast<uint32_t>(max_occurrences)) count[c] = 0;  // too frequent: not a seed
  offsets_.assign(size + 1, 0);
  present_.assign((size + 63) / 64, 0);
  for (uint32_t c = 0; c < size; ++c) {
    offsets_[c + 1] = offsets_[c] + count[c];
    if (count[c]) present_[c >> 6] |= uint64_t{1} << (c & 63);
  }
  occ_.resize(offsets_[size]);
  std::vector<uint32_t> fill(offsets_.begin(), offsets_.end() - 1);
  for (size_t r = 0; r < refs_.size(); ++r)
    each_kmer(r, [&](uint32_t c, int32_t pos) {
      if (count[c]) occ_[fill[c]++] = Occurrence{static_cast<int32_t>(r), pos};
    });
}

namespace {

// Bit i set where a[i] == b[i], for 8 bytes (SWAR: a byte of a ^ b is zero exactly where they agree).
inline uint32_t equal8(const uint8_t* a, const uint8_t* b) {
  uint64_t x, y;
  std::memcpy(&x, a, 8);
  std::memcpy(&y, b, 8);
  x ^= y;
  constexpr uint64_t k7f = 0x7f7f7f7f7f7f7f7fULL;
  const uint64_t zero = ~(((x & k7f) + k7f) | x | k7f);  // high bit of each zero byte
  return static_cast<uint32_t>(((zero >> 7) * 0x0102040810204080ULL) >> 56);
}

// An ungapped extension over 8 positions at once: for each match pattern (bit t: position t
// matches, in walking order), the score change, the best and worst running score, and the largest
// fall within the 8 steps. When neither the fall from the best so far nor the fall inside the
// block exceeds the X-drop, the block is taken whole; otherwise it is walked step by step.
struct Block8 {
  int16_t sum, hi, lo, fall;
};

std::array<Block8, 256> block_table(int match, int mismatch) {
  std::array<Block8, 256> t{};
  for (int b = 0; b < 256; ++b) {
    int run = 0, hi = -(1 << 14), lo = 1 << 14, top = 0, fall = 0;
    for (int i = 0; i < 8; ++i) {
      run += (b >> i & 1) ? match : mismatch;
      hi = std::max(hi, run);
      lo = std::min(lo, run);
      if (i > 0) fall = std::max(fall, top - run);
      top = i == 0 ? run : std::max(top, run);
    }
    t[b] = Block8{static_cast<int16_t>(run), static_cast<int16_t>(hi), static_cast<int16_t>(lo),
                  static_cast<int16_t>(fall)};
  }
  return t;
}

inline void prefetch(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p);
#else
  (void)p;
#endif
}

inline uint32_t reverse8(uint32_t b) {
  b = ((b & 0xF0u) >> 4) | ((b & 0x0Fu) << 4);
  b = ((b & 0xCCu) >> 2) | ((b & 0x33u) << 2);
  return ((b & 0xAAu) >> 1) | ((b & 0x55u) << 1);
}

}  // namespace

WindowAlignments HomologyIndex::align_windows(const std::string& seq, const std::vector<int64_t>& starts, int width,
                                              const AlignScoring& scoring, const SeedOptions& opt,
                                              int threads) const {
  const Strand strand = prepare(seq, Masked{});
  return search_strand(strand.codes, strand.seeded, starts.data(), static_cast<int64_t>(starts.size()), width, scoring,
                       opt, threads);
}

HomologyIndex::Strand HomologyIndex::prepare(const std::string& seq, Masked masked) const {
  Strand s;
  s.codes = nucleotide_codes(seq);
  s.seeded = s.codes;
  const int64_t n = static_cast<int64_t>(s.codes.size());
  dust_fill(s.codes.data(), n, dust_window_, dust_threshold_, s.seeded.data(), 4);
  for (int64_t i = 0; i < masked.num; ++i)  // spans checked by align_batch
    std::fill(s.seeded.begin() + masked.data[2 * i], s.seeded.begin() + masked.data[2 * i + 1], uint8_t{4});
  return s;
}

namespace {

inline uint64_t bswap64(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
  return __builtin_bswap64(x);
#else
  x = (x >> 32) | (x << 32);
  x = ((x & 0xFFFF0000FFFF0000ULL) >> 16) | ((x & 0x0000FFFF0000FFFFULL) << 16);
  return ((x & 0xFF00FF00FF00FF00ULL) >> 8) | ((x & 0x00FF00FF00FF00FFULL) << 8);
#endif
}

// out[0, n) = in[0, n) reversed and complemented (codes 0..4: A 0 <-> U 1, C 2 <-> G 3, 4 stays),
// 8 bytes at a time: a byte-swapped word, and bit 0 of each byte flipped where bit 2 is clear
void reverse_complement_codes(const uint8_t* in, size_t n, uint8_t* out) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    std::memcpy(&x, in + n - 8 - i, 8);
    x = bswap64(x);
    x ^= (~x >> 2) & kOnes;
    std::memcpy(out + i, &x, 8);
  }
  for (; i < n; ++i) {
    const uint8_t c = in[n - 1 - i];
    out[i] = c < 4 ? static_cast<uint8_t>(c ^ 1) : c;
  }
}

}  // namespace

HomologyIndex::Strand HomologyIndex::Strand::reverse_complement() const {
  // the codes complemented and reversed, and so the seeded codes: a stretch's triplets are those
  // of its reverse complement, complemented, so both hold the same DUST triplet counts, and the
  // masked stretches of one strand are those of the other
  Strand r;
  r.codes.resize(codes.size());
  r.seeded.resize(seeded.size());
  reverse_complement_codes(codes.data(), codes.size(), r.codes.data());
  reverse_complement_codes(seeded.data(), seeded.size(), r.seeded.data());
  return r;
}

WindowAlignments HomologyIndex::search_strand(const std::vector<uint8_t>& codes, const std::vector<uint8_t>& seeded,
                                              const int64_t* starts, int64_t num_starts, int width,
                                              const AlignScoring& scoring, const SeedOptions& opt,
                                              int threads) const {
  if (width < 1) throw std::invalid_argument("window width must be >= 1");
  if (opt.max_candidates < 1 || opt.pad < 0 || opt.ungapped < 0 || opt.xdrop < 0)
    throw std::invalid_argument("seed options: max_candidates >= 1; pad, ungapped, xdrop >= 0");
  const int64_t len = static_cast<int64_t>(codes.size());
  for (int64_t i = 0; i < num_starts; ++i)
    if (starts[i] < 0 || starts[i] >= std::max<int64_t>(len, 1))
      throw std::invalid_argument("window start outside the sequence");
  WindowAlignments out;
  out.n = num_starts;
  out.families = families_;
  out.family_score.assign(out.n * families_, 0);
  out.best.assign(out.n, LocalAlignment{});
  out.candidates.assign(out.n, 0);
  const uint64_t span_mask = span_ == 32 ? ~uint64_t{0} : (uint64_t{1} << (2 * span_)) - 1;
  const std::array<Block8, 256> blocks = block_table(scoring.match, scoring.mismatch);
  // the windows in start order (the minus strand's come in descending order): wstart, wend
  // (clipped to the sequence) and worig, the window's index in `starts`
  const int64_t nw = num_starts;
  std::vector<int64_t> worig(nw), wstart(nw), wend(nw);
  for (int64_t w = 0; w < nw; ++w) worig[w] = w;
  if (!std::is_sorted(starts, starts + nw))
    std::stable_sort(worig.begin(), worig.end(), [&](int64_t x, int64_t y) { return starts[x] < starts[y]; });
  for (int64_t w = 0; w < nw; ++w) {
    wstart[w] = starts[worig[w]];
    wend[w] = std::min<int64_t>(wstart[w] + width, len);
  }
  // X-drop walks along the diagonal D (q[p] faces ref[p + D]) in sequence coordinates. Right: from
  // p while p < end; its best running score, and where it stopped (the position whose step fell
  // more than xdrop below the best), or end. Left: from p down while p >= first; its best, and where
  // it stopped, or first - 1. A walk over 8 positions whose score stays within the X-drop is taken
  // as one block (the same result as 8 steps).
  struct Walk {
    int32_t best;
    int64_t stop;
    bool stopped;
  };
  const uint8_t* qc = codes.data();
  auto step = [&](const uint8_t* r, int64_t p, int64_t diag) {
    return qc[p] == r[p + diag] ? scoring.match : scoring.mismatch;
  };
  // For X-drops up to kTableXdrop, 8 positions are taken in one step whatever happens in them: a
  // table gives, for the fall d = best - run entering them and their match pattern, how much the
  // best rises and the fall after them, or at which of them the walk stops.
  struct XStep {
    int16_t gain;
    uint8_t fall;
    int8_t stop;  // -1: none
  };
  constexpr int kTableXdrop = 64;
  const bool tabled = opt.xdrop <= kTableXdrop && scoring.match <= 1000 && scoring.mismatch >= -1000;
  std::vector<XStep> xsteps;
  if (tabled) {
    xsteps.resize(static_cast<size_t>(opt.xdrop + 1) * 256);
    for (int d = 0; d <= opt.xdrop; ++d)
      for (int pat = 0; pat < 256; ++pat) {
        int run = 0, top = d, stop = -1;
        for (int t = 0; t < 8 && stop < 0; ++t) {
          run += (pat >> t & 1) ? scoring.match : scoring.mismatch;
          top = std::max(top, run);
          if (top - run > opt.xdrop) stop = t;
        }
        xsteps[d * 256 + pat] = XStep{static_cast<int16_t>(top - d), static_cast<uint8_t>(stop < 0 ? top - run : 0),
                                      static_cast<int8_t>(stop)};
      }
  }
  auto walk_right = [&](const uint8_t* r, int64_t diag, int64_t p, int64_t end) {
    int32_t best = 0, run = 0;
    if (tabled) {
      int fall = 0;
      for (; p + 8 <= end; p += 8) {
        const XStep x = xsteps[fall * 256 + equal8(qc + p, r + (p + diag))];
        best += x.gain;
        if (x.stop >= 0) return Walk{best, p + x.stop, true};
        fall = x.fall;
      }
      run = best - fall;
    }
    while (p < end) {
      if (p + 8 <= end) {
        const Block8& b = blocks[equal8(qc + p, r + (p + diag))];
        if (best - (run + b.lo) <= opt.xdrop && b.fall <= opt.xdrop) {
          best = std::max(best, run + b.hi);
          run += b.sum;
          p += 8;
          continue;
        }
      }
      for (const int64_t stop = std::min(end, p + 8); p < stop; ++p) {
        run += step(r, p, diag);
        best = std::max(best, run);
        if (best - run > opt.xdrop) return Walk{best, p, true};
      }
    }
    return Walk{best, end, false};
  };
  auto walk_left = [&](const uint8_t* r, int64_t diag, int64_t p, int64_t first) {
    int32_t best = 0, run = 0;
    if (tabled) {
      int fall = 0;
      for (; p - 7 >= first; p -= 8) {
        const XStep x = xsteps[fall * 256 + reverse8(equal8(qc + p - 7, r + (p - 7 + diag)))];
        best += x.gain;
        if (x.stop >= 0) return Walk{best, p - x.stop, true};
        fall = x.fall;
      }
      run = best - fall;
    }
    while (p >= first) {
      if (p - 7 >= first) {
        const Block8& b = blocks[reverse8(equal8(qc + p - 7, r + (p - 7 + diag)))];
        if (best - (run + b.lo) <= opt.xdrop && b.fall <= opt.xdrop) {
          best = std::max(best, run + b.hi);
          run += b.sum;
          p -= 8;
          continue;
        }
      }
      for (const int64_t stop = std::max(first, p - 7); p >= stop; --p) {
        run += step(r, p, diag);
        best = std::max(best, run);
        if (best - run > opt.xdrop) return Walk{best, p, true};
      }
    }
    return Walk{best, first - 1, false};
  };
  struct Candidate {
    int64_t window;
    int32_t ungapped, ref, diag;  // diag: in window coordinates (ref position - window position)
  };
  struct Hit {  // a seed: reference ref at diagonal D = ref position - sequence position, at qp
    int64_t ref, diag, qp, seed;  // seed: its index in the stretch's seeds
    bool operator<(const Hit& o) const {
      return ref != o.ref ? ref < o.ref : diag != o.diag ? diag < o.diag : qp < o.qp;
    }
  };
  struct Scratch {
    std::vector<int32_t> first_w, last_w;
    std::vector<uint64_t> seeds, keys, sorted;
    std::vector<uint32_t> bucket;
    std::vector<Hit> hits;
    std::vector<int64_t> diag, reach, stamp;
    std::vector<int32_t> cand_u, cand_diag;
    std::vector<int64_t> touched;
    std::vector<Candidate> cands;
  };
  // The windows [wb, we) of the start order searched together (the windows holding a seed are a
  // run of them): every seed of their stretch is looked up and sorted once, and its
  // extension is shared by the windows that hold it. Each window gets exactly what a search of it
  // alone gets: the same hits in the same order, the same rule for skipping a hit inside the last
  // extension, and extensions that stop at the window's edges (an extension that ran past an edge
  // of a window is walked again for that window).
  auto search = [&](int64_t wb, int64_t we, Scratch& sc) {
    const int64_t lo = wstart[wb];
    int64_t hi = lo;
    for (int64_t w = wb; w < we; ++w) hi = std::max(hi, wend[w]);
    const int64_t span = hi - lo, m = we - wb;
    if (span < span_) return;
    if (span >= (int64_t{1} << 32)) throw std::invalid_argument("windows that span 4 Gnt or more at once");
    const bool packable = span < (1 << 19) && longest_ref_ < (1 << 19) && refs_.size() < (size_t{1} << 24);
    sc.keys.clear();
    sc.hits.clear();
    sc.seeds.clear();
    sc.first_w.clear();
    sc.last_w.clear();
    // The seeds of the stretch present in the library, in position order, with the windows holding
    // each (p + span_ <= its end): [first_w, last_w] of the seed's index.
    int64_t f = wb, l = wb - 1;  // the windows of the last seed present (both only move forward)
    const uint64_t* present = present_.data();
    const uint8_t* cs = seeded.data();
    const int span_len = span_;
    auto seed_pass = [&](auto&& code_of) {  // code_of: the seed's code of a word (inlined)
      uint64_t word = 0;  // the last 32 positions (code_of reads the last span_ of them)
      int valid = 0;
      for (int64_t p = lo; p < hi; ++p) {
        const uint8_t c = cs[p];
        if (c > 3) {  // ambiguous or masked
          valid = 0;
          continue;
        }
        word = (word << 2) | c;
        if (++valid < span_len) continue;
        const uint32_t code = code_of(word);
        if (!(present[code >> 6] >> (code & 63) & 1)) continue;
        const int64_t qp = p + 1 - span_len;
        while (f < we && wend[f] - span_len < qp) ++f;
        while (l + 1 < we && wstart[l + 1] <= qp) ++l;
        if (f > l) continue;  // in no window
        sc.seeds.push_back(uint64_t(code) << 32 | uint64_t(qp - lo));
        sc.first_w.push_back(static_cast<int32_t>(f - wb));
        sc.last_w.push_back(static_cast<int32_t>(l - wb));
      }
    };
    if (runs_.size() == 1) {  // an exact k-mer: the word is its code
      seed_pass([span_mask](uint64_t word) { return static_cast<uint32_t>(word & span_mask); });
    } else {
      seed_pass([this](uint64_t word) { return seed_code(word); });
    }
    // the seeds' occurrences, the table entries of the seeds kAhead on already on their way
    // (half the time of looking each up as it comes)
    constexpr size_t kAhead = 8;
    const size_t ns = sc.seeds.size();
    for (size_t i = 0; i < ns; ++i) {
      if (i + kAhead < ns) prefetch(&offsets_[sc.seeds[i + kAhead] >> 32]);
      if (i + kAhead / 2 < ns) prefetch(&occ_[offsets_[sc.seeds[i + kAhead / 2] >> 32]]);
      const uint32_t code = static_cast<uint32_t>(sc.seeds[i] >> 32);
      const int64_t qp = lo + static_cast<int64_t>(sc.seeds[i] & 0xFFFFFFFFu);
      const int64_t si = static_cast<int64_t>(i);
      for (uint32_t o = offsets_[code]; o < offsets_[code + 1]; ++o) {
        const Occurrence& h = occ_[o];
        if (packable)  // ref, diag + span, the seed's index (in position order): each fits its field
          sc.keys.push_back(uint64_t(h.ref) << 40 | uint64_t(h.pos - (qp - lo) + span) << 20 | uint64_t(si));
        else
          sc.hits.push_back(Hit{h.ref, h.pos - qp, qp, si});
      }
    }
    if (packable) {
      // a counting sort by reference (the top bits), then each reference's few hits by diagonal
      // and position (the sorted keys are those of one std::sort)
      const size_t nrefs = refs_.size();
      sc.bucket.assign(nrefs + 1, 0);
      for (const uint64_t key : sc.keys) ++sc.bucket[(key >> 40) + 1];
      for (size_t r = 0; r < nrefs; ++r) sc.bucket[r + 1] += sc.bucket[r];
      sc.sorted.resize(sc.keys.size());
      for (const uint64_t key : sc.keys) sc.sorted[sc.bucket[key >> 40]++] = key;  // bucket[r]: r's end
      for (size_t r = 0, from = 0; r < nrefs; from = sc.bucket[r++]) {
        uint64_t* x = sc.sorted.data();
        const size_t to = sc.bucket[r];
        if (to - from > 32) {
          std::sort(x + from, x + to);
          continue;
        }
        for (size_t i = from + 1; i < to; ++i) {  // insertion sort
          const uint64_t v = x[i];
          size_t j = i;
          for (; j > from && x[j - 1] > v; --j) x[j] = x[j - 1];
          x[j] = v;
        }
      }
      sc.hits.resize(sc.keys.size());
      for (size_t i = 0; i < sc.sorted.size(); ++i) {
        const uint64_t key = sc.sorted[i];
        const int64_t si = static_cast<int64_t>(key & 0xFFFFF);
        const int64_t qp = lo + static_cast<int64_t>(sc.seeds[si] & 0xFFFFFFFFu);
        const int64_t pos = static_cast<int64_t>((key >> 20) & 0xFFFFF) - span + (qp - lo);
        sc.hits[i] = Hit{static_cast<int64_t>(key >> 40), pos - qp, qp, si};
      }
    } else {
      std::sort(sc.hits.begin(), sc.hits.end());
    }
    // per window, for the reference being scanned: the last extension's diagonal and reach, and
    // the best extension so far (stamp: the reference's group the state belongs to)
    sc.diag.assign(static_cast<size_t>(m), 0);
    sc.reach.assign(static_cast<size_t>(m), 0);
    sc.stamp.assign(static_cast<size_t>(m), -1);
    sc.cand_u.assign(static_cast<size_t>(m), 0);
    sc.cand_diag.assign(static_cast<size_t>(m), 0);
    sc.touched.clear();
    sc.cands.clear();
    auto flush = [&](int32_t ref) {
      for (const int64_t w : sc.touched)
        if (sc.cand_u[w] >= opt.ungapped) sc.cands.push_back(Candidate{wb + w, sc.cand_u[w], ref, sc.cand_diag[w]});
      sc.touched.clear();
    };
    int64_t group = -1;
    for (size_t i = 0; i < sc.hits.size(); ++i) {
      const Hit& h = sc.hits[i];
      if (i == 0 || h.ref != sc.hits[i - 1].ref) {
        if (i > 0) flush(static_cast<int32_t>(sc.hits[i - 1].ref));
        ++group;
      }
      const auto& ref = xrefs_[h.ref];
      const uint8_t* r = ref.data();
      const int64_t rlen = static_cast<int64_t>(ref.size());
      const int64_t f = sc.first_w[h.seed], l = sc.last_w[h.seed];
      // the walks over all of the windows holding the seed, done when a window first needs them
      const int64_t first_u = std::max(wstart[wb + f], -h.diag), end_u = std::min(wend[wb + l], rlen - h.diag);
      bool walked = false;
      Walk right{}, left{};
      int32_t seed_score = 0;
      for (int64_t w = f; w <= l; ++w) {
        if (sc.stamp[w] != group) {
          sc.stamp[w] = group;
          sc.reach[w] = INT64_MIN;  // nothing to skip yet
          sc.cand_u[w] = 0;
          sc.cand_diag[w] = 0;
          sc.touched.push_back(w);
        }
        if (sc.diag[w] == h.diag && h.qp < sc.reach[w]) continue;  // inside the last extension
        sc.diag[w] = h.diag;
        if (!walked) {
          right = walk_right(r, h.diag, h.qp + span_, end_u);
          left = walk_left(r, h.diag, h.qp - 1, first_u);
          seed_score = k_ * scoring.match;  // and the seed's free positions
          for (const int32_t t : free_) seed_score += step(r, h.qp + t, h.diag);
          walked = true;
        }
        const int64_t st = wstart[wb + w];
        const int64_t first = std::max(st, -h.diag), end = std::min(wend[wb + w], rlen - h.diag);
        const Walk wr =
            (right.stopped ? right.stop < end : end == end_u) ? right : walk_right(r, h.diag, h.qp + span_, end);
        const Walk wl = (left.stopped ? left.stop >= first : first == first_u) ? left : walk_left(r, h.diag, h.qp - 1, first);
        sc.reach[w] = wr.stop;
        const int32_t u = seed_score + wl.best + wr.best;
        if (u > sc.cand_u[w]) {
          sc.cand_u[w] = u;
          sc.cand_diag[w] = static_cast<int32_t>(h.diag + st);
        }
      }
    }
    if (!sc.hits.empty()) flush(static_cast<int32_t>(sc.hits.back().ref));
    // per window: the max_candidates best-extending references, aligned with gaps in that order
    std::sort(sc.cands.begin(), sc.cands.end(), [](const Candidate& x, const Candidate& y) {
      if (x.window != y.window) return x.window < y.window;
      return x.ungapped != y.ungapped ? x.ungapped > y.ungapped : x.ref < y.ref;
    });
    for (size_t c = 0; c < sc.cands.size();) {
      const int64_t w = sc.cands[c].window, st = wstart[w], ow = worig[w];
      const uint8_t* q = codes.data() + st;
      const int n = static_cast<int>(wend[w] - st);
      size_t taken = 0;
      for (; c < sc.cands.size() && sc.cands[c].window == w; ++c) {
        if (taken == static_cast<size_t>(opt.max_candidates)) continue;
        ++taken;
        const Candidate& cd = sc.cands[c];
        const auto& ref = refs_[cd.ref];
        const int32_t rlen = static_cast<int32_t>(ref.size());
        const int32_t rlo = std::max(0, cd.diag - opt.pad);
        const int32_t rhi = std::min(rlen, cd.diag + n + opt.pad);
        if (rhi <= rlo) continue;
        const int32_t d = cd.diag - rlo;  // the seed's diagonal in the aligned segment
        LocalAlignment a = smith_waterman(q, n, ref.data() + rlo, rhi - rlo, scoring, d - opt.pad, d + opt.pad);
        if (a.score <= 0) continue;
        a.ref = cd.ref;
        a.r_begin += rlo;
        a.r_end += rlo;
        int32_t& fs = out.family_score[ow * families_ + family_[a.ref]];
        fs = std::max(fs, a.score);
        if (a.score > out.best[ow].score) out.best[ow] = a;
      }
      out.candidates[ow] = static_cast<int32_t>(taken);
    }
  };
  parallel_for(out.n, threads, [&](int64_t b, int64_t e) {
    // Windows that cover most of their stretch are searched together; otherwise (windows far
    // apart) each on its own.
    Scratch sc;
    int64_t covered = 0, hi = 0;
    for (int64_t w = b; w < e; ++w) {
      covered += wend[w] - wstart[w];
      hi = std::max(hi, wend[w]);
    }
    if (e > b && hi - wstart[b] <= covered) {
      search(b, e, sc);
    } else {
      for (int64_t w = b; w < e; ++w) search(w, w + 1, sc);
    }
  });
  return out;
}

std::vector<WindowAlignments> HomologyIndex::align_batch(const std::vector<std::string>& seqs,
                                                        const std::vector<BatchJob>& jobs,
                                                        const AlignScoring& scoring, const SeedOptions& opt,
                                                        int threads, const std::vector<Masked>& masked) const {
  const size_t n = seqs.size(), nj = jobs.size();
  if (!masked.empty() && masked.size() != n)
    throw std::invalid_argument("align_batch: masked spans are given per sequence (none, or one entry each)");
  for (size_t i = 0; i < masked.size(); ++i)
    for (int64_t k = 0; k < masked[i].num; ++k) {
      const int64_t a = masked[i].data[2 * k], b = masked[i].data[2 * k + 1];
      if (a < 0 || a > b || b > static_cast<int64_t>(seqs[i].size()))
        throw std::invalid_argument("align_batch: masked span [" + std::to_string(a) + ", " + std::to_string(b) +
                                    ") of sequence " + std::to_string(i) + " lies outside it (length " +
                                    std::to_string(seqs[i].size()) + ")");
    }
  std::vector<char> minus(n, 0);
  for (const auto& j : jobs) {
    if (j.seq < 0 || static_cast<size_t>(j.seq) >= n)
      throw std::invalid_argument("align_batch: a job's sequence index is out of range");
    if (j.minus) minus[j.seq] = 1;
  }
  // Each sequence is one task: its codes and DUST mask (the minus strand's made from the plus
  // strand's), then its jobs. The tasks are shared out to the threads, the longest first; a lone
  // sequence's jobs each get all of them.
  std::vector<std::vector<size_t>> jobs_of(n);
  for (size_t q = 0; q < nj; ++q) jobs_of[jobs[q].seq].push_back(q);
  std::vector<size_t> order;
  for (size_t i = 0; i < n; ++i)
    if (!jobs_of[i].empty()) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return seqs[x].size() > seqs[y].size(); });
  std::vector<WindowAlignments> out(nj);
  auto run = [&](size_t i, int inner) {
    Strand fwd = prepare(seqs[i], masked.empty() ? Masked{} : masked[i]);
    const Strand rev = minus[i] ? fwd.reverse_complement() : Strand{};
    for (const size_t q : jobs_of[i]) {
      const BatchJob& j = jobs[q];
      const Strand& st = j.minus ? rev : fwd;
      out[q] = search_strand(st.codes, st.seeded, j.starts, j.num_starts, j.width, scoring, opt, inner);
    }
  };
  if (order.size() == 1) {
    run(order[0], threads);
  } else {
    parallel_each(static_cast<int64_t>(order.size()), threads, [&](int64_t k) { run(order[k], 1); });
  }
  return out;
}

}  // namespace rnaernie
