#include "rules/trace.h"

namespace veer::rules {

std::string formatPos(const SourcePos& pos) {
  std::string out = pos.file;
  if (pos.line != 0) {
    if (!out.empty()) out += ":";
    out += std::to_string(pos.line);
    if (pos.column != 0) {
      out += ':';
      out += std::to_string(pos.column);
    }
  }
  if (!pos.path.empty()) {
    if (!out.empty()) out += " ";
    out += pos.path;
  }
  return out;
}

std::string Trace::toString() const {
  std::string out;
  for (const auto& s : steps) {
    out += '#';
    out += std::to_string(s.index);
    std::string where = formatPos(s.pos);
    if (!where.empty()) out += " " + where;
    switch (s.outcome) {
      case TraceStep::Outcome::Matched:
        out += " matched";
        if (!s.detail.empty()) out += ": " + s.detail;
        break;
      case TraceStep::Outcome::NeedResolve:
        out += " needs the destination resolved";
        break;
      case TraceStep::Outcome::NoMatch:
        out += " no match";
        break;
    }
    out += " | " + s.rule + "\n";
  }
  return out;
}

}  // namespace veer::rules
