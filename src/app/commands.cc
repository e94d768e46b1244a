#include "app/commands.h"

#include <unistd.h>

#include <cstdio>

#include "app/runtime.h"
#include "app/lint.h"
#include "config/config.h"
#include "dns/dns_router.h"

#ifndef VEER_VERSION
#define VEER_VERSION "0.0.0"
#endif

namespace veer::app {

namespace {

struct Flags {
  std::string config;
  std::string dir;
  bool json = false;
  bool strict = false;
  bool help = false;
  std::string error;
};

Flags parseFlags(const std::vector<std::string>& args, bool allow_json) {
  Flags f;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      f.help = true;
    } else if (a == "-c" || a == "--config") {
      if (i + 1 >= args.size()) {
        f.error = a + " needs a file name";
        return f;
      }
      f.config = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      f.config = a.substr(9);
    } else if (a == "-D" || a == "--directory") {
      if (i + 1 >= args.size()) {
        f.error = a + " needs a directory";
        return f;
      }
      f.dir = args[++i];
    } else if (allow_json && a == "--json") {
      f.json = true;
    } else if (allow_json && a == "--strict") {
      f.strict = true;
    } else {
      f.error = "unknown option \"" + a + "\"";
      return f;
    }
  }
  return f;
}

bool enterDir(const Flags& f) {
  if (f.dir.empty()) return true;
  if (chdir(f.dir.c_str()) != 0) {
    std::fprintf(stderr, "veer: cannot change to directory %s\n", f.dir.c_str());
    return false;
  }
  return true;
}

}  // namespace

int cmdRun(const std::vector<std::string>& args) {
  static const char* kHelp =
      "Usage: veer run -c FILE [-D DIR]\n"
      "\n"
      "Runs veer with the config FILE (sing-box JSON format).\n"
      "  -c, --config FILE     the config file (required)\n"
      "  -D, --directory DIR   working directory (geoip.db/geosite.db are looked up there)\n"
      "\n"
      "Signals: SIGINT/SIGTERM stop (listeners first, then every connection, exit 0);\n"
      "SIGHUP reloads FILE, keeping the running config when the new one has errors.\n";
  Flags f = parseFlags(args, false);
  if (f.help) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!f.error.empty() || f.config.empty()) {
    std::fprintf(stderr, "veer run: %s\n\n%s",
                 f.error.empty() ? "missing -c FILE" : f.error.c_str(), kHelp);
    return 2;
  }
  if (!enterDir(f)) return 1;
  Runtime rt(f.config);
  return rt.run();
}

int cmdCheck(const std::vector<std::string>& args) {
  static const char* kHelp =
      "Usage: veer check -c FILE [--json] [--strict]\n"
      "\n"
      "Validates the config FILE and everything it references (rule-set files, DSL rule\n"
      "files, geoip/geosite databases): unknown or unimplemented fields, wrong types, unknown\n"
      "outbound and rule-set tags, regexes that do not compile, rules that can never match.\n"
      "  --json     print the diagnostics as a JSON array\n"
      "  --strict   fail on warnings too\n"
      "Exit status: 0 clean, 1 errors (or warnings with --strict), 2 usage error.\n";
  Flags f = parseFlags(args, true);
  if (f.help) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!f.error.empty() || f.config.empty()) {
    std::fprintf(stderr, "veer check: %s\n\n%s",
                 f.error.empty() ? "missing -c FILE" : f.error.c_str(), kHelp);
    return 2;
  }
  if (!enterDir(f)) return 1;
  DiagList diags;
  auto cfg = config::load(f.config, diags);
  if (cfg && cfg->has_dns) {
    // The DNS module validates its own section (servers, rules, FakeIP ranges); build it on a
    // scratch loop and take it down again.
    uv_loop_t loop;
    uv_loop_init(&loop);
    {
      dns::DnsRouterOptions o;
      o.rules = cfg->dns_rules;  // compiled by the config loader, with the route's rule sets
      auto d = dns::DnsRouter::create(&loop, cfg->dns, cfg->file, diags, o);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  lintConfig(cfg.get(), diags);
  if (f.json) {
    std::printf("%s\n", config::formatDiagsJson(diags).c_str());
  } else {
    std::fputs(config::formatDiags(diags).c_str(), stdout);
    if (diags.errorCount() || diags.warningCount()) {
      std::printf("%zu error(s), %zu warning(s)\n", diags.errorCount(), diags.warningCount());
    }
  }
  if (diags.hasErrors() || !cfg) return 1;
  if (f.strict && diags.warningCount() > 0) return 1;
  return 0;
}

int cmdVersion(const std::vector<std::string>& args) {
  if (!args.empty() && (args[0] == "-h" || args[0] == "--help")) {
    std::puts("Usage: veer version\n\nPrints the version of veer and of the libraries it uses.");
    return 0;
  }
  std::printf("veer version %s\n", VEER_VERSION);
  std::printf("Built with libuv, mbedTLS, RapidJSON, c-ares, libmaxminddb, RE2\n");
  return 0;
}

}  // namespace veer::app
