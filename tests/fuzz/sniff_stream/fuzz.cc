// Fuzzes the TCP dispatcher (every stream sniffer) on each prefix the input's first byte
// selects, as if the stream arrived in reads of that size.
#include <cstddef>
#include <cstdint>

#include "sniff/sniff.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t step = 1 + data[0] % 64;
  veer::ByteView in(data + 1, size - 1);
  // At most size/step calls; each prefix is re-sniffed from the start, as conn does.
  for (size_t n = 0;; n = n + step > in.size() ? in.size() : n + step) {
    veer::sniff::Info info;
    veer::sniff::Status st = veer::sniff::sniffStream(in.first(n), {}, info);
    if (st == veer::sniff::Status::Match && info.protocol.empty()) __builtin_trap();
    if (st != veer::sniff::Status::NeedMore || n == in.size()) break;
  }
  return 0;
}
