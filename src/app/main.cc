// veer: command-line entry point.
//   veer run -c FILE          run the proxy
//   veer check -c FILE        validate a config and everything it references
//   veer version              print the version
//   veer rule-set|geosite|geoip|route|sniff ...   tools (see kUsage)
#include <csignal>
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
    "  rule-set compile [-o OUT] SRC    .json source or .veer DSL -> binary .srs\n"
    "  rule-set decompile [-o OUT] FILE.srs\n"
    "                                   binary .srs -> source .json\n"
    "  rule-set format [-w] FILE        re-emit a .json source or .veer DSL canonically\n"
    "  rule-set match [-f source|binary|dsl] FILE DOMAIN|IP\n"
    "                                   print the rules of FILE that match\n"
    "  geosite list [-f geosite.db]     codes and item counts\n"
    "  geosite lookup [-f geosite.db] [CODE] DOMAIN\n"
    "                                   the codes and items that match DOMAIN\n"
    "  geosite export [-f geosite.db] CODE [-o OUT]\n"
    "                                   a code as a rule-set source .json\n"
    "  geosite compile SRC_DIR -o OUT   v2fly domain-list-community data/ -> geosite.db\n"
    "  geoip lookup [-f geoip.db] IP    the code of IP (private, unknown)\n"
    "  geoip list [-f geoip.db]         the codes of the database\n"
    "  route explain -c FILE [--domain D] [--ip IP] [--port P] [--json] ...\n"
    "                                   show how the route rules decide a connection\n"
    "  sniff [--udp] [--hex] [--json] FILE|-\n"
    "                                   what the sniffers see in a capture\n"
    "\n"
    "Run 'veer <command> --help' for the options of a command.\n";

}  // namespace

int main(int argc, char** argv) {
  // A write or splice into a socket whose peer is gone must fail with EPIPE, not kill veer.
  signal(SIGPIPE, SIG_IGN);
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
  if (cmd == "rule-set") return veer::app::cmdRuleSet(rest);
  if (cmd == "geosite") return veer::app::cmdGeosite(rest);
  if (cmd == "geoip") return veer::app::cmdGeoip(rest);
  if (cmd == "route") return veer::app::cmdRoute(rest);
  if (cmd == "sniff") return veer::app::cmdSniff(rest);
  std::fprintf(stderr, "veer: unknown command \"%s\"\n\n%s", cmd.c_str(), kUsage);
  return 2;
}
