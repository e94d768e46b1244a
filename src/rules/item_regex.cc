// domain_regex item. RE2 gives linear-time matching with Go's syntax; one RE2::Set tests all
// patterns of a rule in a single pass. RE2::Set::Match with a null result vector does not
// allocate (its DFA cache grows once and is then reused).
#include <re2/re2.h>
#include <re2/set.h>

#include "rules/item_base.h"

namespace veer::rules {

namespace {
RE2::Options regexOptions() {
  RE2::Options o;
  o.set_log_errors(false);
  o.set_max_mem(64 << 20);
  return o;
}
}  // namespace

struct RegexItem::Impl {
  RE2::Set set{regexOptions(), RE2::UNANCHORED};
};

RegexItem::RegexItem() : impl_(std::make_unique<Impl>()) {}
RegexItem::~RegexItem() = default;

std::string RegexItem::checkPattern(std::string_view pattern) {
  RE2 re(re2::StringPiece(pattern.data(), pattern.size()), regexOptions());
  return re.ok() ? std::string() : re.error();
}

Status RegexItem::add(std::string_view pattern, uint32_t origin) {
  std::string error;
  if (impl_->set.Add(re2::StringPiece(pattern.data(), pattern.size()), &error) < 0) {
    return unexpected(error.empty() ? std::string("invalid regular expression") : error);
  }
  patterns_.emplace_back(pattern);
  origin_.push_back(origin);
  return {};
}

Status RegexItem::finalize() {
  if (patterns_.empty()) return {};
  if (!impl_->set.Compile()) return unexpected("regular expressions too large to compile");
  return {};
}

bool RegexItem::match(const MatchInput& in, const EvalEnv&, std::string* why) const {
  if (in.domain.empty() || patterns_.empty()) return false;
  re2::StringPiece text(in.domain.data(), in.domain.size());
  if (why == nullptr) return impl_->set.Match(text, nullptr);
  std::vector<int> hits;
  if (!impl_->set.Match(text, &hits) || hits.empty()) return false;
  origins_.explain(origin_[hits[0]], "domain_regex", patterns_[hits[0]], why);
  return true;
}

void RegexItem::describe(std::string& out) const {
  out += "domain_regex(" + std::to_string(patterns_.size()) + " patterns";
  origins_.describe(out);
  out += ")";
}

}  // namespace veer::rules
