// veer: command-line entry point.
//   veer run -c FILE          run the proxy
//   veer check -c FILE        validate a config and everything it references
//   veer version              print the version
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "app/commands.h"

namespace {

const char* kUsage =
    "veer: a rule-based routing proxy for routers (sing-box config format)\n"
    "\n"
    "Usage: veer <command> [options]\n"
    "\n"
    "Commands:\n"
    "  run      -c FILE                 run with the config FILE\n"
    "  check    -c FILE [--json] [--strict]\n"
    "                                   validate FILE and everything it references\n"
    "  version                          print the version\n"
    "\n"
    "Run 'veer <command> --help' for the options of a command.\n";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "run") return veer::app::cmdRun(rest);
  if (cmd == "check") return veer::app::cmdCheck(rest);
  if (cmd == "version" || cmd == "--version") return veer::app::cmdVersion(rest);
  std::fprintf(stderr, "veer: unknown command \"%s\"\n\n%s", cmd.c_str(), kUsage);
  return 2;
}
