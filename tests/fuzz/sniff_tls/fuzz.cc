// Fuzzes sniffTls: the whole input, and every prefix cut at a byte chosen by the input, must
// give an answer without reading out of bounds; a Match must name TLS.
#include <cstddef>
#include <cstdint>

#include "sniff/sniff.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  veer::ByteView in(data, size);
  veer::sniff::Info info;
  if (veer::sniff::sniffTls(in, info) == veer::sniff::Status::Match && info.protocol != "tls") {
    __builtin_trap();
  }
  if (size > 0) {
    veer::sniff::Info part;
    (void)veer::sniff::sniffTls(in.first(data[0] % size), part);
  }
  return 0;
}
