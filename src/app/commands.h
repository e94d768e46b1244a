// The CLI commands. Each takes its arguments (after the command name) and returns the exit
// status.
#pragma once

#include <string>
#include <vector>

namespace veer::app {

int cmdRun(const std::vector<std::string>& args);
int cmdCheck(const std::vector<std::string>& args);
int cmdVersion(const std::vector<std::string>& args);

}  // namespace veer::app
