#include "kiln/tune/importance.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "kiln/core/error.h"

namespace kiln::tune {

std::vector<ParamImportance> param_importances(const std::vector<Trial>& trials, const SearchSpace& space,
                                               const ImportanceOptions& options) {
  if (options.bins < 2) throw ConfigError("importance bins must be >= 2, got " + std::to_string(options.bins));
  std::vector<ParamImportance> out;
  std::vector<const Trial*> done;
  for (const auto& t : trials) {
    if (t.state == TrialState::kComplete && t.value && std::isfinite(*t.value)) done.push_back(&t);
  }
  if (done.size() < 3) return out;
  double total = 0;
  for (const auto& [name, dist] : space) {
    // (parameter value, objective value) of the trials holding the parameter.
    std::vector<std::pair<double, double>> xy;
    for (const Trial* t : done) {
      const auto it = t->params.find(name);
      if (it != t->params.end()) xy.emplace_back(it->second, *t->value);
    }
    double eta = 0;
    if (xy.size() >= 2) {
      std::sort(xy.begin(), xy.end());
      double mean = 0;
      for (const auto& p : xy) mean += p.second;
      mean /= static_cast<double>(xy.size());
      double sst = 0;
      for (const auto& p : xy) sst += (p.second - mean) * (p.second - mean);
      std::set<double> distinct;
      for (const auto& p : xy) distinct.insert(p.first);
      // Bin id per sorted position: one per distinct value, or equal-count bins by rank.
      std::vector<std::size_t> bin(xy.size());
      const bool per_value = dist.kind == Distribution::Kind::kCategorical ||
                             distinct.size() <= static_cast<std::size_t>(options.bins);
      for (std::size_t i = 0; i < xy.size(); ++i) {
        bin[i] = per_value ? static_cast<std::size_t>(std::distance(distinct.begin(), distinct.find(xy[i].first)))
                           : i * static_cast<std::size_t>(options.bins) / xy.size();
      }
      std::map<std::size_t, std::pair<double, std::size_t>> sums;
      for (std::size_t i = 0; i < xy.size(); ++i) {
        sums[bin[i]].first += xy[i].second;
        sums[bin[i]].second += 1;
      }
      double ssb = 0;
      for (const auto& [b, s] : sums) {
        const double m = s.first / static_cast<double>(s.second);
        ssb += static_cast<double>(s.second) * (m - mean) * (m - mean);
      }
      eta = sst > 0 ? ssb / sst : 0;
    }
    out.push_back({name, eta});
    total += eta;
  }
  for (auto& p : out) p.importance = total > 0 ? p.importance / total : 0;
  std::sort(out.begin(), out.end(), [](const ParamImportance& a, const ParamImportance& b) {
    return a.importance != b.importance ? a.importance > b.importance : a.name < b.name;
  });
  return out;
}

}  // namespace kiln::tune
