// geosite.db reader on arbitrary bytes: open, then decode every code; a decodable database must
// re-serialise to bytes that decode to the same items.
#include <cstdint>
#include <cstdlib>

#include "rules/geosite_db.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace veer::rules;
  auto db = GeositeDb::fromBytes(std::vector<uint8_t>(data, data + size), "fuzz.db");
  if (!db) return 0;
  auto all = (*db)->loadAll();
  if (!all) return 0;
  auto bytes = writeGeositeDb(*all);
  if (!bytes) abort();
  auto again = GeositeDb::fromBytes(*bytes, "again.db");
  if (!again) abort();
  auto all2 = (*again)->loadAll();
  if (!all2 || all2->size() != all->size()) abort();
  return 0;
}
