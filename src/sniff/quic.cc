// QUIC client Initial sniffing (RFC 9000 17.2.2, RFC 9001 5, RFC 9369): remove header
// protection, open the payload with the Initial keys, collect the CRYPTO frames per destination
// connection ID, and parse the ClientHello once the stream is contiguous from offset 0.
#include <algorithm>
#include <cstring>
#include <memory>

#include "sniff/client_hello.h"
#include "sniff/quic_crypto.h"
#include "sniff/sniff.h"

namespace veer::sniff {

namespace {

constexpr size_t kMaxCidLen = 20;
// Connections tracked at once: a Retry or a second handshake in the same UDP session uses a
// new DCID; more than a handful means something else is going on.
constexpr size_t kMaxConnections = 4;
// Disjoint CRYPTO ranges per connection before reassembly gives up. Browsers split the
// ClientHello into a few dozen pieces at most.
constexpr size_t kMaxRanges = 64;
constexpr size_t kMaxCryptoBytes = kMaxStreamSniffBytes;

constexpr uint8_t kFramePadding = 0x00;
constexpr uint8_t kFramePing = 0x01;
constexpr uint8_t kFrameAck = 0x02;
constexpr uint8_t kFrameAckEcn = 0x03;
constexpr uint8_t kFrameCrypto = 0x06;
constexpr uint8_t kFrameConnectionClose = 0x1c;

// RFC 9000 16: a 2-bit length prefix selects 1, 2, 4 or 8 bytes.
bool readVarint(ByteReader& r, uint64_t& v) {
  uint8_t b;
  if (!r.u8(b)) return false;
  const size_t len = size_t{1} << (b >> 6);
  v = b & 0x3f;
  for (size_t i = 1; i < len; ++i) {
    if (!r.u8(b)) return false;
    v = (v << 8) | b;
  }
  return true;
}

struct Range {
  uint64_t begin;
  uint64_t end;
};

struct CryptoPiece {
  uint64_t offset;
  ByteView data;
};

// The sequence of frame types in one packet, reduced to what client detection asks about
// (sing-box quic.go keeps the whole list; these counters answer the same questions).
struct FrameStats {
  size_t frames = 0;
  size_t nonPadding = 0;
  size_t crypto = 0;
  size_t ping = 0;
  uint8_t first = 0;
  uint8_t last = 0;
};

struct Connection {
  uint32_t version = 0;
  uint8_t dcid[kMaxCidLen] = {};
  size_t dcidLen = 0;
  InitialCipher cipher;
  std::vector<uint8_t> stream;  // CRYPTO bytes by offset, sized to the highest end seen
  std::vector<Range> ranges;    // sorted, disjoint, non-adjacent
  bool incompleteSeen = false;
  uint64_t lastUse = 0;

  bool is(uint32_t v, ByteView id) const {
    return version == v && dcidLen == id.size() && std::memcmp(dcid, id.data(), dcidLen) == 0;
  }
  size_t contiguous() const {
    return !ranges.empty() && ranges[0].begin == 0 ? static_cast<size_t>(ranges[0].end) : 0;
  }
};

bool addRange(std::vector<Range>& ranges, uint64_t begin, uint64_t end) {
  auto it = std::lower_bound(ranges.begin(), ranges.end(), begin,
                             [](const Range& r, uint64_t b) { return r.end < b; });
  // `it` is the first range that ends at or after `begin`: merge everything that touches.
  Range merged{begin, end};
  auto last = it;
  while (last != ranges.end() && last->begin <= end) {
    merged.begin = std::min(merged.begin, last->begin);
    merged.end = std::max(merged.end, last->end);
    ++last;
  }
  it = ranges.erase(it, last);
  ranges.insert(it, merged);
  return ranges.size() <= kMaxRanges;
}

bool equalsList(const std::vector<uint16_t>& a, std::initializer_list<uint16_t> b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

bool isGrease(uint16_t v) { return (v & 0x0f0f) == 0x0a0a; }

// sing-box quic_blacklist.go: the one uQUIC fingerprint (Chrome 115) that still gets reported as
// chromium when it sends a ClientHello in one packet.
bool isUquicChrome115(const ClientHello& h) {
  std::vector<uint16_t> sorted = h.extensions;
  std::sort(sorted.begin(), sorted.end());
  return h.legacyVersion == 0x0303 && equalsList(h.cipherSuites, {4865, 4866, 4867}) &&
         equalsList(sorted, {0, 10, 13, 16, 27, 43, 45, 51, 57, 17513}) &&
         equalsList(h.groups, {29, 23, 24}) && h.pointFormats.empty() &&
         equalsList(h.signatureAlgorithms, {1027, 2052, 1025, 1283, 2053, 1281, 2054, 1537, 513});
}

// The client guess of sing-box common/sniff/quic.go, from the frame pattern of the packet that
// completed the ClientHello and from the ClientHello itself.
const char* guessClient(const FrameStats& f, const ClientHello& h) {
  if (f.frames == 1) return "firefox";  // one CRYPTO frame, no padding frames
  const bool onlyFirstNonPadding = f.nonPadding == (f.first != kFramePadding ? 1u : 0u);
  const bool onlyLastNonPadding = f.nonPadding == (f.last != kFramePadding ? 1u : 0u);
  if (f.first == kFrameCrypto && onlyFirstNonPadding) {
    if (h.versions.size() == 2 && isGrease(h.versions[0]) && h.groups.size() == 5 &&
        isGrease(h.groups[0])) {
      return "safari";
    }
    if (equalsList(h.cipherSuites, {0x1302}) && equalsList(h.groups, {0x001d}) &&
        equalsList(h.signatureAlgorithms, {0x0403})) {
      return "safari";
    }
  }
  if (f.last == kFrameCrypto && onlyLastNonPadding) return "quic-go";
  if (f.crypto > 1 || f.ping > 0) return isUquicChrome115(h) ? "chromium" : "quic-go";
  return "unknown";
}

// Walks the frames of a decrypted Initial. Only the frames allowed in a client Initial are
// accepted (RFC 9000 12.4, as sing-box does); anything else rejects the packet.
bool parseFrames(ByteView plain, std::vector<CryptoPiece>& pieces, FrameStats& stats) {
  ByteReader r(plain);
  // Every frame consumes at least one byte, so the loop ends with the payload.
  while (!r.empty()) {
    uint8_t type;
    (void)r.u8(type);
    if (stats.frames == 0) stats.first = type;
    stats.last = type;
    ++stats.frames;
    if (type != kFramePadding) ++stats.nonPadding;
    uint64_t v, count, len;
    switch (type) {
      case kFramePadding:
        break;
      case kFramePing:
        ++stats.ping;
        break;
      case kFrameAck:
      case kFrameAckEcn:
        // Largest Acknowledged, ACK Delay, ACK Range Count, First ACK Range, ranges, [ECN].
        if (!readVarint(r, v) || !readVarint(r, v) || !readVarint(r, count) || !readVarint(r, v)) {
          return false;
        }
        // Each range needs two varints of at least a byte each; more than that cannot fit.
        if (count > r.remaining() / 2) return false;
        for (uint64_t i = 0; i < count; ++i) {
          if (!readVarint(r, v) || !readVarint(r, v)) return false;
        }
        if (type == kFrameAckEcn && (!readVarint(r, v) || !readVarint(r, v) || !readVarint(r, v))) {
          return false;
        }
        break;
      case kFrameCrypto: {
        uint64_t offset;
        ByteView data;
        if (!readVarint(r, offset) || !readVarint(r, len) || len > r.remaining() ||
            !r.bytes(static_cast<size_t>(len), data)) {
          return false;
        }
        if (offset > kMaxCryptoBytes || len > kMaxCryptoBytes - offset) return false;
        ++stats.crypto;
        if (!data.empty()) pieces.push_back({offset, data});
        break;
      }
      case kFrameConnectionClose:
        // Error Code, Frame Type, Reason Phrase Length, Reason Phrase.
        if (!readVarint(r, v) || !readVarint(r, v) || !readVarint(r, len) ||
            len > r.remaining() || !r.skip(static_cast<size_t>(len))) {
          return false;
        }
        break;
      default:
        return false;
    }
  }
  return true;
}

}  // namespace

struct QuicSniffer::State {
  std::vector<std::unique_ptr<Connection>> conns;
  uint64_t tick = 0;
  std::vector<uint8_t> header;  // unprotected header: the AEAD's associated data
  std::vector<uint8_t> plain;   // decrypted payload of the current packet
  std::vector<CryptoPiece> pieces;
};

QuicSniffer::QuicSniffer() : state_(std::make_unique<State>()) {}
QuicSniffer::~QuicSniffer() = default;
QuicSniffer::QuicSniffer(QuicSniffer&&) noexcept = default;
QuicSniffer& QuicSniffer::operator=(QuicSniffer&&) noexcept = default;

Status QuicSniffer::feed(ByteView datagram, Info& out) {
  if (!state_) state_ = std::make_unique<State>();  // a moved-from sniffer starts afresh
  State& st = *state_;

  // Long header (RFC 9000 17.2): form and fixed bits set, a version with known Initial keys,
  // and the Initial packet type (0 in v1 and draft-29, 1 in v2).
  ByteReader r(datagram);
  uint8_t first;
  uint32_t version;
  if (!r.u8(first) || (first & 0xc0) != 0xc0 || !r.be32(version)) return Status::NoMatch;
  const uint8_t type = (first >> 4) & 3;
  if (version == kQuicVersion1 || version == kQuicDraft29) {
    if (type != 0) return Status::NoMatch;
  } else if (version == kQuicVersion2) {
    if (type != 1) return Status::NoMatch;
  } else {
    return Status::NoMatch;
  }
  uint8_t dcidLen, scidLen;
  ByteView dcid;
  uint64_t tokenLen, length;
  if (!r.u8(dcidLen) || dcidLen == 0 || dcidLen > kMaxCidLen || !r.bytes(dcidLen, dcid) ||
      !r.u8(scidLen) || scidLen > kMaxCidLen || !r.skip(scidLen) || !readVarint(r, tokenLen) ||
      tokenLen > r.remaining() || !r.skip(static_cast<size_t>(tokenLen)) ||
      !readVarint(r, length) || length > r.remaining()) {
    return Status::NoMatch;
  }
  const size_t pnOffset = r.offset();
  // The header-protection sample starts 4 bytes after the packet number offset (RFC 9001
  // 5.4.2); with the 16-byte tag this also guarantees a non-empty sealed payload.
  if (length < 4 + 16) return Status::NoMatch;

  Connection* conn = nullptr;
  std::unique_ptr<Connection> fresh;
  for (auto& c : st.conns) {
    if (c->is(version, dcid)) conn = c.get();
  }
  if (!conn) {
    InitialSecrets secrets;
    fresh = std::make_unique<Connection>();
    if (!deriveClientInitialSecrets(version, dcid, secrets) || !fresh->cipher.init(secrets)) {
      return Status::NoMatch;
    }
    fresh->version = version;
    std::memcpy(fresh->dcid, dcid.data(), dcid.size());
    fresh->dcidLen = dcid.size();
    conn = fresh.get();
  }

  uint8_t mask[16];
  if (!conn->cipher.headerMask(datagram.data() + pnOffset + 4, mask)) return Status::NoMatch;
  const uint8_t unprotected = first ^ (mask[0] & 0x0f);
  const size_t pnLen = (unprotected & 3) + 1;
  st.header.assign(datagram.begin(), datagram.begin() + static_cast<ptrdiff_t>(pnOffset + pnLen));
  st.header[0] = unprotected;
  uint64_t pn = 0;
  for (size_t i = 0; i < pnLen; ++i) {
    st.header[pnOffset + i] ^= mask[1 + i];
    pn = (pn << 8) | st.header[pnOffset + i];
  }
  // The packet number is used as sent: for a client's first Initials the truncated value is the
  // full one, and a wrong guess only makes the AEAD fail.
  ByteView sealed = datagram.subspan(pnOffset + pnLen, static_cast<size_t>(length) - pnLen);
  st.plain.resize(sealed.size() - 16 + 1);  // +1: never hand the library a null buffer
  if (!conn->cipher.open(pn, st.header, sealed, st.plain.data())) return Status::NoMatch;
  ByteView plain(st.plain.data(), sealed.size() - 16);

  st.pieces.clear();
  FrameStats stats;
  if (!parseFrames(plain, st.pieces, stats)) return Status::NoMatch;

  if (fresh) {
    if (st.conns.size() == kMaxConnections) {
      auto oldest = std::min_element(st.conns.begin(), st.conns.end(),
                                     [](const auto& a, const auto& b) { return a->lastUse < b->lastUse; });
      st.conns.erase(oldest);
    }
    st.conns.push_back(std::move(fresh));
  }
  conn->lastUse = ++st.tick;
  auto drop = [&st, conn] {
    st.conns.erase(std::find_if(st.conns.begin(), st.conns.end(),
                                [conn](const auto& c) { return c.get() == conn; }));
  };

  for (const CryptoPiece& p : st.pieces) {
    const size_t end = static_cast<size_t>(p.offset) + p.data.size();  // <= kMaxCryptoBytes
    if (conn->stream.size() < end) conn->stream.resize(end);
    std::memcpy(conn->stream.data() + p.offset, p.data.data(), p.data.size());
    if (!addRange(conn->ranges, p.offset, end)) {
      drop();
      return Status::NoMatch;
    }
  }

  const size_t have = conn->contiguous();
  size_t need = SIZE_MAX;
  if (have >= 4) {
    need = 4 + size_t{loadBe24(conn->stream.data() + 1)};
    if (conn->stream[0] != 1 || need > kMaxCryptoBytes) {
      drop();
      return Status::NoMatch;
    }
  }
  if (have < need) {
    // A valid Initial of an unfinished ClientHello: sing-box reports QUIC from Chromium here,
    // since only Chromium splits its ClientHello over several packets.
    conn->incompleteSeen = true;
    out.protocol = "quic";
    out.domain.clear();
    out.client = "chromium";
    out.alpn.clear();
    return Status::NeedMore;
  }
  ClientHello hello;
  const Status parsed = parseClientHello(ByteView(conn->stream).first(need), hello, true);
  const bool split = conn->incompleteSeen;
  drop();
  if (parsed != Status::Match) return Status::NoMatch;
  out.protocol = "quic";
  out.domain = lowerAscii(hello.serverName);
  out.client = split ? "chromium" : guessClient(stats, hello);
  out.alpn = std::move(hello.alpn);
  return Status::Match;
}

}  // namespace veer::sniff
