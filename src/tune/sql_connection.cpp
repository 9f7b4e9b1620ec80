#include "sql_connection.h"

#include <cstdlib>

#include "storage.h"

namespace kiln::tune {

int64_t SqlRows::i64(int row, int col) const {
  const SqlValue& v = at(row, col);
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  if (const auto* s = std::get_if<std::string>(&v)) return std::strtoll(s->c_str(), nullptr, 10);
  return 0;
}

double SqlRows::f64(int row, int col) const {
  const SqlValue& v = at(row, col);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return std::strtod(s->c_str(), nullptr);
  return 0;
}

std::string SqlRows::text(int row, int col) const {
  const SqlValue& v = at(row, col);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) return storage_detail::format_double(*d);
  return "";
}

}  // namespace kiln::tune
