// Structure decoders: sparse nested DP (Nussinov / MEA-style) and greedy mutual-best matching.
//
// Nested DP, row-push form. N(i, j) is the best score of the interval [i, j] (N(i, i-1) = 0):
//   N(i, j) = max( N(i+1, j)                       if i may stay unpaired,
//                  max_{candidate (i, l), l <= j}  B(i, l) + N(l+1, j) )
//   B(i, l) = w(i, l) + N(i+1, l-1)                 (w = score - threshold)
// Rows are filled for i = L-1 .. 0; for each candidate (i, l) the update
// N(i, l..L-1) = max(N(i, .), B(i, l) + N(l+1, .)) runs over two contiguous rows and vectorises.
// The cost is O(L^2 + sum over candidates of (L - l)): it grows with the number of candidates.
//
// No lonely pairs adds, per candidate pair:
//   Q(i, l) = w + max(N(i+1, l-1), Q(i+1, l-1))   (i, l) stacked on an outer pair (i-1, l+1)
//   B(i, l) = w + Q(i+1, l-1)                      (i, l) with no outer stack needs an inner one
// (Q of a non-candidate is -inf; forced constraint pairs are exempt: B = Q.)
#include "structure.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <stdexcept>
#include <thread>

namespace rnaernie {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
// DP table entries: float halves the memory traffic and doubles the SIMD width of the hot loop.
using Val = float;
constexpr Val kValNegInf = -std::numeric_limits<Val>::infinity();

int base_code(char c) {
  switch (c) {
    case 'A': case 'a': return 0;
    case 'C': case 'c': return 1;
    case 'G': case 'g': return 2;
    case 'U': case 'u': case 'T': case 't': return 3;
    default: return 4;
  }
}

// AU, UA, CG, GC, GU, UG.
constexpr bool kCanonical[5][5] = {
    {false, false, false, true, false},
    {false, false, true, false, false},
    {false, true, false, true, false},
    {true, false, true, false, false},
    {false, false, false, false, false},
};

// Per-position view of a hard-constraint string.
struct Constraint {
  std::vector<uint8_t> must;   // must be paired
  std::vector<uint8_t> can5;   // may be the 5' base of a pair
  std::vector<uint8_t> can3;   // may be the 3' base of a pair
  std::vector<int32_t> mate;   // forced partner from "( )", or -1
};

Constraint parse_constraint(const DecodeOptions& opt, int64_t n) {
  Constraint c;
  c.must.assign(n, 0);
  c.can5.assign(n, 1);
  c.can3.assign(n, 1);
  c.mate.assign(n, -1);
  if (!opt.has_constraint) return c;
  const std::string& s = opt.constraint;
  if (static_cast<int64_t>(s.size()) != n) {
    throw std::invalid_argument("constraint has length " + std::to_string(s.size()) +
                                " but the sequence has length " + std::to_string(n));
  }
  std::vector<int32_t> stack;
  for (int64_t p = 0; p < n; ++p) {
    switch (s[p]) {
      case '.': break;
      case 'x': c.can5[p] = c.can3[p] = 0; break;
      case '|': c.must[p] = 1; break;
      case '<': c.must[p] = 1; c.can3[p] = 0; break;
      case '>': c.must[p] = 1; c.can5[p] = 0; break;
      case '(': c.must[p] = 1; stack.push_back(static_cast<int32_t>(p)); break;
      case ')': {
        if (stack.empty()) {
          throw std::invalid_argument("constraint: unmatched ')' at position " + std::to_string(p));
        }
        const int32_t q = stack.back();
        stack.pop_back();
        c.must[p] = 1;
        c.mate[p] = q;
        c.mate[q] = static_cast<int32_t>(p);
        if (p - q - 1 < opt.min_loop) {
          throw std::invalid_argument("constraint: forced pair (" + std::to_string(q) + ", " +
                                      std::to_string(p) + ") encloses fewer than min_loop=" +
                                      std::to_string(opt.min_loop) + " bases");
        }
        break;
      }
      default: {
        const unsigned char ch = static_cast<unsigned char>(s[p]);
        const std::string shown =
            (ch >= 32 && ch < 127) ? std::string("'") + s[p] + "'" : "byte " + std::to_string(ch);
        throw std::invalid_argument("constraint: unknown symbol " + shown + " at position " +
                                    std::to_string(p) + " (allowed: . x | < > ( ))");
      }
    }
  }
  if (!stack.empty()) {
    throw std::invalid_argument("constraint: unmatched '(' at position " +
                                std::to_string(stack.back()));
  }
  return c;
}

void check_common(const std::string& seq, const float* scores, int64_t rows, int64_t cols,
                  const DecodeOptions& opt) {
  if (rows != cols) {
    throw std::invalid_argument("score matrix must be square, got " + std::to_string(rows) + " x " +
                                std::to_string(cols));
  }
  if (rows != static_cast<int64_t>(seq.size())) {
    throw std::invalid_argument("score matrix is " + std::to_string(rows) + " x " +
                                std::to_string(cols) + " but the sequence has length " +
                                std::to_string(seq.size()));
  }
  if (rows > 0 && scores == nullptr) throw std::invalid_argument("score matrix is null");
  if (opt.min_loop < 0) {
    throw std::invalid_argument("min_loop must be >= 0, got " + std::to_string(opt.min_loop));
  }
  if (!std::isfinite(opt.threshold)) throw std::invalid_argument("threshold must be finite");
}

[[noreturn]] void throw_non_finite(int64_t i, int64_t j, float v) {
  throw std::invalid_argument("score matrix has a non-finite value (" + std::to_string(v) +
                              ") at [" + std::to_string(i) + ", " + std::to_string(j) + "]");
}

struct Cand {
  int32_t l;      // partner (l > i)
  bool forced;    // forced by "( )"
  double w;       // score - threshold
  double b;       // value when closing an interval entry of N (see the header comment)
  double q;       // value when stacked on an outer pair (no-lonely-pairs only)
};

// Triangular DP table: row i (0..n) holds N(i, j) for j in [i-1, n-1].
class Table {
 public:
  explicit Table(int64_t n) : n_(n), base_(n + 2) {
    int64_t off = 0;
    for (int64_t i = 0; i <= n; ++i) {
      base_[i] = off - (i - 1);
      off += n - i + 1;
    }
    data_.assign(static_cast<size_t>(off), Val(0));
  }
  Val* row(int64_t i) { return data_.data() + (base_[i] + i - 1); }  // row(i)[0] = N(i, i-1)
  Val at(int64_t i, int64_t j) const { return data_[static_cast<size_t>(base_[i] + j)]; }

 private:
  int64_t n_;
  std::vector<int64_t> base_;
  std::vector<Val> data_;
};

}  // namespace

DecodeResult decode_nested(const std::string& seq, const float* scores, int64_t rows, int64_t cols,
                           const DecodeOptions& opt) {
  check_common(seq, scores, rows, cols, opt);
  const int64_t n = rows;
  const Constraint con = parse_constraint(opt, n);
  const double thr = opt.threshold;
  const bool nlp = opt.no_lonely_pairs;
  DecodeResult result;
  if (n == 0) return result;

  std::vector<int> code(n);
  for (int64_t p = 0; p < n; ++p) code[p] = base_code(seq[p]);

  // Candidate pairs, row by row (j ascending), reading row i of the upper triangle contiguously.
  std::vector<Cand> cands;
  std::vector<int64_t> row_start(n + 2, 0);
  for (int64_t i = 0; i < n; ++i) {
    row_start[i] = static_cast<int64_t>(cands.size());
    const float* srow = scores + i * n;
    const int64_t jmin = i + opt.min_loop + 1;
    for (int64_t j = i + 1; j < std::min(jmin, n); ++j) {
      if (!std::isfinite(srow[j])) throw_non_finite(i, j, srow[j]);
    }
    for (int64_t j = jmin; j < n; ++j) {
      const float s = srow[j];
      if (!std::isfinite(s)) throw_non_finite(i, j, s);
      const double w = static_cast<double>(s) - thr;
      bool take;
      bool forced = false;
      if (con.mate[i] >= 0 || con.mate[j] >= 0) {
        take = forced = (con.mate[i] == j);
      } else {
        take = con.can5[i] && con.can3[j] && (w > 0.0 || con.must[i] || con.must[j]) &&
               (!opt.canonical_only || kCanonical[code[i]][code[j]]);
      }
      if (take) cands.push_back(Cand{static_cast<int32_t>(j), forced, w, kNegInf, kNegInf});
    }
  }
  row_start[n] = row_start[n + 1] = static_cast<int64_t>(cands.size());

  Table tab(n);
  tab.row(n)[0] = 0.0;  // N(n, n-1)
  for (int64_t i = n - 1; i >= 0; --i) {
    Val* __restrict ni = tab.row(i) - (i - 1);  // ni[j] = N(i, j)
    const Val* nx = tab.row(i + 1) - i;         // nx[j] = N(i+1, j)
    ni[i - 1] = 0.0;
    if (con.must[i]) {
      for (int64_t j = i; j < n; ++j) ni[j] = kValNegInf;
    } else {
      for (int64_t j = i; j < n; ++j) ni[j] = nx[j];
    }
    int64_t inner = row_start[i + 1];  // merge pointer into row i+1's candidates
    const int64_t inner_end = row_start[i + 2];
    for (int64_t c = row_start[i]; c < row_start[i + 1]; ++c) {
      Cand& cd = cands[c];
      const int64_t l = cd.l;
      const double in = nx[l - 1];  // N(i+1, l-1)
      if (nlp) {
        while (inner < inner_end && cands[inner].l < l - 1) ++inner;
        const double qin = (inner < inner_end && cands[inner].l == l - 1) ? cands[inner].q : kNegInf;
        cd.q = cd.w + std::max(in, qin);
        cd.b = cd.forced ? cd.q : cd.w + qin;
      } else {
        cd.b = cd.w + in;
      }
      if (cd.b == kNegInf) continue;
      const Val b = static_cast<Val>(cd.b);
      const Val* __restrict src = tab.row(l + 1) - l;  // src[j] = N(l+1, j)
      for (int64_t j = l; j < n; ++j) {
        const Val v = b + src[j];
        ni[j] = v > ni[j] ? v : ni[j];
      }
    }
  }

  if (tab.at(0, n - 1) == kValNegInf) {
    throw std::invalid_argument(
        "constraint cannot be satisfied: no structure pairs every position marked | < > ( ) "
        "under the other rules (canonical_only, min_loop, no_lonely_pairs, x)");
  }

  // Iterative traceback. kind 0: interval N(i, j); kind 1: pair (i, j) entered from N (value b);
  // kind 2: pair (i, j) stacked on an outer pair (value q).
  struct Item {
    int kind;
    int64_t i, j, c;
  };
  std::vector<Item> stack{{0, 0, n - 1, -1}};
  auto find_cand = [&](int64_t i, int64_t l) -> int64_t {
    const auto first = cands.begin() + row_start[i];
    const auto last = cands.begin() + row_start[i + 1];
    const auto it = std::lower_bound(first, last, l,
                                     [](const Cand& a, int64_t v) { return a.l < v; });
    return (it != last && it->l == l) ? static_cast<int64_t>(it - cands.begin()) : -1;
  };
  while (!stack.empty()) {
    const Item it = stack.back();
    stack.pop_back();
    if (it.kind == 0) {
      int64_t i = it.i;
      const int64_t j = it.j;
      while (i <= j) {
        const Val v = tab.at(i, j);
        if (!con.must[i] && tab.at(i + 1, j) == v) {
          ++i;
          continue;
        }
        int64_t best = -1;
        Val best_v = kValNegInf;
        for (int64_t c = row_start[i]; c < row_start[i + 1] && cands[c].l <= j; ++c) {
          if (cands[c].b == kNegInf) continue;
          const Val cv = static_cast<Val>(cands[c].b) + tab.at(cands[c].l + 1, j);
          if (cv == v) {
            best = c;
            break;
          }
          if (best < 0 || cv > best_v) {
            best = c;
            best_v = cv;
          }
        }
        if (best < 0) throw std::logic_error("structure traceback failed");
        stack.push_back({1, i, cands[best].l, best});
        i = cands[best].l + 1;
      }
    } else {
      const Cand& cd = cands[it.c];
      result.pairs.emplace_back(static_cast<int32_t>(it.i), static_cast<int32_t>(it.j));
      result.score += cd.w;
      if (it.j - it.i - 1 <= 0) continue;
      const bool stacked = (it.kind == 2) || cd.forced;
      if (!nlp) {
        stack.push_back({0, it.i + 1, it.j - 1, -1});
        continue;
      }
      const int64_t ic = find_cand(it.i + 1, it.j - 1);
      const double qin = ic >= 0 ? cands[ic].q : kNegInf;
      if (!stacked || qin > tab.at(it.i + 1, it.j - 1)) {
        stack.push_back({2, it.i + 1, it.j - 1, ic});
      } else {
        stack.push_back({0, it.i + 1, it.j - 1, -1});
      }
    }
  }
  std::sort(result.pairs.begin(), result.pairs.end());
  return result;
}

DecodeResult decode_greedy(const std::string& seq, const float* scores, int64_t rows, int64_t cols,
                           const DecodeOptions& opt) {
  check_common(seq, scores, rows, cols, opt);
  const int64_t n = rows;
  const double thr = opt.threshold;
  DecodeResult result;
  std::vector<int> code(n);
  for (int64_t p = 0; p < n; ++p) code[p] = base_code(seq[p]);
  std::vector<float> best_s(n, 0.0f);
  std::vector<int32_t> best_p(n, -1);
  // Partners of p are visited in increasing index order (as a column, then as a row), and only a
  // strictly larger score replaces the best: ties go to the smaller partner index.
  for (int64_t i = 0; i < n; ++i) {
    const float* srow = scores + i * n;
    for (int64_t j = i + 1; j < n; ++j) {
      const float s = srow[j];
      if (!std::isfinite(s)) throw_non_finite(i, j, s);
      if (j - i - 1 < opt.min_loop || !(static_cast<double>(s) > thr)) continue;
      if (opt.canonical_only && !kCanonical[code[i]][code[j]]) continue;
      if (best_p[i] < 0 || s > best_s[i]) {
        best_s[i] = s;
        best_p[i] = static_cast<int32_t>(j);
      }
      if (best_p[j] < 0 || s > best_s[j]) {
        best_s[j] = s;
        best_p[j] = static_cast<int32_t>(i);
      }
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    const int32_t j = best_p[i];
    if (j > i && best_p[j] == i) {
      result.pairs.emplace_back(static_cast<int32_t>(i), j);
      result.score += static_cast<double>(best_s[i]) - thr;
    }
  }
  return result;
}

std::vector<DecodeResult> decode_batch(const std::vector<DecodeInput>& inputs, bool greedy,
                                       int num_threads) {
  const size_t n = inputs.size();
  std::vector<DecodeResult> out(n);
  std::vector<std::exception_ptr> errors(n);
  auto run_one = [&](size_t k) {
    try {
      const DecodeInput& in = inputs[k];
      out[k] = greedy ? decode_greedy(*in.seq, in.scores, in.rows, in.cols, *in.options)
                      : decode_nested(*in.seq, in.scores, in.rows, in.cols, *in.options);
    } catch (...) {
      errors[k] = std::current_exception();
    }
  };
  size_t threads = num_threads > 0 ? static_cast<size_t>(num_threads)
                                   : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, n);
  if (threads <= 1) {
    for (size_t k = 0; k < n; ++k) run_one(k);
  } else {
    std::atomic<size_t> next{0};
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (size_t t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (size_t k = next.fetch_add(1); k < n; k = next.fetch_add(1)) run_one(k);
      });
    }
    for (auto& th : pool) th.join();
  }
  for (size_t k = 0; k < n; ++k) {
    if (!errors[k]) continue;
    try {
      std::rethrow_exception(errors[k]);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("batch index " + std::to_string(k) + ": " + e.what());
    }
  }
  return out;
}

}  // namespace rnaernie
