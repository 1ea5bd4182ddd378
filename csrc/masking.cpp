#include "masking.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common.hpp"

namespace rnaernie {
namespace {

inline bool maskable(int64_t id) { return id == kUnkId || (id >= kNucOffset && id < kNucOffset + 4); }

constexpr int64_t kMaxSpan = 4096;

void check_ids(const int64_t* ids, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows * cols; ++i) {
    if (ids[i] < 0 || ids[i] >= kVocabSize) {
      throw std::invalid_argument("input_ids[" + std::to_string(i / cols) + ", " + std::to_string(i % cols) +
                                  "] = " + std::to_string(ids[i]) + " is not a token id (0.." +
                                  std::to_string(kVocabSize - 1) + ")");
    }
  }
}

template <class T>
void shuffle(std::vector<T>& v, SplitMix64& rng) {  // Fisher–Yates, from the back
  for (int64_t i = static_cast<int64_t>(v.size()) - 1; i > 0; --i) {
    std::swap(v[i], v[rng.below(static_cast<uint64_t>(i + 1))]);
  }
}

struct Row {
  const int64_t* ids;
  int64_t cols;
  uint8_t* selected;
  int64_t budget;
  int64_t count = 0;

  bool free_span(int64_t b, int64_t e) const {
    for (int64_t i = b; i < e; ++i)
      if (selected[i]) return false;
    return true;
  }
  void take(int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) selected[i] = 1;
    count += e - b;
  }
};

void select_base(Row& row, SplitMix64& rng) {
  std::vector<int64_t> pos;
  for (int64_t i = 0; i < row.cols; ++i)
    if (maskable(row.ids[i])) pos.push_back(i);
  // partial Fisher–Yates: the first `budget` entries of a uniform random permutation
  const int64_t n = static_cast<int64_t>(pos.size());
  for (int64_t i = 0; i < row.budget && i < n; ++i) {
    std::swap(pos[i], pos[i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(n - i)))]);
    row.take(pos[i], pos[i] + 1);
  }
}

void select_subsequence(Row& row, SplitMix64& rng, const MaskingOptions& opt) {
  // candidate starts: a maskable position from which span_min maskable positions follow, or the start
  // of a maskable run shorter than span_min (so short RNAs such as miRNAs still get masked)
  std::vector<int64_t> run_end(row.cols, 0);
  for (int64_t i = row.cols - 1, e = -1; i >= 0; --i) {
    if (!maskable(row.ids[i])) {
      e = -1;
      continue;
    }
    if (e < 0) e = i + 1;
    run_end[i] = e;
  }
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < row.cols; ++i) {
    if (!maskable(row.ids[i])) continue;
    const bool run_start = i == 0 || !maskable(row.ids[i - 1]);
    if (opt.span_min <= run_end[i] - i || run_start) starts.push_back(i);
  }
  shuffle(starts, rng);
  const int64_t nk = opt.span_max - opt.span_min + 1;
  double total = 0;
  for (int64_t k = 1; k <= nk; ++k) total += 1.0 / static_cast<double>(k);
  for (int64_t s : starts) {
    if (row.count >= row.budget) break;
    double u = rng.uniform() * total;
    int64_t k = 0;
    while (k < nk - 1 && u >= 1.0 / static_cast<double>(k + 1)) u -= 1.0 / static_cast<double>(++k);
    int64_t len = std::min(opt.span_min + k, run_end[s] - s);
    len = std::min(len, row.budget - row.count);  // shorten to fit the budget
    if (row.free_span(s, s + len)) row.take(s, s + len);
  }
}

void select_motif(Row& row, SplitMix64& rng, const MotifMatcher& matcher, const std::vector<uint8_t>& tier) {
  std::vector<MotifHit> hits;
  matcher.find_ids(row.ids, row.cols, hits);
  auto key = [](const MotifHit& h) { return std::make_tuple(h.start, h.end, h.motif); };
  std::sort(hits.begin(), hits.end(), [&](const MotifHit& a, const MotifHit& b) { return key(a) < key(b); });
  std::vector<MotifHit> first, second;
  for (const auto& h : hits) (tier[h.motif] ? second : first).push_back(h);
  shuffle(first, rng);
  first.insert(first.end(), second.begin(), second.end());
  for (const auto& h : first) {
    if (row.count >= row.budget) break;
    if (row.count + (h.end - h.start) > row.budget) continue;
    if (row.free_span(h.start, h.end)) row.take(h.start, h.end);
  }
}

}  // namespace

void select_mask_positions(const int64_t* ids, int64_t rows, int64_t cols, const MotifMatcher* matcher,
                           const std::vector<uint8_t>& motif_tier, const MaskingOptions& opt, uint64_t seed,
                           uint8_t* selected, int8_t* level) {
  std::vector<int8_t> levels;
  if (opt.base) levels.push_back(kBase);
  if (opt.subsequence) levels.push_back(kSubsequence);
  if (opt.motif) levels.push_back(kMotif);
  if (levels.empty()) throw std::invalid_argument("enable at least one masking level");
  if (opt.motif && matcher == nullptr) throw std::invalid_argument("motif-level masking needs a motif matcher");
  if (matcher && static_cast<int32_t>(motif_tier.size()) != matcher->num_motifs())
    throw std::invalid_argument("motif_tier must have one entry per motif");
  if (!(opt.mask_prob >= 0.0 && opt.mask_prob <= 1.0))
    throw std::invalid_argument("mask_prob must be in [0, 1]");
  if (opt.max_predictions < 0) throw std::invalid_argument("max_predictions must be >= 0");
  if (opt.span_min < 1 || opt.span_max < opt.span_min || opt.span_max > kMaxSpan)
    throw std::invalid_argument("need 1 <= span_min <= span_max <= " + std::to_string(kMaxSpan));
  check_ids(ids, rows, cols);

  std::fill(selected, selected + rows * cols, 0);
  parallel_for(rows, opt.threads, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      SplitMix64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(r));
      Row row{ids + r * cols, cols, selected + r * cols, 0};
      int64_t n = 0;
      for (int64_t i = 0; i < cols; ++i) n += maskable(row.ids[i]);
      if (n > 0) {
        const auto want = static_cast<int64_t>(std::nearbyint(static_cast<double>(n) * opt.mask_prob));
        row.budget = std::min(opt.max_predictions, std::max<int64_t>(1, want));
      }
      const int8_t lv = levels[rng.below(levels.size())];
      level[r] = lv;
      if (lv == kBase) {
        select_base(row, rng);
      } else if (lv == kSubsequence) {
        select_subsequence(row, rng, opt);
      } else {
        select_motif(row, rng, *matcher, motif_tier);
      }
    }
  });
}

void apply_mlm_replacement(const int64_t* ids, const uint8_t* selected, int64_t rows, int64_t cols,
                           uint32_t seed, int64_t* out_ids, int64_t* labels, int threads) {
  check_ids(ids, rows, cols);
  const uint32_t key = fmix32(seed);
  parallel_for(rows, threads, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t i = r * cols + c;
        if (!selected[i]) {
          out_ids[i] = ids[i];
          labels[i] = -100;
          continue;
        }
        const uint32_t h = fmix32(static_cast<uint32_t>(i) ^ key);
        const uint32_t u = h % 10U;
        labels[i] = ids[i];
        out_ids[i] = u < 8U ? kMaskId : (u == 8U ? kNucOffset + (h / 10U) % 4U : ids[i]);
      }
    }
  });
}

}  // namespace rnaernie
