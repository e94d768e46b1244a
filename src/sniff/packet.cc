// The small datagram sniffers (STUN, BitTorrent uTP / UDP tracker, DTLS, NTP) and the UDP
// dispatcher.
#include <algorithm>

#include "sniff/sniff.h"

namespace veer::sniff {

namespace {

void setProtocol(Info& out, const char* protocol) {
  out.protocol = protocol;
  out.domain.clear();
  out.client.clear();
  out.alpn.clear();
}

}  // namespace

Status sniffStun(ByteView in, Info& out) {
  // RFC 8489 5: 20-byte header, two leading zero bits, magic cookie, attribute length a
  // multiple of 4 that fits in the datagram.
  constexpr uint32_t kMagicCookie = 0x2112a442;
  if (in.size() < 20 || (in[0] & 0xc0) != 0 || loadBe32(in.data() + 4) != kMagicCookie) {
    return Status::NoMatch;
  }
  const size_t len = loadBe16(in.data() + 2);
  if ((len & 3) != 0 || 20 + len > in.size()) return Status::NoMatch;
  setProtocol(out, "stun");
  return Status::Match;
}

Status sniffBittorrentUdp(ByteView in, Info& out) {
  // BEP 15 connect request: protocol id 0x41727101980, action 0 (connect), transaction id.
  constexpr uint64_t kTrackerProtocolId = 0x41727101980;
  if (in.size() >= 16 && loadBe64(in.data()) == kTrackerProtocolId && loadBe32(in.data() + 8) == 0) {
    setProtocol(out, "bittorrent");
    return Status::Match;
  }
  // BEP 29 uTP: 20-byte header, version 1, type ST_DATA..ST_SYN (0..4), then a chain of
  // extensions (next-type, length, body) that must end inside the datagram.
  if (in.size() < 20 || (in[0] & 0x0f) != 1 || (in[0] >> 4) > 4) return Status::NoMatch;
  ByteReader r(in.subspan(20));
  uint8_t ext = in[1];
  // Each extension consumes at least 2 bytes, so this stops at the end of the datagram.
  while (ext != 0) {
    uint8_t len;
    if (ext > 4 || !r.u8(ext) || !r.u8(len) || !r.skip(len)) return Status::NoMatch;
  }
  setProtocol(out, "bittorrent");
  return Status::Match;
}

Status sniffDtls(ByteView in, Info& out) {
  // DTLS record header (RFC 6347 4.1): content type change_cipher_spec, alert, handshake,
  // application_data or tls12_cid (25); version 1.0 (feff) or 1.2 (fefd); 13 bytes.
  if (in.size() < 13) return Status::NoMatch;
  switch (in[0]) {
    case 20: case 21: case 22: case 23: case 25:
      break;
    default:
      return Status::NoMatch;
  }
  if (in[1] != 0xfe || (in[2] != 0xff && in[2] != 0xfd)) return Status::NoMatch;
  setProtocol(out, "dtls");
  return Status::Match;
}

Status sniffNtp(ByteView in, Info& out) {
  // RFC 5905 7.3: a 48-byte header; version 3 or 4, mode 3 (client), root delay and root
  // dispersion (16.16 fixed point seconds) of at most 16 s.
  constexpr uint32_t kMaxRoot = 16u << 16;
  if (in.size() < 48) return Status::NoMatch;
  const uint8_t vn = (in[0] >> 3) & 7;
  const uint8_t mode = in[0] & 7;
  if ((vn != 3 && vn != 4) || mode != 3) return Status::NoMatch;
  if (loadBe32(in.data() + 4) > kMaxRoot || loadBe32(in.data() + 8) > kMaxRoot) {
    return Status::NoMatch;
  }
  setProtocol(out, "ntp");
  return Status::Match;
}

PacketSniffer::PacketSniffer(std::vector<std::string> enabled) : enabled_(std::move(enabled)) {}

bool PacketSniffer::enabled(const char* name) const {
  return enabled_.empty() || std::find(enabled_.begin(), enabled_.end(), name) != enabled_.end();
}

Status PacketSniffer::feed(ByteView datagram, Info& out) {
  if (quicPending_) {
    // sing-box's router keeps reading packets and runs only the QUIC sniffer on them once it
    // has asked for more; the other sniffers already had their chance on the first datagram.
    Status st = quic_.feed(datagram, out);
    if (st != Status::NeedMore) quicPending_ = false;
    return st;
  }
  using Fn = Status (*)(ByteView, Info&);
  struct Entry {
    const char* name;
    Fn fn;
  };
  static constexpr Entry kBefore[] = {{"dns", sniffDnsUdp}};
  static constexpr Entry kAfter[] = {{"stun", sniffStun},
                                     {"bittorrent", sniffBittorrentUdp},
                                     {"dtls", sniffDtls},
                                     {"ntp", sniffNtp}};
  for (const Entry& e : kBefore) {
    if (enabled(e.name) && e.fn(datagram, out) == Status::Match) return Status::Match;
  }
  if (enabled("quic")) {
    Info info;
    Status st = quic_.feed(datagram, info);
    if (st == Status::Match) {
      out = std::move(info);
      return st;
    }
    if (st == Status::NeedMore) {
      quicPending_ = true;
      out = std::move(info);
      return st;
    }
  }
  for (const Entry& e : kAfter) {
    if (enabled(e.name) && e.fn(datagram, out) == Status::Match) return Status::Match;
  }
  return Status::NoMatch;
}

}  // namespace veer::sniff
