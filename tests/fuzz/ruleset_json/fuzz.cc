// Rule-set source JSON on arbitrary text; a parsed set is written back out and must parse.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "rules/ruleset_json.h"
#include "rules/srs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace veer::rules;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto set = readRuleSetJson(text, "fuzz.json");
  if (!set) return 0;
  auto out = writeRuleSetJson(*set);
  if (!out) abort();
  auto again = readRuleSetJson(*out, "again.json");
  if (!again) abort();
  (void)encodeSrsPayload(*set);  // compile path: CIDRs, tries
  return 0;
}
