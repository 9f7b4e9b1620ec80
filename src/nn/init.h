// Weight initialisation schemes shared by the model families. All draw from LibTorch's global
// generator, so torch::manual_seed makes them reproducible.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kiln::nn {

/// Names accepted by init_weight, as persisted in model specs: never rename.
inline const std::vector<std::string> kInitSchemes = {"xavier", "kaiming", "normal", "zeros"};

/// Fills `weight` in place without recording autograd history.
///   "xavier":  uniform(-b, b), b = sqrt(6 / (fan_in + fan_out))
///   "kaiming": uniform(-b, b), b = sqrt(6 / fan_in) (He, for ReLU)
///   "normal":  normal(0, 0.02)
///   "zeros":   0
/// Fans are passed explicitly because an EmbeddingBag weight is [in, out] while a Linear weight is
/// [out, in]. Throws std::invalid_argument for any other scheme (callers validate names first).
void init_weight(torch::Tensor weight, const std::string& scheme, int64_t fan_in, int64_t fan_out);

/// uniform(-bound, bound) in place, without autograd history.
void init_uniform(torch::Tensor weight, double bound);

/// uniform(-bound, bound) in place, without autograd history, for large tables: one 64-bit draw
/// from LibTorch's global generator keys a counter-based hash of each element's index, filled on
/// every intra-op thread. The same seed gives the same values at any thread count. LibTorch's
/// uniform_ draws each element from one Mersenne Twister in turn: 0.2 s for fasttext's 2^19 x 64
/// table, against about 0.02 s here. 24 random bits per value. `weight` must be contiguous float32.
void init_uniform_fast(torch::Tensor weight, double bound);

/// Zeros in place, without autograd history.
void init_zeros(torch::Tensor weight);

/// An uninitialized float tensor whose memory is backed by transparent huge pages where whole ones
/// fit (core::advise_huge_pages, asked before any page is touched): for the tables that training
/// reads and writes at random rows, whose 4 KiB pages would each cost a TLB miss.
torch::Tensor empty_table(int64_t rows, int64_t cols);

/// An EmbeddingBag (sum mode) on an empty_table, filled with standard normal draws as LibTorch's
/// constructor fills its own (the same draws from the global generator, in the same order).
torch::nn::EmbeddingBag embedding_bag_on_table(int64_t rows, int64_t cols);

}  // namespace kiln::nn
