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
  if (threshold <= 0.0 || n < 3) return mask;
  if (window < 4) throw std::invalid_argument("the DUST window must be at least 4 nt");
  const int64_t w = std::min<int64_t>(window, n);
  const double denom = static_cast<double>(w - 2 - 1);
  auto triplet = [&](int64_t p) -> int {  // -1 where a code is ambiguous
    if (s[p] > 3 || s[p + 1] > 3 || s[p + 2] > 3) return -1;
    return s[p] * 16 + s[p + 1] * 4 + s[p + 2];
  };
  int counts[64] = {0};
  int64_t sum = 0;  // sum_t c_t (c_t - 1) / 2
  auto add = [&](int64_t p) {
    const int t = triplet(p);
    if (t >= 0) sum += counts[t]++;
  };
  auto remove = [&](int64_t p) {
    const int t = triplet(p);
    if (t >= 0) sum -= --counts[t];
  };
  std::vector<int32_t> diff(static_cast<size_t>(n) + 1, 0);
  for (int64_t p = 0; p + 3 <= w; ++p) add(p);
  for (int64_t a = 0;; ++a) {  // the stretch [a, a + w)
    if (denom > 0 && static_cast<double>(sum) / denom > threshold) {
      ++diff[a];
      --diff[a + w];
    }
    if (a + w >= n) break;
    remove(a);
    add(a + w - 2);
  }
  int32_t run = 0;
  for (int64_t p = 0; p < n; ++p) mask[p] = (run += diff[p]) > 0;
  return mask;
}

LocalAlignment smith_waterman(const uint8_t* a, int n, const uint8_t* b, int m, const AlignScoring& s,
                              int diag_lo, int diag_hi) {
  // Gotoh's recurrences over rows i of a, each cell carrying the start of its alignment. Ties: the
  // diagonal before a gap, extending a gap before opening one, the first best cell in row order.
  // Cells off the band (j - i outside [diag_lo, diag_hi]) hold H = 0 and no gap.
  constexpr int kNeg = -(1 << 28);
  const int open = s.gap_open + s.gap_extend, ext = s.gap_extend;
  std::vector<int> h_prev(m + 1, 0), h_cur(m + 1, 0), f(m + 1, kNeg);
  std::vector<int32_t> hs_prev(2 * (m + 1), 0), hs_cur(2 * (m + 1), 0), fs(2 * (m + 1), 0);
  LocalAlignment best;
  for (int i = 1; i <= n; ++i) {
    const int jlo = std::max(1, i + std::max(diag_lo, -n)), jhi = std::min(m, i + std::min(diag_hi, m));
    if (jlo > jhi) {
      if (i + diag_lo > m) break;  // the band has left the matrix
      continue;                    // not entered yet: both rows are still all zero
    }
    h_cur[jlo - 1] = 0;  // off the band (the buffer holds row i - 2 there)
    int e = kNeg, es_i = 0, es_j = 0;
    const uint8_t ai = a[i - 1];
    for (int j = jlo; j <= jhi; ++j) {
      // vertical gap (consumes a)
      const int f_ext = f[j] - ext, f_open = h_prev[j] - open;
      if (f_ext >= f_open) {
        f[j] = f_ext;
      } else {
        f[j] = f_open;
        fs[2 * j] = hs_prev[2 * j];
        fs[2 * j + 1] = hs_prev[2 * j + 1];
      }
      // horizontal gap (consumes b)
      const int e_ext = e - ext, e_open = h_cur[j - 1] - open;
      if (e_ext >= e_open) {
        e = e_ext;
      } else {
        e = e_open;
        es_i = hs_cur[2 * (j - 1)];
        es_j = hs_cur[2 * (j - 1) + 1];
      }
      const uint8_t bj = b[j - 1];
      int h = h_prev[j - 1] + ((ai == bj && ai < 4) ? s.match : s.mismatch);
      int32_t si, sj;
      if (h_prev[j - 1] > 0) {
        si = hs_prev[2 * (j - 1)];
        sj = hs_prev[2 * (j - 1) + 1];
      } else {
        si = i - 1;
        sj = j - 1;
      }
      if (e > h) {
        h = e;
        si = es_i;
        sj = es_j;
      }
      if (f[j] > h) {
        h = f[j];
        si = fs[2 * j];
        sj = fs[2 * j + 1];
      }
      if (h < 0) h = 0;
      h_cur[j] = h;
      hs_cur[2 * j] = si;
      hs_cur[2 * j + 1] = sj;
      if (h > best.score) {
        best.score = h;
        best.q_begin = si;
        best.r_begin = sj;
        best.q_end = i;
        best.r_end = j;
      }
    }
    std::swap(h_prev, h_cur);
    std::swap(hs_prev, hs_cur);
  }
  return best;
}

HomologyIndex::HomologyIndex(const std::vector<std::string>& refs, const std::vector<int32_t>& family, int k,
                             int max_occurrences, int dust_window, double dust_threshold)
    : k_(k), dust_window_(dust_window), dust_threshold_(dust_threshold) {
  if (dust_threshold > 0 && dust_window < 4) throw std::invalid_argument("the DUST window must be at least 4 nt");
  if (k < 4 || k > 12) throw std::invalid_argument("homology seed length k must be in [4, 12]");
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
  const uint32_t size = uint32_t{1} << (2 * k), mask = size - 1;
  std::vector<uint32_t> count(size + 1, 0);
  std::vector<std::vector<uint8_t>> low;  // each reference's low-complexity positions: no seeds
  low.reserve(refs_.size());
  for (const auto& r : refs_) low.push_back(dust_mask(r.data(), static_cast<int64_t>(r.size()), dust_window, dust_threshold));
  auto each_kmer = [&](size_t r, auto&& fn) {  // fn(code, position) for every seed k-mer of reference r
    const auto& s = refs_[r];
    uint32_t code = 0;
    int valid = 0;
    for (size_t p = 0; p < s.size(); ++p) {
      if (s[p] > 3 || low[r][p]) {
        valid = 0;
        continue;
      }
      code = ((code << 2) | s[p]) & mask;
      if (++valid >= k) fn(code, static_cast<int32_t>(p + 1 - k));
    }
  };
  for (size_t r = 0; r < refs_.size(); ++r) each_kmer(r, [&](uint32_t c, int32_t) { ++count[c]; });
  for (uint32_t c = 0; c < size; ++c)
    if (count[c] > static_cast<uint32_t>(max_occurrences)) count[c] = 0;  // too frequent: not a seed
  offsets_.assign(size + 1, 0);
  for (uint32_t c = 0; c < size; ++c) offsets_[c + 1] = offsets_[c] + count[c];
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

inline uint32_t reverse8(uint32_t b) {
  b = ((b & 0xF0u) >> 4) | ((b & 0x0Fu) << 4);
  b = ((b & 0xCCu) >> 2) | ((b & 0x33u) << 2);
  return ((b & 0xAAu) >> 1) | ((b & 0x55u) << 1);
}

}  // namespace

WindowAlignments HomologyIndex::align_windows(const std::string& seq, const std::vector<int64_t>& starts, int width,
                                              const AlignScoring& scoring, const SeedOptions& opt,
                                              int threads) const {
  if (width < 1) throw std::invalid_argument("window width must be >= 1");
  if (opt.max_candidates < 1 || opt.pad < 0 || opt.ungapped < 0 || opt.xdrop < 0)
    throw std::invalid_argument("seed options: max_candidates >= 1; pad, ungapped, xdrop >= 0");
  const std::vector<uint8_t> codes = nucleotide_codes(seq);
  const int64_t len = static_cast<int64_t>(codes.size());
  const std::vector<uint8_t> low = dust_mask(codes.data(), len, dust_window_, dust_threshold_);
  for (const int64_t st : starts)
    if (st < 0 || st >= std::max<int64_t>(len, 1)) throw std::invalid_argument("window start outside the sequence");
  WindowAlignments out;
  out.n = static_cast<int64_t>(starts.size());
  out.families = families_;
  out.family_score.assign(out.n * families_, 0);
  out.best.assign(out.n, LocalAlignment{});
  out.candidates.assign(out.n, 0);
  const uint32_t mask = (uint32_t{1} << (2 * k_)) - 1;
  const std::array<Block8, 256> blocks = block_table(scoring.match, scoring.mismatch);
  struct Seed {  // a k-mer of the sequence at qp that occurs in reference ref at pos
    int32_t ref, pos;
    int64_t qp;
  };
  struct Candidate {
    int32_t ungapped, ref, diag;
  };
  // X-drop ungapped extension of the seed q[qp, qp + k) = ref[qp + diag, ...): its score, and in
  // reach the query position it got to (a later seed on the diagonal before it adds nothing).
  // `ref` holds 5 for ambiguous codes (the query 4), so equal bytes are matches.
  auto extend = [&](const uint8_t* q, int n, const std::vector<uint8_t>& ref, int32_t diag, int32_t qp,
                    int32_t& reach) {
    const int32_t rlen = static_cast<int32_t>(ref.size());
    const uint8_t* r = ref.data();  // r[p + diag] faces q[p]
    auto step = [&](int32_t p) { return q[p] == r[p + diag] ? scoring.match : scoring.mismatch; };
    int32_t best_r = 0, run = 0, p = qp + k_;
    const int32_t end = std::min(n, rlen - diag);
    bool stopped = false;
    while (!stopped && p < end) {
      if (p + 8 <= end) {
        const Block8& b = blocks[equal8(q + p, r + (p + diag))];
        if (best_r - (run + b.lo) <= opt.xdrop && b.fall <= opt.xdrop) {
          best_r = std::max(best_r, run + b.hi);
          run += b.sum;
          p += 8;
          continue;
        }
      }
      for (const int32_t stop = std::min(end, p + 8); p < stop; ++p) {
        run += step(p);
        best_r = std::max(best_r, run);
        if (best_r - run > opt.xdrop) {
          stopped = true;
          break;
        }
      }
    }
    reach = p;
    int32_t best_l = 0;
    run = 0;
    p = qp - 1;
    const int32_t first = std::max(0, -diag);
    while (p >= first) {
      if (p - 7 >= first) {
        const Block8& b = blocks[reverse8(equal8(q + p - 7, r + (p - 7 + diag)))];
        if (best_l - (run + b.lo) <= opt.xdrop && b.fall <= opt.xdrop) {
          best_l = std::max(best_l, run + b.hi);
          run += b.sum;
          p -= 8;
          continue;
        }
      }
      bool stop_l = false;
      for (const int32_t stop = std::max(first, p - 7); p >= stop; --p) {
        run += step(p);
        best_l = std::max(best_l, run);
        if (best_l - run > opt.xdrop) {
          stop_l = true;
          break;
        }
      }
      if (stop_l) break;
    }
    return k_ * scoring.match + best_l + best_r;
  };
  // the seeds of positions [lo, hi) of the sequence, in position order
  auto seeds_of = [&](int64_t lo, int64_t hi, std::vector<Seed>& seeds) {
    seeds.clear();
    uint32_t code = 0;
    int valid = 0;
    for (int64_t p = lo; p < hi; ++p) {
      if (codes[p] > 3 || low[p]) {
        valid = 0;
        continue;
      }
      code = ((code << 2) | codes[p]) & mask;
      if (++valid < k_) continue;
      const int64_t qp = p + 1 - k_;
      for (uint32_t o = offsets_[code]; o < offsets_[code + 1]; ++o) seeds.push_back(Seed{occ_[o].ref, occ_[o].pos, qp});
    }
  };
  parallel_for(out.n, threads, [&](int64_t b, int64_t e) {
    // The seeds of the block's stretch are looked up once (overlapping windows share them) when
    // the windows cover most of it; otherwise each window's own.
    int64_t lo = len, hi = 0, covered = 0;
    for (int64_t w = b; w < e; ++w) {
      const int64_t n = std::min<int64_t>(width, len - starts[w]);
      lo = std::min(lo, starts[w]);
      hi = std::max(hi, starts[w] + n);
      covered += n;
    }
    const bool shared = hi > lo && hi - lo <= covered;
    std::vector<Seed> seeds;
    std::vector<int64_t> first;  // first[p - lo]: the first seed at position >= p
    if (shared) {
      seeds_of(lo, hi, seeds);
      first.assign(static_cast<size_t>(hi - lo + 1), static_cast<int64_t>(seeds.size()));
      for (int64_t i = static_cast<int64_t>(seeds.size()) - 1; i >= 0; --i) first[seeds[i].qp - lo] = i;
      for (int64_t p = hi - lo - 1; p >= 0; --p) first[p] = std::min(first[p], first[p + 1]);
    }
    std::vector<Seed> own;
    std::vector<uint64_t> keys;  // ref, diag, qp packed in sort order
    std::vector<Candidate> cands;
    const bool packable = width < (1 << 19) && longest_ref_ < (1 << 19) && refs_.size() < (size_t{1} << 24);
    std::vector<std::array<int32_t, 3>> hits;  // (ref, diag, qp) in sort order
    for (int64_t w = b; w < e; ++w) {
      const int64_t st = starts[w];
      const uint8_t* q = codes.data() + st;
      const int n = static_cast<int>(std::min<int64_t>(width, len - st));
      const Seed* s0;
      const Seed* s1;
      if (shared) {
        const int64_t last = st + n - k_ + 1;  // seeds at [st, last) lie inside the window
        s0 = seeds.data() + first[st - lo];
        s1 = seeds.data() + (last > st ? first[last - lo] : first[st - lo]);
      } else {
        seeds_of(st, st + n, own);
        s0 = own.data();
        s1 = own.data() + own.size();
      }
      hits.clear();
      keys.clear();
      for (const Seed* h = s0; h < s1; ++h) {
        const int32_t qp = static_cast<int32_t>(h->qp - st), diag = h->pos - qp;
        if (packable)
          keys.push_back(uint64_t(h->ref) << 40 | uint64_t(diag + (1 << 19)) << 20 | uint64_t(qp));
        else
          hits.push_back({h->ref, diag, qp});
      }
      if (packable) {
        std::sort(keys.begin(), keys.end());
        hits.resize(keys.size());
        for (size_t i = 0; i < keys.size(); ++i)
          hits[i] = {static_cast<int32_t>(keys[i] >> 40), static_cast<int32_t>((keys[i] >> 20) & 0xFFFFF) - (1 << 19),
                     static_cast<int32_t>(keys[i] & 0xFFFFF)};
      } else {
        std::sort(hits.begin(), hits.end());
      }
      cands.clear();
      for (size_t g = 0; g < hits.size();) {  // one reference: its best seed extension
        const int32_t r = hits[g][0];
        Candidate c{0, r, 0};
        int32_t reach = -1, diag = 0;
        for (; g < hits.size() && hits[g][0] == r; ++g) {
          if (hits[g][1] == diag && hits[g][2] < reach) continue;  // inside the last extension
          diag = hits[g][1];
          const int32_t u = extend(q, n, xrefs_[r], diag, hits[g][2], reach);
          if (u > c.ungapped) c = Candidate{u, r, diag};
        }
        if (c.ungapped >= opt.ungapped) cands.push_back(c);
      }
      const size_t take = std::min<size_t>(cands.size(), static_cast<size_t>(opt.max_candidates));
      std::partial_sort(cands.begin(), cands.begin() + take, cands.end(), [](const Candidate& x, const Candidate& y) {
        return x.ungapped != y.ungapped ? x.ungapped > y.ungapped : x.ref < y.ref;
      });
      out.candidates[w] = static_cast<int32_t>(take);
      for (size_t c = 0; c < take; ++c) {
        const auto& ref = refs_[cands[c].ref];
        const int32_t rlen = static_cast<int32_t>(ref.size());
        const int32_t rlo = std::max(0, cands[c].diag - opt.pad);
        const int32_t rhi = std::min(rlen, cands[c].diag + n + opt.pad);
        if (rhi <= rlo) continue;
        const int32_t d = cands[c].diag - rlo;  // the seed's diagonal in the aligned segment
        LocalAlignment a = smith_waterman(q, n, ref.data() + rlo, rhi - rlo, scoring, d - opt.pad, d + opt.pad);
        if (a.score <= 0) continue;
        a.ref = cands[c].ref;
        a.r_begin += rlo;
        a.r_end += rlo;
        int32_t& fs = out.family_score[w * families_ + family_[a.ref]];
        fs = std::max(fs, a.score);
        if (a.score > out.best[w].score) out.best[w] = a;
      }
    }
  });
  return out;
}

}  // namespace rnaernie
