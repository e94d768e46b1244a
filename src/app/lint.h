// Lints run by `veer check` on a loaded config (warnings; errors come from loading).
#pragma once

#include "base/diag.h"
#include "config/config.h"

namespace veer::app {

void lintConfig(const config::Config* cfg, DiagList& diags);

}  // namespace veer::app
