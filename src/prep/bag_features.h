// The bag-of-features preprocessors and the CSR → Batch conversion they share.
#pragma once

#include <cstdint>

#include "kiln/nn/batch.h"
#include "kiln/nn/input_spec.h"
#include "kiln/prep/preprocessor.h"
#include "kiln/text/csr.h"

namespace kiln::prep {

/// bag_indices / bag_offsets / bag_weights of a CSR matrix (one example per row).
[[nodiscard]] nn::Batch bag_batch(const text::CsrMatrix<float>& x);
/// The tensors bag_batch produces for `features` columns.
[[nodiscard]] nn::InputSpec bag_input_spec(int64_t features);

/// Registered on first use of the registry (registry.cpp).
[[nodiscard]] PreprocessorType tfidf_type();
[[nodiscard]] PreprocessorType hashed_ngrams_type();

}  // namespace kiln::prep
