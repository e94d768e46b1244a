// v2fly list compiler on arbitrary text. The input is split at '\0' into up to four lists
// named a, b, c, d-cn so that includes between them are exercised.
#include <cstdint>
#include <map>
#include <string>

#include "rules/geosite_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace veer::rules;
  static const char* kNames[] = {"a", "b", "c", "d-cn"};
  std::map<std::string, std::string> lists;
  std::string cur;
  size_t idx = 0;
  for (size_t i = 0; i <= size; ++i) {
    if (i == size || data[i] == 0) {
      lists[kNames[idx]] = cur;
      cur.clear();
      if (++idx == 4) break;
      continue;
    }
    cur.push_back(static_cast<char>(data[i]));
  }
  auto m = compileGeositeLists(lists);
  if (m) (void)writeGeositeDb(*m);
  return 0;
}
