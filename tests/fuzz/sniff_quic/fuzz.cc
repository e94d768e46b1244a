// Fuzzes one QuicSniffer session. The input is a sequence of datagrams, each prefixed with a
// 2-byte big-endian length, so that reassembly state across datagrams is exercised. Random
// bytes rarely pass the AEAD, so the seeds are real (test-built) Initials that the fuzzer
// mutates around: header fields, lengths, packet boundaries and datagram order.
#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "sniff/sniff.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  veer::ByteReader r(veer::ByteView(data, size));
  veer::sniff::QuicSniffer quic;
  // Each datagram consumes at least its 2-byte length, so this ends with the input.
  for (;;) {
    uint16_t len;
    veer::ByteView dgram;
    if (!r.be16(len)) break;
    if (!r.bytes(len, dgram)) dgram = r.rest(), r.skip(r.remaining());
    veer::sniff::Info info;
    veer::sniff::Status st = quic.feed(dgram, info);
    if (st != veer::sniff::Status::NoMatch && info.protocol != "quic") __builtin_trap();
  }
  return 0;
}
