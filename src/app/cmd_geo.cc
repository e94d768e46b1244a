// veer geosite list | lookup | export | compile, veer geoip lookup | list (sing-box's `geosite`
// and `geoip` commands, plus compiling a geosite.db from v2fly text lists).
#include <re2/re2.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "app/cmd_util.h"
#include "app/commands.h"
#include "base/address.h"
#include "rules/geoip_mmdb.h"
#include "rules/geosite_db.h"
#include "rules/geosite_text.h"
#include "rules/ruleset_json.h"

namespace veer::app {

namespace {

const char* kGeositeHelp =
    "Usage: veer geosite <command> [options]\n"
    "\n"
    "Commands:\n"
    "  list    [-f geosite.db]                  every code and its item count\n"
    "  lookup  [-f geosite.db] [CODE] DOMAIN    the codes (and items) that match DOMAIN\n"
    "  export  [-f geosite.db] CODE [-o OUT]    a code as a rule-set source JSON\n"
    "  compile SRC_DIR -o geosite.db            v2fly domain-list-community data/ -> geosite.db\n"
    "\n"
    "-f defaults to geosite.db in the working directory (as sing-box).\n"
    "Run 'veer geosite <command> --help' for details.\n";

const char* kGeositeListHelp =
    "Usage: veer geosite list [-f geosite.db]\n"
    "\n"
    "Prints every code of the database with its item count, one 'CODE (COUNT)' per line,\n"
    "sorted by code.\n"
    "  -f, --file FILE   the geosite database (default: geosite.db)\n";

const char* kGeositeLookupHelp =
    "Usage: veer geosite lookup [-f geosite.db] [CODE] DOMAIN\n"
    "\n"
    "Prints, for every code (or only CODE) that matches DOMAIN, each matching item as\n"
    "'Match code (CODE) TYPE VALUE' (TYPE: domain, domain_suffix, domain_keyword,\n"
    "domain_regex), with sing-box's matching: domain_suffix \".x\" matches subdomains of x only,\n"
    "\"x\" matches x and its subdomains; domain_regex is unanchored RE2.\n"
    "  -f, --file FILE   the geosite database (default: geosite.db)\n"
    "Exit status: 0 some code matched, 1 none (or an error), 2 usage.\n";

const char* kGeositeExportHelp =
    "Usage: veer geosite export [-f geosite.db] CODE [-o OUT]\n"
    "\n"
    "Writes the items of CODE as a sing-box rule-set source (version 1, one rule).\n"
    "  -f, --file FILE     the geosite database (default: geosite.db)\n"
    "  -o, --output OUT    output file, '-' for stdout (default: geosite-CODE.json)\n";

const char* kGeositeCompileHelp =
    "Usage: veer geosite compile SRC_DIR -o geosite.db\n"
    "\n"
    "Compiles a v2fly/domain-list-community data/ folder (domain:, full:, keyword:, regexp:,\n"
    "include:, @attributes) into a sing-box geosite.db, with sing-geosite's post-processing\n"
    "(attribute codes, geolocation-cn, cn).\n"
    "  -o, --output OUT    the database to write (required)\n";

const char* kGeoipHelp =
    "Usage: veer geoip <command> [options]\n"
    "\n"
    "Commands:\n"
    "  lookup [-f geoip.db] IP     the code of IP ('private' for non-public addresses,\n"
    "                              'unknown' when the database has none)\n"
    "  list   [-f geoip.db]        every code the database lists\n"
    "\n"
    "-f defaults to geoip.db in the working directory (as sing-box). sing-geoip databases and\n"
    "GeoLite2/GeoIP2-Country style MaxMind databases are read.\n";

const char* kGeoipLookupHelp =
    "Usage: veer geoip lookup [-f geoip.db] IP\n"
    "\n"
    "Prints the code stored for IP, 'private' for an address that is not public (as sing-box:\n"
    "loopback, private ranges, link-local, multicast, unspecified), 'unknown' when none.\n"
    "  -f, --file FILE   the geoip database (default: geoip.db)\n";

const char* kGeoipListHelp =
    "Usage: veer geoip list [-f geoip.db]\n"
    "\n"
    "Prints every code the database lists (sing-geoip databases list them in their metadata;\n"
    "GeoLite2-style databases do not, which is an error here).\n"
    "  -f, --file FILE   the geoip database (default: geoip.db)\n";

const char* itemTypeName(rules::GeositeItem::Type t) {
  switch (t) {
    case rules::GeositeItem::Type::Domain:
      return "domain";
    case rules::GeositeItem::Type::Suffix:
      return "domain_suffix";
    case rules::GeositeItem::Type::Keyword:
      return "domain_keyword";
    case rules::GeositeItem::Type::Regex:
      return "domain_regex";
  }
  return "unknown";
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// sing-box's matching of one geosite item (common/geosite, route/rule/rule_item_domain.go).
bool itemMatches(const rules::GeositeItem& item, std::string_view domain) {
  const std::string& v = item.value;
  switch (item.type) {
    case rules::GeositeItem::Type::Domain:
      return domain == v;
    case rules::GeositeItem::Type::Suffix:
      if (!v.empty() && v[0] == '.') return endsWith(domain, v);
      return domain == v || endsWith(domain, "." + v);
    case rules::GeositeItem::Type::Keyword:
      return domain.find(v) != std::string_view::npos;
    case rules::GeositeItem::Type::Regex: {
      RE2::Options opts;
      opts.set_log_errors(false);
      RE2 re(v, opts);
      return re.ok() && RE2::PartialMatch(domain, re);
    }
  }
  return false;
}

std::unique_ptr<rules::GeositeDb> openGeosite(const char* cmd, const std::string& path) {
  auto db = rules::GeositeDb::open(path);
  if (!db) {
    failure(cmd, db.error().message());
    return nullptr;
  }
  return std::move(*db);
}

int geositeList(const std::vector<std::string>& args) {
  const char* cmd = "geosite list";
  std::string file = "geosite.db";
  ArgParser p;
  p.option({"-f", "--file"}, &file);
  if (!p.parse(args)) return usageError(cmd, p.error(), kGeositeListHelp);
  if (p.help()) return printHelp(kGeositeListHelp);
  if (!p.positional().empty()) return usageError(cmd, "unexpected argument", kGeositeListHelp);
  auto db = openGeosite(cmd, file);
  if (!db) return kExitFailure;
  std::vector<std::string> codes = db->codes();
  std::sort(codes.begin(), codes.end());
  for (const auto& c : codes) std::printf("%s (%zu)\n", c.c_str(), db->itemCount(c));
  return kExitOk;
}

int geositeLookup(const std::vector<std::string>& args) {
  const char* cmd = "geosite lookup";
  std::string file = "geosite.db";
  ArgParser p;
  p.option({"-f", "--file"}, &file);
  if (!p.parse(args)) return usageError(cmd, p.error(), kGeositeLookupHelp);
  if (p.help()) return printHelp(kGeositeLookupHelp);
  const auto& pos = p.positional();
  if (pos.empty() || pos.size() > 2) {
    return usageError(cmd, "expected [CODE] DOMAIN", kGeositeLookupHelp);
  }
  std::string domain = normalizeDomain(pos.back());
  if (domain.empty()) return usageError(cmd, "empty DOMAIN", kGeositeLookupHelp);
  auto db = openGeosite(cmd, file);
  if (!db) return kExitFailure;
  std::vector<std::string> codes;
  if (pos.size() == 2) {
    std::string code = normalizeDomain(pos[0]);
    if (!db->has(code)) return failure(cmd, "code \"" + code + "\" not found in " + file);
    codes.push_back(code);
  } else {
    codes = db->codes();
    std::sort(codes.begin(), codes.end());
  }
  size_t matched_codes = 0;
  for (const auto& code : codes) {
    auto items = db->load(code);
    if (!items) return failure(cmd, items.error().message());
    bool any = false;
    for (const auto& item : *items) {
      if (!itemMatches(item, domain)) continue;
      any = true;
      std::printf("Match code (%s) %s %s\n", code.c_str(), itemTypeName(item.type),
                  item.value.c_str());
    }
    if (any) ++matched_codes;
  }
  return matched_codes > 0 ? kExitOk : kExitFailure;
}

int geositeExport(const std::vector<std::string>& args) {
  const char* cmd = "geosite export";
  std::string file = "geosite.db";
  std::string out;
  ArgParser p;
  p.option({"-f", "--file"}, &file);
  p.option({"-o", "--output"}, &out);
  if (!p.parse(args)) return usageError(cmd, p.error(), kGeositeExportHelp);
  if (p.help()) return printHelp(kGeositeExportHelp);
  if (p.positional().size() != 1) return usageError(cmd, "expected one CODE", kGeositeExportHelp);
  std::string code = normalizeDomain(p.positional()[0]);
  if (out.empty()) out = "geosite-" + code + ".json";
  auto db = openGeosite(cmd, file);
  if (!db) return kExitFailure;
  if (!db->has(code)) return failure(cmd, "code \"" + code + "\" not found in " + file);
  auto items = db->load(code);
  if (!items) return failure(cmd, items.error().message());
  // sing-box's export: one headless rule with the items by type, rule-set version 1.
  rules::RuleSpec rule;
  for (const auto& item : *items) {
    switch (item.type) {
      case rules::GeositeItem::Type::Domain:
        rule.domain.push_back(item.value);
        break;
      case rules::GeositeItem::Type::Suffix:
        rule.domain_suffix.push_back(item.value);
        break;
      case rules::GeositeItem::Type::Keyword:
        rule.domain_keyword.push_back(item.value);
        break;
      case rules::GeositeItem::Type::Regex:
        rule.domain_regex.push_back(item.value);
        break;
    }
  }
  rules::RuleSetSpec set;
  set.version = rules::kRuleSetVersion1;
  if (!items->empty()) set.rules.push_back(std::move(rule));
  auto text = rules::writeRuleSetJson(set);
  if (!text) return failure(cmd, text.error().message());
  auto st = writeOutput(out, *text);
  if (!st) return failure(cmd, st.error().message());
  return kExitOk;
}

int geositeCompile(const std::vector<std::string>& args) {
  const char* cmd = "geosite compile";
  std::string out;
  ArgParser p;
  p.option({"-o", "--output"}, &out);
  if (!p.parse(args)) return usageError(cmd, p.error(), kGeositeCompileHelp);
  if (p.help()) return printHelp(kGeositeCompileHelp);
  if (p.positional().size() != 1) return usageError(cmd, "expected one SRC_DIR", kGeositeCompileHelp);
  if (out.empty()) return usageError(cmd, "missing -o OUT", kGeositeCompileHelp);
  auto codes = rules::compileGeositeDir(p.positional()[0]);
  if (!codes) return failure(cmd, codes.error().message());
  auto bytes = rules::writeGeositeDb(*codes);
  if (!bytes) return failure(cmd, bytes.error().message());
  auto st = writeOutput(out, asChars(*bytes));
  if (!st) return failure(cmd, st.error().message());
  size_t items = 0;
  for (const auto& [code, list] : *codes) items += list.size();
  std::fprintf(stderr, "wrote %s: %zu codes, %zu items\n", out.c_str(), codes->size(), items);
  return kExitOk;
}

std::unique_ptr<rules::GeoipMmdb> openGeoip(const char* cmd, const std::string& path) {
  auto db = rules::GeoipMmdb::open(path);
  if (!db) {
    failure(cmd, db.error().message());
    return nullptr;
  }
  return std::move(*db);
}

int geoipLookup(const std::vector<std::string>& args) {
  const char* cmd = "geoip lookup";
  std::string file = "geoip.db";
  ArgParser p;
  p.option({"-f", "--file"}, &file);
  if (!p.parse(args)) return usageError(cmd, p.error(), kGeoipLookupHelp);
  if (p.help()) return printHelp(kGeoipLookupHelp);
  if (p.positional().size() != 1) return usageError(cmd, "expected one IP", kGeoipLookupHelp);
  auto ip = IpAddress::parse(p.positional()[0]);
  if (!ip) return usageError(cmd, "not an IP address: " + p.positional()[0], kGeoipLookupHelp);
  auto db = openGeoip(cmd, file);
  if (!db) return kExitFailure;
  IpAddress addr = ip->unmap();
  if (addr.isNonPublic()) {
    std::puts("private");
    return kExitOk;
  }
  std::string code(db->lookup(addr));
  std::transform(code.begin(), code.end(), code.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  std::puts(code.empty() ? "unknown" : code.c_str());
  return kExitOk;
}

int geoipList(const std::vector<std::string>& args) {
  const char* cmd = "geoip list";
  std::string file = "geoip.db";
  ArgParser p;
  p.option({"-f", "--file"}, &file);
  if (!p.parse(args)) return usageError(cmd, p.error(), kGeoipListHelp);
  if (p.help()) return printHelp(kGeoipListHelp);
  if (!p.positional().empty()) return usageError(cmd, "unexpected argument", kGeoipListHelp);
  auto db = openGeoip(cmd, file);
  if (!db) return kExitFailure;
  std::vector<std::string> codes = db->codes();
  if (codes.empty()) {
    return failure(cmd, file + " (database type \"" + std::string(db->databaseType()) +
                            "\") does not list its codes");
  }
  std::sort(codes.begin(), codes.end());
  for (const auto& c : codes) std::puts(c.c_str());
  return kExitOk;
}

}  // namespace

int cmdGeosite(const std::vector<std::string>& args) {
  if (args.empty()) return usageError("geosite", "missing command", kGeositeHelp);
  const std::string& sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "-h" || sub == "--help" || sub == "help") return printHelp(kGeositeHelp);
  if (sub == "list") return geositeList(rest);
  if (sub == "lookup") return geositeLookup(rest);
  if (sub == "export") return geositeExport(rest);
  if (sub == "compile") return geositeCompile(rest);
  return usageError("geosite", "unknown command \"" + sub + "\"", kGeositeHelp);
}

int cmdGeoip(const std::vector<std::string>& args) {
  if (args.empty()) return usageError("geoip", "missing command", kGeoipHelp);
  const std::string& sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "-h" || sub == "--help" || sub == "help") return printHelp(kGeoipHelp);
  if (sub == "lookup") return geoipLookup(rest);
  if (sub == "list") return geoipList(rest);
  return usageError("geoip", "unknown command \"" + sub + "\"", kGeoipHelp);
}

}  // namespace veer::app
