#include "work_pieces.h"

namespace kiln::text::detail {

std::vector<std::size_t> balanced_pieces(const std::vector<std::string>& docs, std::size_t max_pieces) {
  constexpr std::size_t kDocumentCost = 32;  // bytes' worth of per-document work
  const std::size_t n = docs.size();
  const std::size_t k = std::max<std::size_t>(1, std::min(max_pieces, n));
  std::vector<std::size_t> bounds{0};
  if (k > 1) {
    std::vector<std::size_t> cumulative(n + 1, 0);
    for (std::size_t d = 0; d < n; ++d) cumulative[d + 1] = cumulative[d] + docs[d].size() + kDocumentCost;
    for (std::size_t c = 1; c < k; ++c) {
      const std::size_t target = cumulative[n] / k * c;
      auto d =
          static_cast<std::size_t>(std::lower_bound(cumulative.begin(), cumulative.end(), target) - cumulative.begin());
      d = std::clamp(d, bounds.back() + 1, n - (k - c));
      bounds.push_back(d);
    }
  }
  bounds.push_back(n);
  return bounds;
}

}  // namespace kiln::text::detail
