#include "format.h"

#include <sstream>
#include <vector>

namespace kiln::tune::format_detail {

std::string precise_number(double v) {
  std::ostringstream o;
  o.precision(17);
  o << v;
  return o.str();
}

std::string last_lines(const std::string& text, int n, TrailingSpace trailing) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (trailing == TrailingSpace::kTrim) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    }
    if (!line.empty()) lines.push_back(std::move(line));
    start = end + 1;
  }
  std::string out;
  for (std::size_t i = lines.size() > static_cast<std::size_t>(n) ? lines.size() - n : 0; i < lines.size(); ++i) {
    out += (out.empty() ? "" : "\n") + lines[i];
  }
  return out;
}

}  // namespace kiln::tune::format_detail
