// The one pybind11 bindings file: thin wrappers from numpy buffers to the C++ algorithms in csrc/.
// C++ std::invalid_argument reaches Python as ValueError; batch calls release the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

// ==== section: tokenizer ====
// ==== end section: tokenizer ====

// ==== section: motifs ====
// ==== end section: motifs ====

// ==== section: masking ====
// ==== end section: masking ====

// ==== section: structure ====
// ==== end section: structure ====

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnaernie native core (C++17): tokenizer, motif matcher, masking spans, structure decoder";
  // ---- register: tokenizer ----
  // ---- register: motifs ----
  // ---- register: masking ----
  // ---- register: structure ----
}
