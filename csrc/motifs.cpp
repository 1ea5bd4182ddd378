#include "motifs.hpp"

#include <stdexcept>

#include "common.hpp"

namespace rnaernie {

MotifMatcher::MotifMatcher(const std::vector<std::string>& motifs) {
  const auto& table = byte_classes();
  std::vector<std::array<int32_t, 4>> next{{-1, -1, -1, -1}};  // trie, in insertion order
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
      if (next[state][c] < 0) {
        next[state][c] = static_cast<int32_t>(next.size());
        next.push_back({-1, -1, -1, -1});
        own.emplace_back();
      }
      state = next[state][c];
      ++len;
    }
    if (len == 0) throw std::invalid_argument("motif " + std::to_string(m) + " is empty");
    own[state].push_back(static_cast<int32_t>(m));
    length_.push_back(len);
    max_len_ = std::max<int64_t>(max_len_, len);
  }

  // Breadth-first: failure links, DFA completion and merged output lists (own motifs, then the
  // failure state's list, which is complete because it is shallower).
  const int32_t nstates = static_cast<int32_t>(next.size());
  std::vector<int32_t> fail(nstates, 0), order{0};
  order.reserve(nstates);
  for (size_t qi = 0; qi < order.size(); ++qi) {
    const int32_t s = order[qi];
    for (int c = 0; c < 4; ++c) {
      int32_t& t = next[s][c];
      if (t < 0) {
        t = s == 0 ? 0 : next[fail[s]][c];
      } else {
        fail[t] = s == 0 ? 0 : next[fail[s]][c];
        order.push_back(t);
      }
    }
  }
  std::vector<std::vector<int32_t>> merged(nstates);
  for (int32_t s : order) {
    merged[s] = own[s];
    if (s != 0) merged[s].insert(merged[s].end(), merged[fail[s]].begin(), merged[fail[s]].end());
  }
  std::vector<int32_t> rank(nstates);  // trie id -> breadth-first id
  for (int32_t i = 0; i < nstates; ++i) rank[order[i]] = i;
  states_.resize(nstates);
  for (int32_t i = 0; i < nstates; ++i) {
    const int32_t s = order[i];
    State& st = states_[i];
    for (int c = 0; c < 4; ++c) st.next[c] = rank[next[s][c]];
    st.out_begin = static_cast<int32_t>(out_.size());
    for (int32_t m : merged[s]) out_.push_back({m, length_[m]});
    st.out_end = static_cast<int32_t>(out_.size());
  }
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
    const State& st = states_[state];
    state = st.next[c];
    const State& to = states_[state];
    for (int32_t k = to.out_begin; k < to.out_end; ++k) {
      const Out& o = out_[k];
      emit(i + 1 - o.length, i + 1, o.motif);
    }
  }
}

void MotifMatcher::find_ids(const int64_t* ids, int64_t n, std::vector<MotifHit>& out) const {
  scan(
      n,
      [ids](int64_t i) {
        const int64_t t = ids[i];
        return (t >= kNucOffset && t < kNucOffset + 4) ? static_cast<int>(t - kNucOffset) : -1;
      },
      [&out](int64_t s, int64_t e, int32_t m) { out.push_back({s, e, m}); });
}

MotifHits MotifMatcher::find(const std::vector<SeqView>& seqs, int threads,
                             const std::vector<std::string>* names) const {
  // Validates and gives normalised lengths; a sequence with whitespace is scanned as one piece,
  // a clean one is cut into chunks (overlapping by max_len - 1) so long texts use all cores.
  // Two passes: count the hits of every piece, then write them straight into the output arrays
  // at prefix-sum offsets (no per-hit reallocation, no merge copy).
  const std::vector<int64_t> n = normalized_lengths(seqs, false, names, threads);
  constexpr int64_t kChunk = 1 << 20;
  struct Piece {
    int64_t seq, begin, end;  // emit matches ending in (begin, end]
  };
  std::vector<Piece> pieces;
  for (int64_t s = 0; s < static_cast<int64_t>(seqs.size()); ++s) {
    if (n[s] != seqs[s].size || n[s] <= kChunk) {
      pieces.push_back({s, 0, n[s]});
      continue;
    }
    for (int64_t b = 0; b < n[s]; b += kChunk) pieces.push_back({s, b, std::min(n[s], b + kChunk)});
  }
  const auto& table = byte_classes();
  // Calls emit(start, end, motif) for every hit of a piece, in normalised coordinates.
  auto each_hit = [&](const Piece& pc, auto&& emit) {
    const auto* p = reinterpret_cast<const uint8_t*>(seqs[pc.seq].data);
    if (n[pc.seq] != seqs[pc.seq].size) {  // has whitespace: compact the codes first
      std::vector<int8_t> codes;
      codes.reserve(n[pc.seq]);
      for (int64_t i = 0; i < seqs[pc.seq].size; ++i) {
        const int8_t c = table[p[i]];
        if (c != kByteSkip) codes.push_back(c);
      }
      scan(static_cast<int64_t>(codes.size()), [&](int64_t i) { return codes[i] < 4 ? codes[i] : -1; }, emit);
      return;
    }
    const int64_t lead = std::min(pc.begin, max_len_ - 1);
    const uint8_t* base = p + pc.begin - lead;
    const int64_t shift = pc.begin - lead;
    scan(
        pc.end - pc.begin + lead,
        [&](int64_t i) {
          const int8_t c = table[base[i]];
          return c < 4 ? c : -1;
        },
        [&](int64_t s, int64_t e, int32_t m) {
          if (e > lead) emit(s + shift, e + shift, m);
        });
  };
  const auto npieces = static_cast<int64_t>(pieces.size());
  std::vector<int64_t> offset(npieces + 1, 0);
  parallel_for(npieces, threads, [&](int64_t pb, int64_t pe) {
    for (int64_t pi = pb; pi < pe; ++pi) {
      int64_t count = 0;
      each_hit(pieces[pi], [&count](int64_t, int64_t, int32_t) { ++count; });
      offset[pi + 1] = count;
    }
  });
  for (int64_t pi = 0; pi < npieces; ++pi) offset[pi + 1] += offset[pi];
  MotifHits all;
  const auto total = static_cast<size_t>(offset[npieces]);
  all.size = total;
  all.seq = alloc_big<int64_t>(total);
  all.start = alloc_big<int64_t>(total);
  all.end = alloc_big<int64_t>(total);
  all.motif = alloc_big<int32_t>(total);
  parallel_for(npieces, threads, [&](int64_t pb, int64_t pe) {
    for (int64_t pi = pb; pi < pe; ++pi) {
      int64_t k = offset[pi];
      const int64_t seq = pieces[pi].seq;
      each_hit(pieces[pi], [&](int64_t s, int64_t e, int32_t m) {
        all.seq[k] = seq;
        all.start[k] = s;
        all.end[k] = e;
        all.motif[k] = m;
        ++k;
      });
    }
  });
  return all;
}

}  // namespace rnaernie
