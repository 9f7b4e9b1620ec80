#include "kiln/core/format.h"

#include <sstream>

namespace kiln::core {

std::string format_number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace kiln::core
