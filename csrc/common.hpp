// Small shared pieces of the native core: the nucleotide lookup table, a portable RNG and a parallel loop.
// Nothing here knows Python or torch.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace rnaernie {

// An uninitialised array from malloc (freed with free). Large ones (>= 4 MiB) are 2 MiB aligned
// and, on Linux, advised as transparent huge pages: a padded batch of 100k sequences is ~1.6 GB
// of output, and with 4 KiB pages its first-touch page faults cost about as much as the encoding.
struct FreeDeleter {
  void operator()(void* p) const noexcept { std::free(p); }
};
template <class T>
using BigArray = std::unique_ptr<T[], FreeDeleter>;

template <class T>
BigArray<T> alloc_big(size_t n) {
  constexpr size_t kHuge = size_t{2} << 20;
  size_t bytes = std::max<size_t>(n * sizeof(T), 1);
  void* p = nullptr;
  if (bytes >= 2 * kHuge) {
    bytes = (bytes + kHuge - 1) / kHuge * kHuge;
    if (posix_memalign(&p, kHuge, bytes) != 0) p = nullptr;
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, bytes, MADV_HUGEPAGE);  // advisory: ignored where THP is off
#endif
  } else {
    p = std::malloc(bytes);
  }
  if (!p) throw std::bad_alloc();
  return BigArray<T>(static_cast<T*>(p));
}

// Token ids of the official RNAErnie vocabulary (see rnaernie/vocab.py).
constexpr int64_t kPadId = 0, kUnkId = 1, kClsId = 2, kSepId = 3, kMaskId = 4, kDelId = 5, kIndId = 6;
constexpr int64_t kTypeOffset = 7, kNumTypes = 28;
constexpr int64_t kNucOffset = 35;  // A=35, U=36, C=37, G=38
constexpr int64_t kVocabSize = 39;

// Byte classes of the normaliser: a nucleotide code 0..3 (A, U, C, G), or one of these.
constexpr int8_t kByteAmbiguous = 4;   // IUPAC ambiguity code -> [UNK]
constexpr int8_t kByteSkip = 5;        // whitespace, dropped
constexpr int8_t kByteInvalid = -1;    // anything else

// Maps every byte to its class: upper/lower case, T -> U, IUPAC N R Y S W K M B D H V -> ambiguous.
inline const std::array<int8_t, 256>& byte_classes() {
  static const std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(kByteInvalid);
    const char* nucs = "AUCG";
    for (int i = 0; i < 4; ++i) {
      t[static_cast<uint8_t>(nucs[i])] = static_cast<int8_t>(i);
      t[static_cast<uint8_t>(nucs[i] + 32)] = static_cast<int8_t>(i);
    }
    t['T'] = t['t'] = 1;
    for (const char* p = "NRYSWKMBDHV"; *p; ++p) {
      t[static_cast<uint8_t>(*p)] = kByteAmbiguous;
      t[static_cast<uint8_t>(*p + 32)] = kByteAmbiguous;
    }
    for (const char* p = " \t\r\n\v\f"; *p; ++p) t[static_cast<uint8_t>(*p)] = kByteSkip;
    return t;
  }();
  return table;
}

// SplitMix64: a small, portable, seedable generator (identical streams on every platform,
// unlike std:: distributions), mirrored in rnaernie/_masking_ref.py.
struct SplitMix64 {
  uint64_t state;
  explicit SplitMix64(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  uint64_t below(uint64_t n) { return next() % n; }  // n > 0; modulo bias < 2^-40 for n < 2^24
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

// MurmurHash3's 32-bit finaliser; the counter-based stream of the MLM replacement (shared with Triton).
inline uint32_t fmix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x85EBCA6BU;
  x ^= x >> 13;
  x *= 0xC2B2AE35U;
  x ^= x >> 16;
  return x;
}

inline int resolve_threads(int requested, int64_t work_items) {
  if (requested < 0) throw std::invalid_argument("threads must be >= 0 (0 = all cores)");
  int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  n = std::max(1, n);
  return static_cast<int>(std::min<int64_t>(n, std::max<int64_t>(1, work_items)));
}

// Runs fn(begin, end) over [0, n) split into contiguous blocks on up to `threads` threads.
// The first exception thrown by any block is rethrown in the caller.
template <class Fn>
void parallel_for(int64_t n, int threads, Fn&& fn) {
  threads = resolve_threads(threads, n);
  if (threads <= 1 || n < 2) {
    fn(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  std::exception_ptr error;
  std::mutex error_mutex;
  const int64_t block = (n + threads - 1) / threads;
  for (int t = 0; t < threads; ++t) {
    const int64_t b = t * block, e = std::min(n, b + block);
    if (b >= e) break;
    pool.emplace_back([&, b, e] {
      try {
        fn(b, e);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

// Runs fn(i) for every i in [0, n) on up to `threads` threads, each taking the next i as it
// finishes one (for items of uneven cost: order them longest first). The first exception thrown
// is rethrown in the caller; the items not yet started are skipped.
template <class Fn>
void parallel_each(int64_t n, int threads, Fn&& fn) {
  threads = resolve_threads(threads, n);
  if (threads <= 1 || n < 2) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (int64_t i; (i = next++) < n;) {
        try {
          fn(i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = std::current_exception();
          next = n;
        }
      }
    });
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace rnaernie
