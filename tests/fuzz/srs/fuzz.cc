// .srs reader on arbitrary bytes; whatever decodes must re-encode, and the re-encoded payload
// must decode to the same payload again (the writer is deterministic).
#include <cstdint>
#include <cstdlib>

#include "rules/srs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace veer::rules;
  SrsReadOptions opts;
  opts.max_inflated_bytes = 1 << 20;
  auto set = readSrs(veer::ByteView(data, size), "fuzz.srs", opts);
  if (!set) return 0;
  auto payload = encodeSrsPayload(*set);
  if (!payload) return 0;  // e.g. a v1 file holding items sing-box only writes in v2+
  auto again = decodeSrsPayload(*payload, set->version, "again");
  if (!again) abort();
  auto payload2 = encodeSrsPayload(*again);
  if (!payload2 || *payload2 != *payload) abort();
  return 0;
}
