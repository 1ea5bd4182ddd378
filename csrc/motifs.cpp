#include "motifs.hpp"

#include <stdexcept>

#include "common.hpp"

namespace rnaernie {

MotifMatcher::MotifMatcher(const std::vector<std::string>& motifs) {
  const auto& table = byte_classes();
  next_.push_back({-1, -1, -1, -1});
  std::vector<std::vector<int32_t>> own(1);
  length_.reserve(motifs.size());
  for (size_t m = 0; m < motifs.size(); ++m) {
    int32_t state = 0, len = 0;
    for (unsigned char ch : motifs[m]) {
      const int8_t c = table[ch];
      if (c == kByteSkip) continue;
      if (c < 0 || c > 3) {
        throw std::invalid_argument("motif " + std::to_string(m) + " ('" + motifs[m] +
                                    "'): only A, C, G, U/T are allowed in motifs");
      }
      if (next_[state][c] < 0) {
        next_[state][c] = static_cast<int32_t>(next_.size());
        next_.push_back({-1, -1, -1, -1});
        own.emplace_back();
      }
      state = next_[state][c];
      ++len;
    }
    if (len == 0) throw std::invalid_argument("motif " + std::to_string(m) + " is empty");
    own[state].push_back(static_cast<int32_t>(m));
    length_.push_back(len);
    max_len_ = std::max<int64_t>(max_len_, len);
  }

  // Breadth-first: failure links, DFA completion and merged output lists (own motifs, then the
  // failure state's list, which is complete because it is shallower).
  const int32_t nstates = static_cast<int32_t>(next_.size());
  std::vector<int32_t> fail(nstates, 0), order;
  order.reserve(nstates);
  for (int c = 0; c < 4; ++c) {
    int32_t& t = next_[0][c];
    if (t < 0) {
      t = 0;
    } else {
      fail[t] = 0;
      order.push_back(t);
    }
  }
  for (size_t qi = 0; qi < order.size(); ++qi) {
    const int32_t s = order[qi];
    for (int c = 0; c < 4; ++c) {
      int32_t& t = next_[s][c];
      if (t < 0) {
        t = next_[fail[s]][c];
      } else {
        fail[t] = next_[fail[s]][c];
        order.push_back(t);
      }
    }
  }
  std::vector<std::vector<int32_t>> merged(nstates);
  merged[0] = own[0];
  for (int32_t s : order) {
    merged[s] = own[s];
    merged[s].insert(merged[s].end(), merged[fail[s]].begin(), merged[fail[s]].end());
  }
  out_begin_.assign(nstates + 1, 0);
  for (int32_t s = 0; s < nstates; ++s) out_begin_[s + 1] = out_begin_[s] + static_cast<int32_t>(merged[s].size());
  out_.reserve(out_begin_[nstates]);
  for (int32_t s = 0; s < nstates; ++s) out_.insert(out_.end(), merged[s].begin(), merged[s].end());
}

template <class Code, class Emit>
void MotifMatcher::scan(int64_t n, Code&& code_at, Emit&& emit) const {
  int32_t state = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int c = code_at(i);
    if (c < 0) {
      state = 0;
      continue;
    }
    state = next_[state][c];
    for (int32_t k = out_begin_[state], e = out_begin_[state + 1]; k < e; ++k) {
      const int32_t m = out_[k];
      emit(i + 1 - length_[m], i + 1, m);
    }
  }
}

void MotifMatcher::find_ids(const int64_t* ids, int64_t n, std::vector<MotifHit>& out) const {
  scan(
      n,
      [ids](int64_t i) {
        const int64_t c = ids[i] - kNucOffset;
        return (c >= 0 && c < 4) ? static_cast<int>(c) : -1;
      },
      [&out](int64_t s, int64_t e, int32_t m) { out.push_back({s, e, m}); });
}

MotifHits MotifMatcher::find(const std::vector<SeqView>& seqs, int threads,
                             const std::vector<std::string>* names) const {
  // Validates and gives normalised lengths; a sequence with whitespace is scanned as one piece,
  // a clean one is cut into chunks (overlapping by max_len - 1) so long texts use all cores.
  const std::vector<int64_t> n = normalized_lengths(seqs, false, names, threads);
  constexpr int64_t kChunk = 1 << 20;
  struct Piece {
    int64_t seq, begin, end;  // emit matches ending in (begin, end]
  };
  std::vector<Piece> pieces;
  for (int64_t s = 0; s < static_cast<int64_t>(seqs.size()); ++s) {
    if (n[s] != seqs[s].size || n[s] <= kChunk) {
      pieces.push_back({s, 0, seqs[s].size});
      continue;
    }
    for (int64_t b = 0; b < n[s]; b += kChunk) pieces.push_back({s, b, std::min(n[s], b + kChunk)});
  }
  std::vector<MotifHits> parts(pieces.size());
  const auto& table = byte_classes();
  parallel_for(static_cast<int64_t>(pieces.size()), threads, [&](int64_t pb, int64_t pe) {
    for (int64_t pi = pb; pi < pe; ++pi) {
      const Piece& pc = pieces[pi];
      const auto* p = reinterpret_cast<const uint8_t*>(seqs[pc.seq].data);
      MotifHits& h = parts[pi];
      auto emit = [&](int64_t s, int64_t e, int32_t m) {
        h.seq.push_back(pc.seq);
        h.start.push_back(s);
        h.end.push_back(e);
        h.motif.push_back(m);
      };
      if (n[pc.seq] != seqs[pc.seq].size) {  // has whitespace: walk raw bytes, count normalised positions
        std::vector<int8_t> codes;
        codes.reserve(n[pc.seq]);
        for (int64_t i = 0; i < seqs[pc.seq].size; ++i) {
          const int8_t c = table[p[i]];
          if (c != kByteSkip) codes.push_back(c);
        }
        scan(static_cast<int64_t>(codes.size()), [&](int64_t i) { return codes[i] < 4 ? codes[i] : -1; }, emit);
        continue;
      }
      const int64_t lead = std::min(pc.begin, max_len_ - 1);
      const uint8_t* base = p + pc.begin - lead;
      scan(
          pc.end - pc.begin + lead, [&](int64_t i) { const int8_t c = table[base[i]]; return c < 4 ? c : -1; },
          [&](int64_t s, int64_t e, int32_t m) {
            if (e > lead) emit(s + pc.begin - lead, e + pc.begin - lead, m);
          });
    }
  });
  MotifHits all;
  size_t total = 0;
  for (const auto& h : parts) total += h.seq.size();
  all.seq.reserve(total);
  all.start.reserve(total);
  all.end.reserve(total);
  all.motif.reserve(total);
  for (const auto& h : parts) {
    all.seq.insert(all.seq.end(), h.seq.begin(), h.seq.end());
    all.start.insert(all.start.end(), h.start.begin(), h.start.end());
    all.end.insert(all.end.end(), h.end.begin(), h.end.end());
    all.motif.insert(all.motif.end(), h.motif.begin(), h.motif.end());
  }
  return all;
}

}  // namespace rnaernie
