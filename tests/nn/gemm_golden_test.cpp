// A matmul-heavy forward and backward pass checked against python3-torch (tests/golden/
// make_gemm_golden.py), run with the kernels Kiln's process start-up chose: the test binary's main()
// calls core::prepare_process like kiln-ml, so an OPENBLAS_CORETYPE or thread choice that computed
// wrong numbers fails here.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "kiln/core/cpu.h"

namespace kiln::nn {
namespace {

torch::Tensor matrix(int64_t rows, int64_t cols, double a, double b, double scale, bool use_cos = false) {
  auto t = torch::empty({rows, cols});
  auto acc = t.accessor<float, 2>();
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < cols; ++j) {
      const double v = a * static_cast<double>(i) + b * static_cast<double>(j);
      acc[i][j] = static_cast<float>(scale * (use_cos ? std::cos(v) : std::sin(v)));
    }
  }
  return t;
}

void expect_close(const torch::Tensor& got, const nlohmann::json& want, double rtol, double atol, const char* what) {
  const auto g = got.to(torch::kFloat64).contiguous().view(-1);
  std::vector<double> w;
  if (want.is_array() && !want.empty() && want[0].is_array()) {
    for (const auto& row : want) for (const auto& v : row) w.push_back(v.get<double>());
  } else {
    for (const auto& v : want) w.push_back(v.get<double>());
  }
  ASSERT_EQ(g.numel(), static_cast<int64_t>(w.size())) << what;
  const double* p = g.data_ptr<double>();
  int bad = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (std::abs(p[i] - w[i]) > atol + rtol * std::abs(w[i])) {
      if (++bad <= 3) ADD_FAILURE() << what << "[" << i << "]: got " << p[i] << ", python3-torch " << w[i];
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << w.size() << " values differ";
}

TEST(GemmGolden, ForwardBackwardMatchesTorchUnderChosenKernels) {
  std::ifstream f(std::string(KILN_GOLDEN_DIR) + "/nn/gemm.json");
  ASSERT_TRUE(f) << "tests/golden/nn/gemm.json missing: run tests/golden/make_gemm_golden.py";
  const auto g = nlohmann::json::parse(f);
  const auto& s = g["sizes"];
  const int64_t batch = s["batch"], in = s["in"], hidden = s["hidden"], classes = s["classes"];
  const auto x = matrix(batch, in, 0.37, 0.11, 1.0);
  auto w1 = matrix(hidden, in, 0.013, 0.029, 0.0625).requires_grad_();
  auto b1 = matrix(1, hidden, 0.0, 0.07, 0.01, true).reshape({hidden}).detach().requires_grad_();
  auto w2 = matrix(classes, hidden, 0.031, 0.017, 0.05, true).requires_grad_();
  auto b2 = torch::zeros({classes}, torch::requires_grad());
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < batch; ++i) labels.push_back((7 * i + 3) % classes);
  const auto y = torch::tensor(labels);

  const auto h = torch::relu(x.matmul(w1.t()) + b1);
  const auto logits = h.matmul(w2.t()) + b2;
  const auto loss = torch::nn::functional::cross_entropy(logits, y);
  loss.backward();

  // fp32 sums over 256-512 terms in another order (kernel blocking, threads): ~1e-6 relative.
  EXPECT_NEAR(loss.item<double>(), g["loss"].get<double>(), 1e-5);
  expect_close(logits.detach(), g["logits"], 1e-4, 1e-5, "logits");
  expect_close(w1.grad().sum(1), g["grad_w1_row_sums"], 1e-3, 1e-6, "grad_w1_row_sums");
  EXPECT_NEAR(w1.grad().to(torch::kFloat64).norm().item<double>(), g["grad_w1_norm"].get<double>(),
              1e-4 * g["grad_w1_norm"].get<double>());
  expect_close(b1.grad(), g["grad_b1"], 1e-3, 1e-7, "grad_b1");
  expect_close(w2.grad().sum(0), g["grad_w2_col_sums"], 1e-3, 1e-7, "grad_w2_col_sums");
  EXPECT_NEAR(w2.grad().to(torch::kFloat64).norm().item<double>(), g["grad_w2_norm"].get<double>(),
              1e-4 * g["grad_w2_norm"].get<double>());
  const auto& tuning = core::process_tuning();
  std::string env;
  for (const auto& e : tuning.set) env += e + " ";
  RecordProperty("process_environment", env);
}

}  // namespace
}  // namespace kiln::nn
