// Fuzzes the HTTP proxy request parser, destination extraction, rewriting and body framing.
#include <cstddef>
#include <cstdint>

#include "inbound/http_codec.h"

using namespace veer;
using namespace veer::inbound::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  RequestHead h;
  std::string why;
  if (parseRequestHead(in, h, why) == Parse::Done) {
    std::string origin;
    auto d = proxyDestination(h, origin, why);
    if (d) (void)rewriteForOrigin(h, origin, *d);
    bool ok = true;
    BodyFramer f = BodyFramer::forRequest(h, why, ok);
    if (ok && h.head_len <= size) (void)f.consume(in.subspan(h.head_len));
  }
  ResponseHead r;
  if (parseResponseHead(in, r, why) == Parse::Done) {
    bool ok = true;
    BodyFramer f = BodyFramer::forResponse(r, "GET", why, ok);
    if (ok && r.head_len <= size) (void)f.consume(in.subspan(r.head_len));
  }
  // Chunked decoding of arbitrary bytes.
  RequestHead c;
  c.headers.push_back({"Transfer-Encoding", "chunked"});
  bool ok = true;
  BodyFramer cf = BodyFramer::forRequest(c, why, ok);
  (void)cf.consume(in);
  return 0;
}
