// Fuzzes the SOCKS4/4a/5 parsers the mixed inbound runs on untrusted bytes.
#include <cstddef>
#include <cstdint>

#include "inbound/socks_codec.h"

using namespace veer;
using namespace veer::inbound::socks;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteView in(data, size);
  size_t used = 0;
  std::string why;
  Greeting g;
  if (parseGreeting(in, g, used, why) == Parse::Done && used <= size) {
    Request r;
    size_t used2 = 0;
    (void)parseRequest(in.subspan(used), r, used2, why);
    if (r.dst.valid()) (void)reply5(kSucceeded, r.dst);
  }
  UserPass up;
  (void)parseUserPass(in, up, used, why);
  Request4 r4;
  (void)parseRequest4(in, r4, used, why);
  UdpHeader h;
  if (parseUdpHeader(in, h, why) == Parse::Done) (void)udpHeader(h.dst);
  return 0;
}
