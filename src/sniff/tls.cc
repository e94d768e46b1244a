// TLS ClientHello sniffing over a TCP stream: the handshake message may be fragmented over
// several records, and the records over several reads.
#include <algorithm>
#include <cstring>

#include "sniff/client_hello.h"
#include "sniff/sniff.h"

namespace veer::sniff {

namespace {

constexpr uint8_t kRecordHandshake = 22;
constexpr uint8_t kHandshakeClientHello = 1;
constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtSupportedGroups = 10;
constexpr uint16_t kExtPointFormats = 11;
constexpr uint16_t kExtSignatureAlgorithms = 13;
constexpr uint16_t kExtAlpn = 16;
constexpr uint16_t kExtSupportedVersions = 43;
// Real ClientHellos carry 10-30 extensions; the cap keeps the duplicate check cheap.
constexpr size_t kMaxExtensions = 128;
// RFC 8446 5.1: a record never carries more than 2^14 bytes plus the allowed expansion.
constexpr size_t kMaxRecordPayload = 16384 + 2048;

bool readList16(ByteReader& r, std::vector<uint16_t>& out) {
  uint16_t len;
  ByteView body;
  if (!r.be16(len) || (len & 1) || !r.bytes(len, body)) return false;
  out.clear();
  out.reserve(len / 2);
  for (size_t i = 0; i + 1 < body.size(); i += 2) out.push_back(loadBe16(body.data() + i));
  return true;
}

Status parseServerName(ByteView ext, ClientHello& out) {
  ByteReader r(ext);
  uint16_t listLen;
  ByteView list;
  if (!r.be16(listLen) || !r.bytes(listLen, list) || !r.empty() || list.empty()) {
    return Status::NoMatch;
  }
  ByteReader names(list);
  // Bounded: every entry consumes at least 3 bytes of the list.
  while (!names.empty()) {
    uint8_t type;
    uint16_t len;
    ByteView name;
    if (!names.u8(type) || !names.be16(len) || !names.bytes(len, name) || name.empty()) {
      return Status::NoMatch;
    }
    if (type != 0) continue;  // only host_name is defined; others are skipped as Go does
    if (!out.serverName.empty()) return Status::NoMatch;  // one host_name at most (RFC 6066 3)
    std::string_view s = asChars(name);
    if (s.back() == '.') return Status::NoMatch;  // RFC 6066: no trailing dot
    if (s.find('\0') != std::string_view::npos) return Status::NoMatch;
    out.serverName.assign(s);
  }
  return Status::Match;
}

Status parseAlpn(ByteView ext, ClientHello& out) {
  ByteReader r(ext);
  uint16_t listLen;
  ByteView list;
  if (!r.be16(listLen) || !r.bytes(listLen, list) || !r.empty() || list.empty()) {
    return Status::NoMatch;
  }
  ByteReader protos(list);
  while (!protos.empty()) {
    uint8_t len;
    ByteView proto;
    if (!protos.u8(len) || len == 0 || !protos.bytes(len, proto)) return Status::NoMatch;
    out.alpn.emplace_back(asChars(proto));
  }
  return Status::Match;
}

Status parseFingerprintExtension(uint16_t type, ByteView ext, ClientHello& out) {
  ByteReader r(ext);
  switch (type) {
    case kExtSupportedGroups:
      if (!readList16(r, out.groups) || !r.empty()) return Status::NoMatch;
      break;
    case kExtSignatureAlgorithms:
      if (!readList16(r, out.signatureAlgorithms) || !r.empty()) return Status::NoMatch;
      break;
    case kExtPointFormats: {
      uint8_t len;
      ByteView body;
      if (!r.u8(len) || !r.bytes(len, body) || !r.empty()) return Status::NoMatch;
      out.pointFormats.assign(body.begin(), body.end());
      break;
    }
    case kExtSupportedVersions: {
      uint8_t len;
      ByteView body;
      if (!r.u8(len) || (len & 1) || !r.bytes(len, body) || !r.empty()) return Status::NoMatch;
      out.versions.clear();
      for (size_t i = 0; i + 1 < body.size(); i += 2) out.versions.push_back(loadBe16(&body[i]));
      break;
    }
    default:
      break;
  }
  return Status::Match;
}

}  // namespace

std::string lowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Status parseClientHello(ByteView msg, ClientHello& out, bool fingerprint) {
  ByteReader r(msg);
  uint8_t type;
  uint32_t len;
  if (!r.u8(type) || type != kHandshakeClientHello || !r.be24(len) || len != r.remaining()) {
    return Status::NoMatch;
  }
  uint16_t version;
  uint8_t sessionIdLen;
  uint16_t suitesLen;
  ByteView suites;
  uint8_t compressionLen;
  // legacy_version must look like SSL 3.0 .. TLS 1.2 (TLS 1.3 keeps 0x0303 here).
  if (!r.be16(version) || (version >> 8) != 3 || !r.skip(32) || !r.u8(sessionIdLen) ||
      sessionIdLen > 32 || !r.skip(sessionIdLen) || !r.be16(suitesLen) || suitesLen < 2 ||
      (suitesLen & 1) || !r.bytes(suitesLen, suites) || !r.u8(compressionLen) ||
      compressionLen < 1 || !r.skip(compressionLen)) {
    return Status::NoMatch;
  }
  out.legacyVersion = version;
  if (fingerprint) {
    out.cipherSuites.clear();
    out.cipherSuites.reserve(suitesLen / 2);
    for (size_t i = 0; i + 1 < suites.size(); i += 2) {
      out.cipherSuites.push_back(loadBe16(&suites[i]));
    }
  }
  if (r.empty()) return Status::Match;  // SSL 3.0 style hello without extensions

  uint16_t extsLen;
  ByteView exts;
  if (!r.be16(extsLen) || !r.bytes(extsLen, exts) || !r.empty()) return Status::NoMatch;
  uint16_t seen[kMaxExtensions];
  size_t nSeen = 0;
  ByteReader er(exts);
  while (!er.empty()) {
    uint16_t extType, extLen;
    ByteView ext;
    if (!er.be16(extType) || !er.be16(extLen) || !er.bytes(extLen, ext)) return Status::NoMatch;
    if (nSeen == kMaxExtensions) return Status::NoMatch;
    for (size_t i = 0; i < nSeen; ++i) {
      if (seen[i] == extType) return Status::NoMatch;  // duplicates are illegal (RFC 8446 4.2)
    }
    seen[nSeen++] = extType;
    Status st = Status::Match;
    if (extType == kExtServerName) {
      st = parseServerName(ext, out);
    } else if (extType == kExtAlpn) {
      st = parseAlpn(ext, out);
    } else if (fingerprint) {
      st = parseFingerprintExtension(extType, ext, out);
    }
    if (st != Status::Match) return st;
  }
  if (fingerprint) out.extensions.assign(seen, seen + nSeen);
  return Status::Match;
}

Status sniffTls(ByteView in, Info& out) {
  // Walk the records, collecting the handshake bytes. The common case, a ClientHello within the
  // first record, is parsed in place; only a fragmented one is copied.
  ByteReader r(in);
  std::vector<uint8_t> joined;
  ByteView first;
  size_t have = 0;          // handshake bytes seen so far
  size_t need = SIZE_MAX;   // total handshake message size once its header is known
  bool fragmented = false;
  while (have < need) {
    if (r.remaining() < 5) {
      // Reject early on a header that can never become a TLS handshake record.
      ByteView h = r.rest();
      if (!h.empty() && h[0] != kRecordHandshake) return Status::NoMatch;
      if (h.size() > 1 && h[1] != 3) return Status::NoMatch;
      return in.size() >= kMaxStreamSniffBytes ? Status::NoMatch : Status::NeedMore;
    }
    uint8_t type;
    uint16_t version, len;
    (void)r.u8(type);
    (void)r.be16(version);
    (void)r.be16(len);
    if (type != kRecordHandshake || (version >> 8) != 3 || len == 0 || len > kMaxRecordPayload) {
      return Status::NoMatch;
    }
    ByteView payload;
    const bool complete = r.bytes(len, payload);
    if (!complete) payload = r.rest();
    if (have == 0 && complete && payload.size() >= 4) {
      first = payload;
    } else {
      if (!fragmented) {
        joined.assign(first.begin(), first.end());
        fragmented = true;
      }
      // Copy only what the message still needs: bounded by `need` once the header is known,
      // and by the (capped) input before that.
      joined.insert(joined.end(), payload.begin(), payload.end());
    }
    have += payload.size();
    ByteView sofar = fragmented ? ByteView(joined) : first;
    if (need == SIZE_MAX && sofar.size() >= 4) {
      if (sofar[0] != kHandshakeClientHello) return Status::NoMatch;
      need = 4 + size_t{loadBe24(sofar.data() + 1)};
      if (need > kMaxStreamSniffBytes) return Status::NoMatch;
    }
    if (!complete && have < need) {
      return in.size() >= kMaxStreamSniffBytes ? Status::NoMatch : Status::NeedMore;
    }
  }
  ByteView msg = (fragmented ? ByteView(joined) : first).first(need);
  ClientHello hello;
  if (parseClientHello(msg, hello, false) != Status::Match) return Status::NoMatch;
  out.protocol = "tls";
  out.domain = lowerAscii(hello.serverName);
  out.client.clear();
  out.alpn = std::move(hello.alpn);
  return Status::Match;
}

}  // namespace veer::sniff
