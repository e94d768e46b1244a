// Diagnostics: errors and warnings about configuration and rule files, each with a position
// (file:line:col), an optional JSON path, and a renderer that shows the line with a caret.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace veer {

struct Diag {
  enum class Severity : uint8_t { Error, Warning };
  Severity severity = Severity::Error;
  std::string file;
  uint32_t line = 0;  // 1-based; 0 = unknown
  uint32_t column = 0;
  std::string path;  // "route.rules[3].ip_cidr[1]" (may be empty)
  std::string message;
  std::string code;  // short machine-readable kind, e.g. "unknown-field", "shadowed-rule"

  /// "file:line:col: message" (+ " at path" when the message does not already name it).
  std::string toString() const;
};

/// Collects diagnostics. Parsers keep going after an error so that a user sees all of them.
class DiagList {
 public:
  void error(std::string file, uint32_t line, uint32_t col, std::string path, std::string msg,
             std::string code = "error");
  void warning(std::string file, uint32_t line, uint32_t col, std::string path, std::string msg,
               std::string code = "warning");
  void add(Diag d) { diags_.push_back(std::move(d)); }
  void append(const DiagList& other);

  const std::vector<Diag>& all() const { return diags_; }
  bool hasErrors() const;
  size_t errorCount() const;
  size_t warningCount() const;
  bool empty() const { return diags_.empty(); }

 private:
  std::vector<Diag> diags_;
};

/// The line `line` (1-based) of `text`, and a caret under column `col`:
///   "   12 |   \"listen_prot\": 2080,\n      |   ^\n"
std::string renderSourceLine(std::string_view text, uint32_t line, uint32_t col);

}  // namespace veer
