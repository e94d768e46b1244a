// Fuzzes sniffHttp on the whole input and on a prefix; a Match must name HTTP.
#include <cstddef>
#include <cstdint>

#include "sniff/sniff.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  veer::ByteView in(data, size);
  veer::sniff::Info info;
  if (veer::sniff::sniffHttp(in, info) == veer::sniff::Status::Match && info.protocol != "http") {
    __builtin_trap();
  }
  if (size > 0) {
    veer::sniff::Info part;
    (void)veer::sniff::sniffHttp(in.first(data[size - 1] % size), part);
  }
  return 0;
}
