// Fuzzes the DoH response reader (dns/doh_codec.h): any bytes, fed whole and then split at a
// point taken from the input, must give the same outcome without crashing; a Done response
// has a body of 12..65535 bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "dns/doh_codec.h"

using namespace veer;
using namespace veer::dns;

namespace {

DohResponseReader::State run(const uint8_t* data, size_t size, size_t split, bool eof,
                             DohResponseReader& r) {
  auto s = r.feed(ByteView(data, split));
  if (s == DohResponseReader::State::NeedMore) s = r.feed(ByteView(data + split, size - split));
  if (s == DohResponseReader::State::NeedMore && eof) s = r.finish();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t split = data[0] % size;
  ++data;
  --size;
  if (split > size) split = size;
  for (bool eof : {false, true}) {
    DohResponseReader whole, parts;
    auto a = run(data, size, 0, eof, whole);
    auto b = run(data, size, split, eof, parts);
    if (a != b) std::abort();
    if (a == DohResponseReader::State::Done) {
      if (whole.body() != parts.body()) std::abort();
      if (whole.body().size() < 12 || whole.body().size() > kMaxDohBody) std::abort();
    }
  }
  return 0;
}
