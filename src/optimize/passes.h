// Helpers the optimize passes share (private to the module).
#pragma once

#include <string>

#include "kiln/artifact/artifact.h"

namespace kiln::optimize {

/// Adds `op` to the variant's ops once.
void add_variant_op(artifact::Variant& variant, const std::string& op);

}  // namespace kiln::optimize
