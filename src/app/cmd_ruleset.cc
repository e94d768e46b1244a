// veer rule-set compile | decompile | format | match (sing-box's `rule-set` commands, plus the
// veer DSL as a source format).
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "app/cmd_util.h"
#include "app/commands.h"
#include "base/address.h"
#include "rules/dsl.h"
#include "rules/rule_engine.h"
#include "rules/ruleset_json.h"
#include "rules/srs.h"

namespace veer::app {

namespace {

const char* kRuleSetHelp =
    "Usage: veer rule-set <command> [options]\n"
    "\n"
    "Commands:\n"
    "  compile   [-o OUT] SRC            .json source or .veer DSL -> binary .srs\n"
    "  decompile [-o OUT] FILE.srs       binary .srs -> .json source\n"
    "  format    [-w] FILE               re-emit a .json source or .veer DSL canonically\n"
    "  match     [-f FORMAT] FILE DOMAIN|IP\n"
    "                                    print the rules of FILE that match\n"
    "\n"
    "Run 'veer rule-set <command> --help' for details.\n";

const char* kCompileHelp =
    "Usage: veer rule-set compile [-o OUT] SRC\n"
    "\n"
    "Compiles a rule-set source (sing-box JSON, .json, or veer DSL, .veer) into a binary\n"
    "sing-box rule-set (.srs). Rules are checked as the router would compile them (bad CIDRs,\n"
    "ports and regexes are errors). The .srs version is the lowest one the rules need.\n"
    "  -o, --output OUT          output file (default: SRC with the extension .srs)\n"
    "  -f, --format FORMAT       source or dsl (default: from the extension)\n"
    "Exit status: 0 written, 1 error, 2 usage.\n";

const char* kDecompileHelp =
    "Usage: veer rule-set decompile [-o OUT] FILE.srs\n"
    "\n"
    "Decodes a binary sing-box rule-set into its source JSON (AdGuard sets have none).\n"
    "  -o, --output OUT          output file, '-' for stdout (default: FILE with the\n"
    "                            extension .json)\n"
    "Exit status: 0 written, 1 error, 2 usage.\n";

const char* kFormatHelp =
    "Usage: veer rule-set format [-w] FILE\n"
    "\n"
    "Re-emits a rule-set source canonically: sing-box JSON (.json) in sing-box's field order,\n"
    "or a veer DSL file (.veer; rule-set files and route rule files are both recognised).\n"
    "Comments are not kept.\n"
    "  -w, --write               write the result back to FILE instead of stdout\n"
    "  -f, --format FORMAT       source or dsl (default: from the extension)\n"
    "Exit status: 0 ok, 1 error, 2 usage.\n";

const char* kMatchHelp =
    "Usage: veer rule-set match [-f FORMAT] FILE DOMAIN|IP\n"
    "\n"
    "Matches a domain or an IP address (no port, no other metadata) against every rule of the\n"
    "rule-set FILE and prints each rule that matches, as 'match rules.[INDEX]: RULE', with the\n"
    "field and value that matched on the next line.\n"
    "  -f, --format FORMAT       source (.json), binary (.srs) or dsl (.veer); default: from\n"
    "                            the extension\n"
    "Exit status: 0 some rule matched, 1 none matched (or an error), 2 usage.\n";

/// The format named by -f, or inferred from the extension; "" when unknown.
std::string formatOf(const std::string& flag, const std::string& path) {
  if (!flag.empty()) return flag;
  if (hasExtension(path, ".srs")) return "binary";
  if (hasExtension(path, ".json")) return "source";
  if (hasExtension(path, ".veer")) return "dsl";
  return "";
}

/// Parses a DSL file, printing its errors to stderr. Route files (with "=>") are recognised:
/// `*route` tells which mode parsed the file.
std::optional<rules::DslFile> parseDslFile(const std::string& text, const std::string& path,
                                           bool allow_route, bool* route) {
  DiagList set_diags;
  rules::DslFile set = rules::parseDsl(text, path, rules::DslMode::RuleSet, set_diags);
  if (!set_diags.hasErrors()) {
    if (route != nullptr) *route = false;
    return set;
  }
  if (allow_route) {
    DiagList route_diags;
    rules::DslFile r = rules::parseDsl(text, path, rules::DslMode::Route, route_diags);
    if (!route_diags.hasErrors()) {
      if (route != nullptr) *route = true;
      return r;
    }
    // Report the mode whose errors are fewer: that is the mode the file was meant for.
    if (route_diags.errorCount() < set_diags.errorCount()) {
      std::fputs(rules::renderDiags(text, route_diags).c_str(), stderr);
      return std::nullopt;
    }
  }
  std::fputs(rules::renderDiags(text, set_diags).c_str(), stderr);
  return std::nullopt;
}

/// Loads a rule set in any format; errors are printed (prefixed with the command name).
std::optional<rules::RuleSetSpec> loadRuleSet(const char* cmd, const std::string& path,
                                              const std::string& format) {
  auto text = readInput(path);
  if (!text) {
    failure(cmd, text.error().message());
    return std::nullopt;
  }
  if (format == "binary") {
    auto spec = rules::readSrs(asBytes(*text), path);
    if (!spec) {
      failure(cmd, spec.error().message());
      return std::nullopt;
    }
    return std::move(*spec);
  }
  if (format == "source") {
    auto spec = rules::readRuleSetJson(*text, path);
    if (!spec) {
      std::fprintf(stderr, "%s\n", spec.error().message().c_str());
      return std::nullopt;
    }
    return std::move(*spec);
  }
  auto file = parseDslFile(*text, path, false, nullptr);
  if (!file) return std::nullopt;
  rules::RuleSetSpec spec;
  spec.rules = std::move(file->rules);
  return spec;
}

bool validFormat(const std::string& f, bool allow_binary) {
  return f == "source" || f == "dsl" || (allow_binary && f == "binary");
}

int ruleSetCompile(const std::vector<std::string>& args) {
  const char* cmd = "rule-set compile";
  std::string out, format;
  ArgParser p;
  p.option({"-o", "--output"}, &out);
  p.option({"-f", "--format"}, &format);
  if (!p.parse(args)) return usageError(cmd, p.error(), kCompileHelp);
  if (p.help()) return printHelp(kCompileHelp);
  if (p.positional().size() != 1) return usageError(cmd, "expected one SRC file", kCompileHelp);
  const std::string& src = p.positional()[0];
  std::string fmt = formatOf(format, src);
  if (!validFormat(fmt, false)) {
    return usageError(cmd,
                      fmt.empty() ? "cannot tell the format of \"" + src + "\"; use -f source|dsl"
                                  : "unknown format \"" + fmt + "\" (source, dsl)",
                      kCompileHelp);
  }
  if (out.empty()) {
    if (src == "-") return usageError(cmd, "-o is needed when reading stdin", kCompileHelp);
    out = replaceExtension(src, ".srs");
  }
  auto spec = loadRuleSet(cmd, src, fmt);
  if (!spec) return kExitFailure;
  // Compile as the router would, so that bad values fail here rather than on the router.
  DiagList diags;
  auto engine = rules::RuleEngine::compile(spec->rules, {}, {}, diags);
  if (!engine) {
    for (const auto& d : diags.all()) {
      if (d.severity == Diag::Severity::Error) std::fprintf(stderr, "%s\n", d.toString().c_str());
    }
    return kExitFailure;
  }
  spec->version = rules::compileVersion(*spec);
  auto bytes = rules::writeSrs(*spec);
  if (!bytes) return failure(cmd, src + ": " + bytes.error().message());
  auto st = writeOutput(out, asChars(*bytes));
  if (!st) return failure(cmd, st.error().message());
  return kExitOk;
}

int ruleSetDecompile(const std::vector<std::string>& args) {
  const char* cmd = "rule-set decompile";
  std::string out;
  ArgParser p;
  p.option({"-o", "--output"}, &out);
  if (!p.parse(args)) return usageError(cmd, p.error(), kDecompileHelp);
  if (p.help()) return printHelp(kDecompileHelp);
  if (p.positional().size() != 1) return usageError(cmd, "expected one .srs file", kDecompileHelp);
  const std::string& src = p.positional()[0];
  if (out.empty()) out = src == "-" ? "-" : replaceExtension(src, ".json");
  auto spec = loadRuleSet(cmd, src, "binary");
  if (!spec) return kExitFailure;
  auto text = rules::writeRuleSetJson(*spec);
  if (!text) return failure(cmd, src + ": " + text.error().message());
  auto st = writeOutput(out, *text);
  if (!st) return failure(cmd, st.error().message());
  return kExitOk;
}

int ruleSetFormat(const std::vector<std::string>& args) {
  const char* cmd = "rule-set format";
  bool write = false;
  std::string format;
  ArgParser p;
  p.flag({"-w", "--write"}, &write);
  p.option({"-f", "--format"}, &format);
  if (!p.parse(args)) return usageError(cmd, p.error(), kFormatHelp);
  if (p.help()) return printHelp(kFormatHelp);
  if (p.positional().size() != 1) return usageError(cmd, "expected one FILE", kFormatHelp);
  const std::string& src = p.positional()[0];
  if (write && src == "-") return usageError(cmd, "-w cannot write to stdin", kFormatHelp);
  std::string fmt = formatOf(format, src);
  if (!validFormat(fmt, false)) {
    return usageError(cmd,
                      fmt.empty() ? "cannot tell the format of \"" + src + "\"; use -f source|dsl"
                                  : "unknown format \"" + fmt + "\" (source, dsl)",
                      kFormatHelp);
  }
  auto text = readInput(src);
  if (!text) return failure(cmd, text.error().message());
  std::string formatted;
  if (fmt == "source") {
    auto spec = rules::readRuleSetJson(*text, src);
    if (!spec) {
      std::fprintf(stderr, "%s\n", spec.error().message().c_str());
      return kExitFailure;
    }
    auto out = rules::writeRuleSetJson(*spec);
    if (!out) return failure(cmd, src + ": " + out.error().message());
    formatted = std::move(*out);
  } else {
    bool route = false;
    auto file = parseDslFile(*text, src, true, &route);
    if (!file) return kExitFailure;
    formatted = rules::writeDsl(*file, route ? rules::DslMode::Route : rules::DslMode::RuleSet);
  }
  auto st = writeOutput(write ? src : "-", formatted);
  if (!st) return failure(cmd, st.error().message());
  return kExitOk;
}

int ruleSetMatch(const std::vector<std::string>& args) {
  const char* cmd = "rule-set match";
  std::string format;
  ArgParser p;
  p.option({"-f", "--format"}, &format);
  if (!p.parse(args)) return usageError(cmd, p.error(), kMatchHelp);
  if (p.help()) return printHelp(kMatchHelp);
  if (p.positional().size() != 2) {
    return usageError(cmd, "expected a rule-set FILE and a DOMAIN or IP", kMatchHelp);
  }
  const std::string& src = p.positional()[0];
  const std::string& target = p.positional()[1];
  std::string fmt = formatOf(format, src);
  if (!validFormat(fmt, true)) {
    return usageError(cmd,
                      fmt.empty() ? "cannot tell the format of \"" + src +
                                        "\"; use -f source|binary|dsl"
                                  : "unknown format \"" + fmt + "\" (source, binary, dsl)",
                      kMatchHelp);
  }
  if (target.empty()) return usageError(cmd, "empty DOMAIN", kMatchHelp);
  auto spec = loadRuleSet(cmd, src, fmt);
  if (!spec) return kExitFailure;
  DiagList diags;
  auto engine = rules::RuleEngine::compile(spec->rules, {}, {}, diags);
  if (!engine) {
    for (const auto& d : diags.all()) {
      if (d.severity == Diag::Severity::Error) std::fprintf(stderr, "%s\n", d.toString().c_str());
    }
    return kExitFailure;
  }
  rules::MatchInput in;
  std::string domain;
  if (auto ip = IpAddress::parse(target)) {
    in.destination = ip->unmap();
  } else {
    domain = normalizeDomain(target);
    in.domain = domain;
  }
  // Every rule is tried on its own (veer does not leak group flags between the rules of a set,
  // see rule_engine.h), so each match printed here is a rule that matches by itself.
  rules::Trace trace;
  size_t matches = 0;
  for (size_t start = 0; start < (*engine)->size();) {
    rules::MatchResult r = (*engine)->matchFrom(in, start, &trace);
    if (!r.matched()) break;
    ++matches;
    std::printf("match rules.[%zu]: %s\n", r.index, (*engine)->describe(r.index).c_str());
    const rules::TraceStep& s = trace.steps.back();
    if (!s.detail.empty()) std::printf("    by %s\n", s.detail.c_str());
    start = r.index + 1;
  }
  return matches > 0 ? kExitOk : kExitFailure;
}

}  // namespace

int cmdRuleSet(const std::vector<std::string>& args) {
  if (args.empty()) return usageError("rule-set", "missing command", kRuleSetHelp);
  const std::string& sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "-h" || sub == "--help" || sub == "help") {
    std::fputs(kRuleSetHelp, stdout);
    return kExitOk;
  }
  if (sub == "compile") return ruleSetCompile(rest);
  if (sub == "decompile") return ruleSetDecompile(rest);
  if (sub == "format") return ruleSetFormat(rest);
  if (sub == "match") return ruleSetMatch(rest);
  return usageError("rule-set", "unknown command \"" + sub + "\"", kRuleSetHelp);
}

}  // namespace veer::app
