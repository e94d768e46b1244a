// Fuzzes the UDP dispatcher (every packet sniffer) over a sequence of length-prefixed
// datagrams of one session, with an allow-list picked by the first byte.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "sniff/sniff.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* kNames[] = {"dns", "quic", "stun", "bittorrent", "dtls", "ntp"};
  std::vector<std::string> enabled;
  for (int i = 0; i < 6; ++i) {
    if (data[0] & (1 << i)) enabled.emplace_back(kNames[i]);
  }
  veer::sniff::PacketSniffer sniffer(enabled);
  veer::ByteReader r(veer::ByteView(data + 1, size - 1));
  for (;;) {
    uint16_t len;
    veer::ByteView dgram;
    if (!r.be16(len)) break;
    if (!r.bytes(len, dgram)) dgram = r.rest(), r.skip(r.remaining());
    veer::sniff::Info info;
    if (sniffer.feed(dgram, info) == veer::sniff::Status::Match && info.protocol.empty()) {
      __builtin_trap();
    }
  }
  return 0;
}
