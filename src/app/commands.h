// The CLI commands. Each takes its arguments (after the command name) and returns the exit
// status.
#pragma once

#include <string>
#include <vector>

namespace veer::app {

int cmdRun(const std::vector<std::string>& args);
int cmdCheck(const std::vector<std::string>& args);
int cmdVersion(const std::vector<std::string>& args);

// cmd_ruleset.cc: rule-set compile | decompile | format | match
int cmdRuleSet(const std::vector<std::string>& args);
// cmd_geo.cc: geosite list | lookup | export | compile
int cmdGeosite(const std::vector<std::string>& args);
// cmd_geo.cc: geoip lookup | list
int cmdGeoip(const std::vector<std::string>& args);
// cmd_explain.cc: route explain
int cmdRoute(const std::vector<std::string>& args);
// cmd_sniff.cc: sniff
int cmdSniff(const std::vector<std::string>& args);

}  // namespace veer::app
