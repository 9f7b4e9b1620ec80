// The built-in "wordpiece" preprocessor type (wordpiece_features.cpp), added by the registry.
#pragma once

#include "kiln/prep/preprocessor.h"

namespace kiln::prep {

[[nodiscard]] PreprocessorType wordpiece_type();

}  // namespace kiln::prep
