// The one pybind11 bindings file: thin wrappers from numpy buffers to the C++ algorithms in csrc/.
// C++ std::invalid_argument reaches Python as ValueError; batch calls release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "homology.hpp"
#include "masking.hpp"
#include "motifs.hpp"
#include "tokenizer.hpp"

namespace py = pybind11;

// ==== section: tokenizer ====
namespace {

template <class T>
py::array_t<T> to_numpy(std::vector<T>&& v, std::vector<py::ssize_t> shape) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(shape, heap->data(), owner);
}

template <class T>
py::array_t<T> to_numpy(rnaernie::BigArray<T>&& v, std::vector<py::ssize_t> shape) {
  T* data = v.release();
  py::capsule owner(data, [](void* p) { std::free(p); });
  return py::array_t<T>(shape, data, owner);
}

// Borrowed UTF-8/bytes buffers of a batch of str or bytes, with the list that keeps them alive
// (a non-list input is copied into one first: indexing it may create temporary objects).
struct SeqBatch {
  py::list keep;
  std::vector<rnaernie::SeqView> views;
};

SeqBatch seq_batch(const py::sequence& seqs) {
  SeqBatch b{PyList_Check(seqs.ptr()) ? py::reinterpret_borrow<py::list>(seqs) : py::list(seqs), {}};
  const py::ssize_t n = PyList_GET_SIZE(b.keep.ptr());
  b.views.reserve(n);
  for (py::ssize_t i = 0; i < n; ++i) {
    PyObject* o = PyList_GET_ITEM(b.keep.ptr(), i);
    Py_ssize_t size = 0;
    const char* data = nullptr;
    if (PyUnicode_Check(o)) {
      data = PyUnicode_AsUTF8AndSize(o, &size);
      if (!data) throw py::error_already_set();
    } else if (PyBytes_Check(o)) {
      char* buf = nullptr;
      if (PyBytes_AsStringAndSize(o, &buf, &size) != 0) throw py::error_already_set();
      data = buf;
    } else {
      throw std::invalid_argument("sequence " + std::to_string(i) + " is a " +
                                  std::string(Py_TYPE(o)->tp_name) + ", expected str or bytes");
    }
    b.views.push_back({data, static_cast<int64_t>(size)});
  }
  return b;
}

std::vector<std::string> names_of(const py::object& names) {
  if (names.is_none()) return {};
  try {
    return names.cast<std::vector<std::string>>();
  } catch (const py::cast_error&) {
    throw std::invalid_argument("names must be a sequence of strings");
  }
}

py::dict encode_batch_py(const py::sequence& seqs, const py::object& types, int64_t max_length, bool truncate,
                         bool replace_invalid, bool add_special, int64_t window, int64_t stride, int threads,
                         const py::object& names) {
  auto batch = seq_batch(seqs);
  const auto& views = batch.views;
  std::vector<int64_t> type_ids;
  if (!types.is_none()) {
    try {
      type_ids = types.cast<std::vector<int64_t>>();
    } catch (const py::cast_error&) {
      throw std::invalid_argument("types must be a sequence of token ids (64-bit integers)");
    }
  }
  const auto name_list = names_of(names);
  rnaernie::EncodeOptions opt;
  opt.max_length = max_length;
  opt.truncate = truncate;
  opt.replace_invalid = replace_invalid;
  opt.add_special = add_special;
  opt.window = window;
  opt.stride = stride;
  opt.threads = threads;
  rnaernie::Encoded enc;
  {
    py::gil_scoped_release release;
    enc = rnaernie::encode_batch(views, type_ids, opt, name_list.empty() ? nullptr : &name_list);
  }
  std::vector<int64_t> seq(enc.rows), start(enc.rows), end(enc.rows);
  for (int64_t r = 0; r < enc.rows; ++r) {
    seq[r] = enc.spans[r].seq;
    start[r] = enc.spans[r].start;
    end[r] = enc.spans[r].end;
  }
  py::dict out;
  const std::vector<py::ssize_t> shape{enc.rows, enc.cols};
  out["input_ids"] = to_numpy(std::move(enc.input_ids), shape);
  out["attention_mask"] = to_numpy(std::move(enc.attention_mask), shape);
  out["lengths"] = to_numpy(std::move(enc.lengths), {enc.rows});
  out["seq_index"] = to_numpy(std::move(seq), {enc.rows});
  out["start"] = to_numpy(std::move(start), {enc.rows});
  out["end"] = to_numpy(std::move(end), {enc.rows});
  return out;
}

void register_tokenizer(py::module_& m) {
  m.def("encode_batch", &encode_batch_py, py::arg("seqs"), py::arg("types") = py::none(),
        py::arg("max_length") = 0, py::arg("truncate") = false, py::arg("replace_invalid") = false,
        py::arg("add_special") = true, py::arg("window") = 0, py::arg("stride") = 0, py::arg("threads") = 0,
        py::arg("names") = py::none(),
        "Encode a batch of sequences to padded token ids; see rnaernie.tokenizer.Tokenizer.");
  m.def(
      "normalized_lengths",
      [](const py::sequence& seqs, bool replace_invalid, int threads, const py::object& names) {
        auto batch = seq_batch(seqs);
  const auto& views = batch.views;
        const auto name_list = names_of(names);
        std::vector<int64_t> n;
        {
          py::gil_scoped_release release;
          n = rnaernie::normalized_lengths(views, replace_invalid, name_list.empty() ? nullptr : &name_list,
                                           threads);
        }
        const auto size = static_cast<py::ssize_t>(n.size());
        return to_numpy(std::move(n), {size});
      },
      py::arg("seqs"), py::arg("replace_invalid") = false, py::arg("threads") = 0, py::arg("names") = py::none());
  m.def(
      "kmer_spectra",
      [](const py::sequence& seqs, int kmax, bool replace_invalid, int threads, const py::object& names) {
        auto batch = seq_batch(seqs);
        const auto name_list = names_of(names);
        rnaernie::BigArray<float> x;
        {
          py::gil_scoped_release release;
          x = rnaernie::kmer_spectra(batch.views, kmax, replace_invalid,
                                     name_list.empty() ? nullptr : &name_list, threads);
        }
        int64_t width = 0;  // kmax is valid here: kmer_spectra checked it
        for (int k = 1; k <= kmax; ++k) width += int64_t{1} << (2 * k);
        return to_numpy(std::move(x), {static_cast<py::ssize_t>(batch.views.size()), width});
      },
      py::arg("seqs"), py::arg("kmax") = 5, py::arg("replace_invalid") = false, py::arg("threads") = 0,
      py::arg("names") = py::none(), "Normalised k-mer spectra (k = 1..kmax); see rnaernie.kmer.kmer_spectra.");
}

}  // namespace
// ==== end section: tokenizer ====

// ==== section: motifs ====
namespace {

void register_motifs(py::module_& m) {
  py::class_<rnaernie::MotifMatcher>(m, "MotifMatcher")
      .def(py::init<const std::vector<std::string>&>(), py::arg("motifs"))
      .def_property_readonly("num_motifs", &rnaernie::MotifMatcher::num_motifs)
      .def_property_readonly("num_states", &rnaernie::MotifMatcher::num_states)
      .def_property_readonly("max_length", &rnaernie::MotifMatcher::max_length)
      .def(
          "find",
          [](const rnaernie::MotifMatcher& self, const py::sequence& seqs, int threads, const py::object& names) {
            auto batch = seq_batch(seqs);
  const auto& views = batch.views;
            const auto name_list = names_of(names);
            rnaernie::MotifHits h;
            {
              py::gil_scoped_release release;
              h = self.find(views, threads, name_list.empty() ? nullptr : &name_list);
            }
            const auto n = static_cast<py::ssize_t>(h.size);
            py::dict out;
            out["seq_index"] = to_numpy(std::move(h.seq), {n});
            out["start"] = to_numpy(std::move(h.start), {n});
            out["end"] = to_numpy(std::move(h.end), {n});
            out["motif_id"] = to_numpy(std::move(h.motif), {n});
            return out;
          },
          py::arg("seqs"), py::arg("threads") = 0, py::arg("names") = py::none());
}

}  // namespace
// ==== end section: motifs ====

// ==== section: homology ====
namespace {

py::dict alignments_dict(rnaernie::WindowAlignments&& r) {
  const auto n = static_cast<py::ssize_t>(r.n);
  std::vector<int32_t> best(6 * r.n);
  for (int64_t i = 0; i < r.n; ++i) {
    const auto& a = r.best[i];
    int32_t row[6] = {a.score, a.ref, a.q_begin, a.q_end, a.r_begin, a.r_end};
    std::copy(row, row + 6, best.begin() + 6 * i);
  }
  py::dict out;
  out["family_score"] = to_numpy(std::move(r.family_score), {n, static_cast<py::ssize_t>(r.families)});
  out["best"] = to_numpy(std::move(best), {n, py::ssize_t{6}});
  out["candidates"] = to_numpy(std::move(r.candidates), {n});
  return out;
}

void register_homology(py::module_& m) {
  using rnaernie::AlignScoring;
  using rnaernie::HomologyIndex;
  using rnaernie::LocalAlignment;
  using rnaernie::SeedOptions;
  auto alignment_tuple = [](const LocalAlignment& a) {
    return py::make_tuple(a.score, a.q_begin, a.q_end, a.r_begin, a.r_end);
  };
  m.def(
      "smith_waterman",
      [alignment_tuple](const std::string& a, const std::string& b, int match, int mismatch, int gap_open,
                        int gap_extend, const std::optional<std::pair<int, int>>& band) {
        const auto ca = rnaernie::nucleotide_codes(a), cb = rnaernie::nucleotide_codes(b);
        return alignment_tuple(rnaernie::smith_waterman(ca.data(), static_cast<int>(ca.size()), cb.data(),
                                                        static_cast<int>(cb.size()),
                                                        AlignScoring{match, mismatch, gap_open, gap_extend},
                                                        band ? band->first : -(1 << 30),
                                                        band ? band->second : (1 << 30)));
      },
      py::arg("a"), py::arg("b"), py::kw_only(), py::arg("match"), py::arg("mismatch"), py::arg("gap_open"),
      py::arg("gap_extend"), py::arg("band") = py::none(),
      "Best local alignment (Smith-Waterman-Gotoh): (score, a_begin, a_end, b_begin, b_end); band = "
      "(lo, hi): only the diagonals lo <= j - i <= hi (a[i] aligned to b[j]).");
  m.def(
      "dust_mask",
      [](const std::string& seq, int window, double threshold) {
        const auto c = rnaernie::nucleotide_codes(seq);
        auto mask = rnaernie::dust_mask(c.data(), static_cast<int64_t>(c.size()), window, threshold);
        std::vector<bool> out(mask.begin(), mask.end());
        return py::array_t<bool>(py::cast(out));
      },
      py::arg("seq"), py::arg("window"), py::arg("threshold"),
      "Low-complexity positions (DUST, windowed): bool array, True where masked.");
  py::class_<HomologyIndex>(m, "HomologyIndex")
      .def(py::init<const std::vector<std::string>&, const std::vector<int32_t>&, const std::string&, int, int,
                    double>(),
           py::arg("refs"), py::arg("family"), py::arg("seed"), py::arg("max_occurrences"), py::arg("dust_window") = 64,
           py::arg("dust_threshold") = 0.0)
      .def_property_readonly("k", &HomologyIndex::k)
      .def_property_readonly("span", &HomologyIndex::span)
      .def_property_readonly("num_refs", &HomologyIndex::num_refs)
      .def_property_readonly("num_families", &HomologyIndex::num_families)
      .def_property_readonly("indexed", &HomologyIndex::indexed)
      .def(
          "align_windows",
          [](const HomologyIndex& self, const std::string& seq, const std::vector<int64_t>& starts, int width,
             int match, int mismatch, int gap_open, int gap_extend, int ungapped, int xdrop, int max_candidates,
             int pad, int threads) {
            rnaernie::WindowAlignments r;
            {
              py::gil_scoped_release release;
              r = self.align_windows(seq, starts, width, AlignScoring{match, mismatch, gap_open, gap_extend},
                                     SeedOptions{ungapped, xdrop, max_candidates, pad}, threads);
            }
            return alignments_dict(std::move(r));
          },
          py::arg("seq"), py::arg("starts"), py::arg("width"), py::kw_only(), py::arg("match"), py::arg("mismatch"),
          py::arg("gap_open"), py::arg("gap_extend"), py::arg("ungapped"), py::arg("xdrop"),
          py::arg("max_candidates"), py::arg("pad"), py::arg("threads") = 0,
          "Seeded local alignment of each window seq[s:s+width] against the library (GIL released): "
          "family_score (n, families) int32, best (n, 6) int32 = score, ref, q_begin, q_end, r_begin, r_end "
          "(window coordinates; ref -1: none), candidates (n,) references aligned.")
      .def(
          "align_batch",
          [](const HomologyIndex& self, const std::vector<std::string>& seqs, const std::vector<int64_t>& seq,
             const std::vector<bool>& minus,
             const std::vector<py::array_t<int64_t, py::array::c_style | py::array::forcecast>>& starts,
             const std::vector<int>& widths, int match, int mismatch, int gap_open, int gap_extend, int ungapped,
             int xdrop, int max_candidates, int pad, int threads,
             const std::vector<py::array_t<int64_t, py::array::c_style | py::array::forcecast>>& masked) {
            const size_t n = seq.size();
            std::vector<HomologyIndex::Masked> spans(masked.size());
            for (size_t i = 0; i < masked.size(); ++i) {
              const auto& m = masked[i];
              if (!(m.ndim() == 2 && m.shape(1) == 2) && !(m.ndim() == 1 && m.shape(0) == 0))
                throw std::invalid_argument("align_batch: each sequence's masked spans must be a (k, 2) array");
              spans[i] = HomologyIndex::Masked{m.data(), m.ndim() == 2 ? static_cast<int64_t>(m.shape(0)) : 0};
            }
            if (minus.size() != n || starts.size() != n || widths.size() != n)
              throw std::invalid_argument("align_batch needs one sequence index, strand, list of starts and width per job");
            std::vector<HomologyIndex::BatchJob> jobs(n);
            for (size_t q = 0; q < n; ++q) {
              if (starts[q].ndim() != 1) throw std::invalid_argument("align_batch: each job's starts must be 1-D");
              jobs[q] = HomologyIndex::BatchJob{seq[q], static_cast<bool>(minus[q]), starts[q].data(),
                                                static_cast<int64_t>(starts[q].shape(0)), widths[q]};
            }
            std::vector<rnaernie::WindowAlignments> r;
            {
              py::gil_scoped_release release;
              r = self.align_batch(seqs, jobs, AlignScoring{match, mismatch, gap_open, gap_extend},
                                   SeedOptions{ungapped, xdrop, max_candidates, pad}, threads, spans);
            }
            py::list out;
            for (auto& x : r) out.append(alignments_dict(std::move(x)));
            return out;
          },
          py::arg("seqs"), py::arg("seq"), py::arg("minus"), py::arg("starts"), py::arg("widths"), py::kw_only(),
          py::arg("match"), py::arg("mismatch"), py::arg("gap_open"), py::arg("gap_extend"), py::arg("ungapped"),
          py::arg("xdrop"), py::arg("max_candidates"), py::arg("pad"), py::arg("threads") = 0,
          py::arg("masked") = std::vector<py::array_t<int64_t>>{},
          "align_windows of each job q: windows starts[q] (int64) of width widths[q] on sequence seqs[seq[q]], "
          "its reverse complement where minus[q] (starts on that strand, 5'->3'). Each sequence's codes and "
          "DUST mask are made once; the sequences are shared out to the threads, the longest first (GIL "
          "released). masked: none, or per sequence (k, 2) int64 spans [start, end) of its plus strand that "
          "give no seeds, as DUST's (extensions and alignments still run through them). A list of "
          "align_windows' dicts, one per job.");
}

}  // namespace
// ==== end section: homology ====

// ==== section: masking ====
namespace {

using IdArray = py::array_t<int64_t, py::array::c_style>;

void check_ids(const py::array& a, const char* what) {
  if (a.ndim() != 2) throw std::invalid_argument(std::string(what) + " must be 2-D (batch, length), got " +
                                                 std::to_string(a.ndim()) + "-D");
}

py::tuple select_mask_positions_py(const IdArray& ids, const rnaernie::MotifMatcher* matcher,
                                   const std::vector<uint8_t>& motif_tier, uint64_t seed, double mask_prob,
                                   int64_t max_predictions, int64_t span_min, int64_t span_max, bool base,
                                   bool subsequence, bool motif, int threads) {
  check_ids(ids, "input_ids");
  const int64_t rows = ids.shape(0), cols = ids.shape(1);
  rnaernie::MaskingOptions opt;
  opt.mask_prob = mask_prob;
  opt.max_predictions = max_predictions;
  opt.span_min = span_min;
  opt.span_max = span_max;
  opt.base = base;
  opt.subsequence = subsequence;
  opt.motif = motif;
  opt.threads = threads;
  py::array_t<bool> selected({rows, cols});
  py::array_t<int8_t> level(rows);
  auto* sel = reinterpret_cast<uint8_t*>(selected.mutable_data());
  auto* lv = level.mutable_data();
  const int64_t* src = ids.data();
  {
    py::gil_scoped_release release;
    rnaernie::select_mask_positions(src, rows, cols, matcher, motif_tier, opt, seed, sel, lv);
  }
  return py::make_tuple(selected, level);
}

py::tuple apply_mlm_py(const IdArray& ids, const py::array_t<bool, py::array::c_style>& selected, uint32_t seed,
                       int threads) {
  check_ids(ids, "input_ids");
  if (selected.ndim() != 2 || selected.shape(0) != ids.shape(0) || selected.shape(1) != ids.shape(1))
    throw std::invalid_argument("selected must have the shape of input_ids");
  const int64_t rows = ids.shape(0), cols = ids.shape(1);
  IdArray out({rows, cols}), labels({rows, cols});
  const int64_t* src = ids.data();
  const auto* sel = reinterpret_cast<const uint8_t*>(selected.data());
  int64_t* o = out.mutable_data();
  int64_t* l = labels.mutable_data();
  {
    py::gil_scoped_release release;
    rnaernie::apply_mlm_replacement(src, sel, rows, cols, seed, o, l, threads);
  }
  return py::make_tuple(out, labels);
}

void register_masking(py::module_& m) {
  m.def("select_mask_positions", &select_mask_positions_py, py::arg("input_ids"), py::arg("matcher"),
        py::arg("motif_tier"), py::arg("seed"), py::arg("mask_prob") = 0.15, py::arg("max_predictions") = 77,
        py::arg("span_min") = 5, py::arg("span_max") = 8, py::arg("base") = true, py::arg("subsequence") = true,
        py::arg("motif") = true, py::arg("threads") = 0);
  m.def("apply_mlm_replacement", &apply_mlm_py, py::arg("input_ids"), py::arg("selected"), py::arg("seed"),
        py::arg("threads") = 0);
}

}  // namespace
// ==== end section: masking ====

// ==== section: structure ====
#include "structure.hpp"

namespace {

// A 2-D floating score matrix as C-contiguous float32 (no copy when it already is one).
py::array_t<float, py::array::c_style> structure_scores(const py::handle& obj, const std::string& where) {
  if (!py::isinstance<py::array>(obj)) {
    throw std::invalid_argument(where + "scores must be a numpy array, got " +
                                std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (a.ndim() != 2) {
    throw std::invalid_argument(where + "scores must be a 2-D (L, L) matrix, got ndim=" +
                                std::to_string(a.ndim()));
  }
  if (a.dtype().kind() != 'f') {
    throw std::invalid_argument(where + "scores must have a floating dtype, got " +
                                std::string(py::str(a.dtype())));
  }
  return py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
}

py::tuple structure_result(const rnaernie::DecodeResult& r) {
  py::array_t<int64_t> pairs({static_cast<py::ssize_t>(r.pairs.size()), static_cast<py::ssize_t>(2)});
  auto p = pairs.mutable_unchecked<2>();
  for (size_t k = 0; k < r.pairs.size(); ++k) {
    p(k, 0) = r.pairs[k].first;
    p(k, 1) = r.pairs[k].second;
  }
  return py::make_tuple(pairs, r.score);
}

py::tuple structure_decode_one(const std::string& seq, const py::object& scores,
                               const rnaernie::DecodeOptions& opt,
                               const std::optional<std::string>& constraint) {
  auto arr = structure_scores(scores, "");
  const float* data = arr.data();
  const int64_t rows = arr.shape(0), cols = arr.shape(1);
  rnaernie::DecodeResult r;
  {
    py::gil_scoped_release release;
    r = rnaernie::decode(seq, data, rows, cols, opt, constraint ? &*constraint : nullptr);
  }
  return structure_result(r);
}

py::list structure_decode_many(const std::vector<std::string>& seqs, const py::sequence& scores,
                               const rnaernie::DecodeOptions& opt,
                               const std::optional<std::vector<std::optional<std::string>>>& constraints,
                               int num_threads) {
  const size_t n = seqs.size();
  if (static_cast<size_t>(py::len(scores)) != n) {
    throw std::invalid_argument("got " + std::to_string(n) + " sequences but " +
                                std::to_string(py::len(scores)) + " score matrices");
  }
  if (constraints && constraints->size() != n) {
    throw std::invalid_argument("got " + std::to_string(n) + " sequences but " +
                                std::to_string(constraints->size()) + " constraints");
  }
  std::vector<py::array_t<float, py::array::c_style>> arrays;  // keeps the buffers alive
  arrays.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    arrays.push_back(structure_scores(scores[k], "batch index " + std::to_string(k) + ": "));
  }
  std::vector<rnaernie::DecodeInput> inputs(n);
  for (size_t k = 0; k < n; ++k) {
    const std::optional<std::string>* c = constraints ? &(*constraints)[k] : nullptr;
    inputs[k] = {&seqs[k], arrays[k].data(), arrays[k].shape(0), arrays[k].shape(1),
                 (c && *c) ? &**c : nullptr};
  }
  std::vector<rnaernie::DecodeResult> results;
  {
    py::gil_scoped_release release;
    results = rnaernie::decode_batch(inputs, opt, num_threads);
  }
  py::list out;
  for (const auto& r : results) out.append(structure_result(r));
  return out;
}

}  // namespace

void register_structure(py::module_& m) {
  using rnaernie::DecodeOptions;
  const DecodeOptions d;  // the defaults, in one place
  py::class_<DecodeOptions>(m, "DecodeOptions", "Decoder settings (see rnaernie.structure.DecodeOptions).")
      .def(py::init([](const std::string& method, double threshold, double gamma, bool canonical_only,
                       int min_loop, bool no_lonely_pairs) {
             return DecodeOptions{rnaernie::parse_decode_method(method), threshold, gamma,
                                  canonical_only, min_loop, no_lonely_pairs};
           }),
           py::kw_only(), py::arg("method") = std::string(rnaernie::decode_method_name(d.method)),
           py::arg("threshold") = d.threshold, py::arg("gamma") = d.gamma,
           py::arg("canonical_only") = d.canonical_only, py::arg("min_loop") = d.min_loop,
           py::arg("no_lonely_pairs") = d.no_lonely_pairs)
      .def_property_readonly("method", [](const DecodeOptions& o) { return rnaernie::decode_method_name(o.method); })
      .def_readonly("threshold", &DecodeOptions::threshold)
      .def_readonly("gamma", &DecodeOptions::gamma)
      .def_readonly("canonical_only", &DecodeOptions::canonical_only)
      .def_readonly("min_loop", &DecodeOptions::min_loop)
      .def_readonly("no_lonely_pairs", &DecodeOptions::no_lonely_pairs);
  m.def("structure_decode", &structure_decode_one, py::arg("seq"), py::arg("scores"), py::arg("options"),
        py::arg("constraint") = py::none(), "One sequence (GIL released); returns (pairs int64 (n, 2), score).");
  m.def("structure_decode_batch", &structure_decode_many, py::arg("seqs"), py::arg("scores"),
        py::arg("options"), py::arg("constraints") = py::none(), py::arg("num_threads") = 0,
        "Batched decoder on a thread pool (GIL released); returns a list of (pairs, score).");
}
// ==== end section: structure ====

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnaernie native core (C++17): tokenizer, motif matcher, masking spans, structure decoder, homology search";
  // ---- register: tokenizer ----
  register_tokenizer(m);
  // ---- register: motifs ----
  register_motifs(m);
  // ---- register: homology ----
  register_homology(m);
  // ---- register: masking ----
  register_masking(m);
  // ---- register: structure ----
  register_structure(m);
}
