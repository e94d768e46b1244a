// Small helpers shared by the CLI commands: option parsing, whole-file I/O, exit codes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace veer::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

/// Parses "--flag", "-o VALUE", "--output=VALUE" and positional arguments, in any order. "--"
/// ends the options; a lone "-" is a positional argument (stdin/stdout).
class ArgParser {
 public:
  /// `names` are the spellings ("-o", "--output"); `*out` is set to true when one is present.
  void flag(std::vector<std::string> names, bool* out);
  /// An option with a value; `*out` receives it.
  void option(std::vector<std::string> names, std::string* out);

  /// Returns false on an unknown option or a missing value (see error()). "-h"/"--help" set
  /// help() and stop parsing.
  bool parse(const std::vector<std::string>& args);

  bool help() const { return help_; }
  const std::string& error() const { return error_; }
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  struct Spec {
    std::vector<std::string> names;
    bool* flag = nullptr;
    std::string* value = nullptr;
  };
  const Spec* find(std::string_view name) const;

  std::vector<Spec> specs_;
  std::vector<std::string> positional_;
  std::string error_;
  bool help_ = false;
};

/// Prints `help` to stdout; returns kExitOk.
int printHelp(const char* help);
/// Prints "veer <cmd>: <message>" and the help text to stderr; returns kExitUsage.
int usageError(const char* cmd, const std::string& message, const char* help);
/// Prints "veer <cmd>: <message>" to stderr; returns kExitFailure.
int failure(const char* cmd, const std::string& message);

/// The whole file ("-" = stdin). The error names the file.
Result<std::string> readInput(const std::string& path);
/// Writes `data` to `path` ("-" = stdout) through a temporary file renamed into place, so that
/// a failed write never leaves a half-written file (and `-w` on the input is safe).
Status writeOutput(const std::string& path, std::string_view data);

/// True when `path` ends with `ext` (".json").
bool hasExtension(std::string_view path, std::string_view ext);
/// `path` with its extension (after the last '.' of the last component) replaced by `ext`, or
/// `ext` appended when it has none.
std::string replaceExtension(const std::string& path, std::string_view ext);

/// Lower-cases ASCII and drops one trailing dot ("WWW.Example.COM." -> "www.example.com").
std::string normalizeDomain(std::string_view domain);

/// `s` with every byte sequence that is not valid UTF-8 replaced by U+FFFD (as Go's JSON
/// encoder does), so that JSON output stays valid for binary input such as odd ALPN values.
std::string validUtf8(std::string_view s);
/// `s` with control bytes and bytes >= 0x7f written as \xNN, for terminal output.
std::string printable(std::string_view s);

}  // namespace veer::app
