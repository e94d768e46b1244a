#include "base/diag.h"

namespace veer {

std::string Diag::toString() const {
  std::string out;
  if (!file.empty()) out += file + ":";
  if (line != 0) {
    out += std::to_string(line) + ":";
    if (column != 0) out += std::to_string(column) + ":";
  }
  if (!out.empty()) out += " ";
  if (severity == Severity::Warning) out += "warning: ";
  out += message;
  if (!path.empty() && message.find(path) == std::string::npos) out += " at " + path;
  return out;
}

void DiagList::error(std::string file, uint32_t line, uint32_t col, std::string path,
                     std::string msg, std::string code) {
  diags_.push_back(Diag{Diag::Severity::Error, std::move(file), line, col, std::move(path),
                        std::move(msg), std::move(code)});
}

void DiagList::warning(std::string file, uint32_t line, uint32_t col, std::string path,
                       std::string msg, std::string code) {
  diags_.push_back(Diag{Diag::Severity::Warning, std::move(file), line, col, std::move(path),
                        std::move(msg), std::move(code)});
}

void DiagList::append(const DiagList& other) {
  diags_.insert(diags_.end(), other.diags_.begin(), other.diags_.end());
}

bool DiagList::hasErrors() const { return errorCount() != 0; }

size_t DiagList::errorCount() const {
  size_t n = 0;
  for (const auto& d : diags_) n += d.severity == Diag::Severity::Error;
  return n;
}

size_t DiagList::warningCount() const { return diags_.size() - errorCount(); }

std::string renderSourceLine(std::string_view text, uint32_t line, uint32_t col) {
  if (line == 0) return {};
  size_t start = 0;
  for (uint32_t l = 1; l < line; ++l) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) return {};
    start = nl + 1;
  }
  size_t end = text.find('\n', start);
  std::string_view src = text.substr(start, end == std::string_view::npos ? text.size() - start
                                                                          : end - start);
  if (!src.empty() && src.back() == '\r') src.remove_suffix(1);
  std::string num = std::to_string(line);
  std::string gutter(num.size() < 5 ? 5 - num.size() : 0, ' ');
  std::string out = gutter + num + " | " + std::string(src) + "\n";
  out += std::string(gutter.size() + num.size(), ' ') + " | ";
  for (uint32_t c = 1; c < col && c - 1 < src.size(); ++c) {
    out += src[c - 1] == '\t' ? '\t' : ' ';
  }
  out += "^\n";
  return out;
}

}  // namespace veer
