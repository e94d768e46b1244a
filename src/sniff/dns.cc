// DNS query sniffing (sing-box: miekg/dns Msg.Unpack, then "a query with a question and no
// answers"). Over TCP the message carries a 2-byte length prefix (RFC 1035 4.2.2).
#include "sniff/sniff.h"

namespace veer::sniff {

namespace {

constexpr size_t kHeaderLen = 12;
// A name's wire form is at most 255 bytes (RFC 1035 3.1); it can never use more pointers than
// that without looping.
constexpr size_t kMaxNameLen = 255;
constexpr int kMaxPointers = 64;

// Skips one (possibly compressed) name starting at `r`, checking every label and pointer
// against the whole message.
bool skipName(ByteView msg, ByteReader& r) {
  size_t pos = r.offset();
  size_t nameLen = 0;
  int pointers = 0;
  bool jumped = false;
  for (;;) {
    if (pos >= msg.size()) return false;
    uint8_t len = msg[pos];
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= msg.size()) return false;
      size_t target = (size_t{len & 0x3fu} << 8) | msg[pos + 1];
      if (!jumped && !r.skip(pos + 2 - r.offset())) return false;
      jumped = true;
      // Pointers must go backwards, which also rules out loops.
      if (target >= pos || ++pointers > kMaxPointers) return false;
      pos = target;
      continue;
    }
    if (len & 0xc0) return false;  // extended label types (RFC 6891 obsoleted them)
    nameLen += size_t{len} + 1;
    if (nameLen > kMaxNameLen) return false;
    if (pos + 1 + len > msg.size()) return false;
    pos += 1 + size_t{len};
    if (len == 0) break;
  }
  if (!jumped && !r.skip(pos - r.offset())) return false;
  return true;
}

// A well-formed client query: QR=0, at least one question, no answer or authority records, and
// every record present parses within the message.
bool isQuery(ByteView msg) {
  ByteReader r(msg);
  uint16_t id, flags, qd, an, ns, ar;
  if (!r.be16(id) || !r.be16(flags) || !r.be16(qd) || !r.be16(an) || !r.be16(ns) || !r.be16(ar)) {
    return false;
  }
  if ((flags & 0x8000) || qd == 0 || an != 0 || ns != 0) return false;
  // Each question takes at least 5 bytes, so these loops stop at the end of the message.
  for (uint32_t i = 0; i < qd; ++i) {
    if (!skipName(msg, r) || !r.skip(4)) return false;
  }
  for (uint32_t i = 0; i < ar; ++i) {
    uint16_t rdlen;
    if (!skipName(msg, r) || !r.skip(8) || !r.be16(rdlen) || !r.skip(rdlen)) return false;
  }
  return true;
}

Status matchDns(ByteView msg, Info& out) {
  if (!isQuery(msg)) return Status::NoMatch;
  out.protocol = "dns";
  out.domain.clear();
  out.client.clear();
  out.alpn.clear();
  return Status::Match;
}

}  // namespace

Status sniffDnsUdp(ByteView in, Info& out) {
  if (in.size() < kHeaderLen) return Status::NoMatch;
  return matchDns(in, out);
}

Status sniffDnsTcp(ByteView in, Info& out) {
  if (in.size() < 2) return Status::NeedMore;
  const size_t len = loadBe16(in.data());
  if (len < kHeaderLen) return Status::NoMatch;
  ByteView msg = in.subspan(2, std::min(len, in.size() - 2));
  // Reject on the header bytes already present rather than waiting for the whole message:
  // QR must be clear, QDCOUNT non-zero, ANCOUNT and NSCOUNT zero.
  if (msg.size() > 2 && (msg[2] & 0x80)) return Status::NoMatch;
  if (msg.size() > 5 && msg[4] == 0 && msg[5] == 0) return Status::NoMatch;
  for (size_t i = 6; i < 10 && i < msg.size(); ++i) {
    if (msg[i] != 0) return Status::NoMatch;
  }
  if (msg.size() < len) return Status::NeedMore;
  return matchDns(msg, out);
}

}  // namespace veer::sniff
