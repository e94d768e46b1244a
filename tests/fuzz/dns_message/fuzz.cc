// Fuzzes the DNS codec: parse arbitrary bytes; whatever parses must serialize (also truncated
// to 512 bytes) and re-parse, and the response builders must accept it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "dns/cache.h"
#include "dns/message.h"

using namespace veer;
using namespace veer::dns;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto m = parseMessage(ByteView(data, size));
  if (!m) return 0;
  for (size_t limit : {size_t{512}, maxUdpResponseSize(*m), kMaxMessageSize}) {
    auto wire = serializeMessage(*m, limit);
    if (!wire) continue;
    if (wire->size() > limit) std::abort();
    // What we write must parse back: a response we build is sent to clients.
    auto again = parseMessage(*wire);
    if (!again) std::abort();
    if (again->questions.size() != m->questions.size()) std::abort();
  }
  for (const auto& r : m->answers) {
    (void)r.address();
    (void)r.target();
    (void)r.soaNegativeTtl();
  }
  for (const auto& r : m->authorities) (void)r.soaNegativeTtl();
  (void)Cache::cacheTtl(*m, 300);
  Message resp = makeResponse(*m, Rcode::ServFail);
  auto w = serializeMessage(resp, maxUdpResponseSize(*m));
  (void)w;
  TcpDeframer d;
  d.feed(ByteView(data, size));
  while (auto f = d.next()) (void)parseMessage(*f);
  return 0;
}
