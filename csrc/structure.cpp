// Structure decoders: sparse nested DP (Nussinov and MEA) and greedy mutual-best matching
// (greedy and ThreshKnot).
//
// Nested DP, row-push form. N(i, j) is the best score of the interval [i, j] (N(i, i-1) = 0):
//   N(i, j) = max( N(i+1, j)                       if i may stay unpaired,
//                  max_{candidate (i, l), l <= j}  B(i, l) + N(l+1, j) )
//   B(i, l) = w(i, l) + N(i+1, l-1)
// with w = score - threshold (nested) or w = 2 gamma P - q_i - q_j (mea: the MEA objective is
// sum_i q_i + the sum of w over the pairs, so the same DP maximises it).
// Rows are filled for i = L-1 .. 0; for each candidate (i, l) the update
// N(i, l..L-1) = max(N(i, .), B(i, l) + N(l+1, .)) runs over two contiguous rows and vectorises.
// The cost is O(L^2 + sum over candidates of (L - l)): it grows with the number of candidates.
//
// No lonely pairs adds, per candidate pair:
//   Q(i, l) = w + max(N(i+1, l-1), Q(i+1, l-1))   (i, l) stacked on an outer pair (i-1, l+1)
//   B(i, l) = w + Q(i+1, l-1)                      (i, l) with no outer stack needs an inner one
// (Q of a non-candidate is -inf; forced constraint pairs are exempt: B = Q.)
//
// Candidates: allowed pairs with w > 0 (nested) or P > threshold (mea), plus pairs that involve a
// position the constraint says must pair. Without no_lonely_pairs, mea also drops pairs with
// w <= 0: removing such a pair never lowers the objective, so the optimum is unchanged.
// The table holds doubles: float sums overflow (scores near 3e38) and lose ties.
#include "structure.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <stdexcept>

#include "common.hpp"

namespace rnaernie {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr double kFloatMax = std::numeric_limits<float>::max();
using Val = double;  // DP table entries
constexpr Val kValNegInf = kNegInf;

// The hot loop is compiled for AVX-512 and AVX2 too and picked at load time (the package is built
// for baseline x86-64).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RNAERNIE_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RNAERNIE_SIMD_CLONES
#endif

// dst[k] = max(dst[k], b + src[k]) for k < len.
RNAERNIE_SIMD_CLONES void max_plus_row(Val* __restrict dst, const Val* __restrict src, Val b,
                                       int64_t len) {
  for (int64_t k = 0; k < len; ++k) {
    const Val v = b + src[k];
    dst[k] = v > dst[k] ? v : dst[k];
  }
}

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

Constraint parse_constraint(const std::string* constraint, const DecodeOptions& opt, int64_t n) {
  Constraint c;
  c.must.assign(n, 0);
  c.can5.assign(n, 1);
  c.can3.assign(n, 1);
  c.mate.assign(n, -1);
  if (constraint == nullptr) return c;
  const std::string& s = *constraint;
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

bool is_nested(DecodeMethod m) { return m == DecodeMethod::kNested || m == DecodeMethod::kMea; }

void check_options(const DecodeOptions& opt) {
  decode_method_name(opt.method);  // throws on a value outside the enum
  if (opt.min_loop < 0) {
    throw std::invalid_argument("min_loop must be >= 0, got " + std::to_string(opt.min_loop));
  }
  if (!(std::fabs(opt.threshold) <= kFloatMax)) {
    throw std::invalid_argument("threshold must be finite and within the float32 range, got " +
                                std::to_string(opt.threshold));
  }
  if (!(opt.gamma > 0.0 && opt.gamma <= kFloatMax)) {
    throw std::invalid_argument("gamma must be > 0 and within the float32 range, got " +
                                std::to_string(opt.gamma));
  }
  if (opt.no_lonely_pairs && !is_nested(opt.method)) {
    throw std::invalid_argument(std::string("no_lonely_pairs needs method 'nested' or 'mea', got '") +
                                decode_method_name(opt.method) + "'");
  }
}

void check_common(const std::string& seq, const float* scores, int64_t rows, int64_t cols) {
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
}

[[noreturn]] void throw_non_finite(int64_t i, int64_t j, float v) {
  throw std::invalid_argument("score matrix has a non-finite value (" + std::to_string(v) +
                              ") at [" + std::to_string(i) + ", " + std::to_string(j) + "]");
}

// Finite, and in [0, 1] for the probability methods.
void check_value(int64_t i, int64_t j, float v, bool prob) {
  if (!std::isfinite(v)) throw_non_finite(i, j, v);
  if (prob && !(v >= 0.0f && v <= 1.0f)) {
    throw std::invalid_argument("mea and threshknot need probabilities in [0, 1], got " +
                                std::to_string(v) + " at [" + std::to_string(i) + ", " +
                                std::to_string(j) + "]");
  }
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

// nested and mea.
DecodeResult decode_nested(const std::string& seq, const float* scores, int64_t n,
                           const DecodeOptions& opt, const std::string* constraint) {
  const Constraint con = parse_constraint(constraint, opt, n);
  const double thr = opt.threshold;
  const bool nlp = opt.no_lonely_pairs;
  const bool mea = opt.method == DecodeMethod::kMea;
  DecodeResult result;
  if (n == 0) return result;

  std::vector<int> code(n);
  for (int64_t p = 0; p < n; ++p) code[p] = base_code(seq[p]);

  // mea: q_i = 1 - sum_{j != i} P_ij over the upper triangle (checked here, whole).
  std::vector<double> q;
  if (mea) {
    q.assign(n, 1.0);
    for (int64_t i = 0; i < n; ++i) {
      const float* srow = scores + i * n;
      double row = 0.0;
      for (int64_t j = i + 1; j < n; ++j) {
        check_value(i, j, srow[j], true);
        row += srow[j];
        q[j] -= srow[j];
      }
      q[i] -= row;
    }
  }

  // Candidate pairs, row by row (j ascending), reading row i of the upper triangle contiguously.
  std::vector<Cand> cands;
  std::vector<int64_t> row_start(n + 2, 0);
  for (int64_t i = 0; i < n; ++i) {
    row_start[i] = static_cast<int64_t>(cands.size());
    const float* srow = scores + i * n;
    const int64_t jmin = i + opt.min_loop + 1;
    if (!mea) {
      for (int64_t j = i + 1; j < std::min(jmin, n); ++j) check_value(i, j, srow[j], false);
    }
    for (int64_t j = jmin; j < n; ++j) {
      const float s = srow[j];
      if (!mea) check_value(i, j, s, false);
      const double w = mea ? 2.0 * opt.gamma * s - q[i] - q[j] : static_cast<double>(s) - thr;
      const bool pass = mea ? (s > thr && (w > 0.0 || nlp)) : w > 0.0;
      bool take;
      bool forced = false;
      if (con.mate[i] >= 0 || con.mate[j] >= 0) {
        take = forced = (con.mate[i] == j);
      } else {
        take = con.can5[i] && con.can3[j] && (pass || con.must[i] || con.must[j]) &&
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
      max_plus_row(ni + l, tab.row(l + 1), cd.b, n - l);  // N(i, l..) vs b + N(l+1, l..)
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
          const Val cv = cands[c].b + tab.at(cands[c].l + 1, j);
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
  if (mea) {  // the objective itself: sum 2 gamma P over the pairs + sum q over unpaired bases
    std::vector<uint8_t> paired(n, 0);
    result.score = 0.0;
    for (const auto& [i, j] : result.pairs) {
      paired[i] = paired[j] = 1;
      result.score += 2.0 * opt.gamma * scores[i * n + j];
    }
    for (int64_t p = 0; p < n; ++p) result.score += paired[p] ? 0.0 : q[p];
  }
  return result;
}

// greedy (score > threshold) and threshknot (P >= threshold): mutual best partners.
DecodeResult decode_mutual_best(const std::string& seq, const float* scores, int64_t n,
                                const DecodeOptions& opt) {
  const double thr = opt.threshold;
  const bool tk = opt.method == DecodeMethod::kThreshKnot;
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
      check_value(i, j, s, tk);
      const bool pass = tk ? static_cast<double>(s) >= thr : static_cast<double>(s) > thr;
      if (j - i - 1 < opt.min_loop || !pass) continue;
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

DecodeResult decode_checked(const std::string& seq, const float* scores, int64_t rows,
                            int64_t cols, const DecodeOptions& opt,
                            const std::string* constraint) {
  check_common(seq, scores, rows, cols);
  if (is_nested(opt.method)) return decode_nested(seq, scores, rows, opt, constraint);
  if (constraint != nullptr) {
    throw std::invalid_argument(std::string("constraints need method 'nested' or 'mea', got '") +
                                decode_method_name(opt.method) + "'");
  }
  return decode_mutual_best(seq, scores, rows, opt);
}

}  // namespace

const char* decode_method_name(DecodeMethod method) {
  switch (method) {
    case DecodeMethod::kNested: return "nested";
    case DecodeMethod::kGreedy: return "greedy";
    case DecodeMethod::kMea: return "mea";
    case DecodeMethod::kThreshKnot: return "threshknot";
  }
  throw std::invalid_argument("unknown decode method " + std::to_string(static_cast<int>(method)));
}

DecodeMethod parse_decode_method(const std::string& name) {
  for (const auto m : {DecodeMethod::kNested, DecodeMethod::kGreedy, DecodeMethod::kMea,
                       DecodeMethod::kThreshKnot}) {
    if (name == decode_method_name(m)) return m;
  }
  throw std::invalid_argument("method must be one of 'nested', 'greedy', 'mea', 'threshknot', got '" +
                              name + "'");
}

DecodeResult decode(const std::string& seq, const float* scores, int64_t rows, int64_t cols,
                    const DecodeOptions& options, const std::string* constraint) {
  check_options(options);
  return decode_checked(seq, scores, rows, cols, options, constraint);
}

std::vector<DecodeResult> decode_batch(const std::vector<DecodeInput>& inputs,
                                       const DecodeOptions& options, int num_threads) {
  check_options(options);
  const size_t n = inputs.size();
  std::vector<DecodeResult> out(n);
  std::vector<std::exception_ptr> errors(n);
  auto run_one = [&](size_t k) {
    try {
      const DecodeInput& in = inputs[k];
      out[k] = decode_checked(*in.seq, in.scores, in.rows, in.cols, options, in.constraint);
    } catch (...) {
      errors[k] = std::current_exception();
    }
  };
  // (run_one keeps each item's error: every item runs, and the first failing index is reported)
  parallel_each(static_cast<int64_t>(n), std::max(num_threads, 0),
                [&](int64_t k) { run_one(static_cast<size_t>(k)); });
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
