#include "inbound/socks_codec.h"

namespace veer::inbound::socks {

Parse parseGreeting(ByteView in, Greeting& out, size_t& consumed, std::string& why) {
  ByteReader r(in);
  uint8_t ver, n;
  if (!r.u8(ver)) return Parse::NeedMore;
  if (ver != 5) {
    why = "not SOCKS5";
    return Parse::Bad;
  }
  if (!r.u8(n)) return Parse::NeedMore;
  if (n == 0) {
    why = "no authentication methods offered";
    return Parse::Bad;
  }
  ByteView m;
  if (!r.bytes(n, m)) return Parse::NeedMore;
  out.methods.assign(m.begin(), m.end());
  consumed = r.offset();
  return Parse::Done;
}

Parse parseUserPass(ByteView in, UserPass& out, size_t& consumed, std::string& why) {
  ByteReader r(in);
  uint8_t ver, ulen, plen;
  ByteView u, p;
  if (!r.u8(ver)) return Parse::NeedMore;
  if (ver != 1) {
    why = "bad username/password version";
    return Parse::Bad;
  }
  if (!r.u8(ulen) || !r.bytes(ulen, u) || !r.u8(plen) || !r.bytes(plen, p)) {
    return Parse::NeedMore;
  }
  out.user.assign(asChars(u));
  out.pass.assign(asChars(p));
  consumed = r.offset();
  return Parse::Done;
}

Parse parseAddress(ByteReader& r, Destination& out, std::string& why) {
  out = Destination{};
  uint8_t atyp;
  if (!r.u8(atyp)) return Parse::NeedMore;
  ByteView a;
  switch (atyp) {
    case 1:
      if (!r.bytes(4, a)) return Parse::NeedMore;
      out.ip = IpAddress::v4(a.data());
      break;
    case 4:
      if (!r.bytes(16, a)) return Parse::NeedMore;
      out.ip = IpAddress::v6(a.data());
      break;
    case 3: {
      uint8_t len;
      if (!r.u8(len)) return Parse::NeedMore;
      if (len == 0) {
        why = "empty domain name";
        return Parse::Bad;
      }
      if (!r.bytes(len, a)) return Parse::NeedMore;
      uint16_t port;
      if (!r.be16(port)) return Parse::NeedMore;
      out = Destination::fromHost(asChars(a), port);
      if (!out.valid()) {
        why = "bad domain name";
        return Parse::Bad;
      }
      return Parse::Done;
    }
    default:
      why = "unknown address type " + std::to_string(atyp);
      return Parse::Bad;
  }
  if (!r.be16(out.port)) return Parse::NeedMore;
  return Parse::Done;
}

Parse parseRequest(ByteView in, Request& out, size_t& consumed, std::string& why) {
  ByteReader r(in);
  uint8_t ver, cmd, rsv;
  if (!r.u8(ver)) return Parse::NeedMore;
  if (ver != 5) {
    why = "bad request version";
    return Parse::Bad;
  }
  if (!r.u8(cmd) || !r.u8(rsv)) return Parse::NeedMore;
  out.command = cmd;
  Parse p = parseAddress(r, out.dst, why);
  if (p != Parse::Done) return p;
  consumed = r.offset();
  return Parse::Done;
}

Parse parseRequest4(ByteView in, Request4& out, size_t& consumed, std::string& why) {
  ByteReader r(in);
  uint8_t vn, cd;
  uint16_t port;
  ByteView ip;
  if (!r.u8(vn)) return Parse::NeedMore;
  if (vn != 4) {
    why = "not SOCKS4";
    return Parse::Bad;
  }
  if (!r.u8(cd) || !r.be16(port) || !r.bytes(4, ip)) return Parse::NeedMore;
  out.command = cd;
  // USERID is NUL-terminated; bound it so a client cannot make us buffer forever.
  auto readz = [&](std::string& s) -> Parse {
    while (true) {
      uint8_t c;
      if (!r.u8(c)) return Parse::NeedMore;
      if (c == 0) return Parse::Done;
      if (s.size() >= 255) {
        why = "SOCKS4 field too long";
        return Parse::Bad;
      }
      s.push_back(static_cast<char>(c));
    }
  };
  out.user.clear();
  Parse p = readz(out.user);
  if (p != Parse::Done) return p;
  // SOCKS4a: 0.0.0.x with x != 0 means a host name follows.
  if (ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0) {
    std::string host;
    p = readz(host);
    if (p != Parse::Done) return p;
    if (host.empty()) {
      why = "empty SOCKS4a host";
      return Parse::Bad;
    }
    out.dst = Destination::fromHost(host, port);
  } else {
    out.dst = Destination{};
    out.dst.ip = IpAddress::v4(ip.data());
    out.dst.port = port;
  }
  consumed = r.offset();
  return Parse::Done;
}

void appendAddress(std::string& out, const Destination& d) {
  if (d.isDomain()) {
    out.push_back(3);
    out.push_back(static_cast<char>(d.domain.size() > 255 ? 255 : d.domain.size()));
    out.append(d.domain, 0, 255);
  } else if (d.ip.isV6()) {
    out.push_back(4);
    out.append(reinterpret_cast<const char*>(d.ip.data()), 16);
  } else {
    out.push_back(1);
    uint8_t zero[4] = {0, 0, 0, 0};
    out.append(reinterpret_cast<const char*>(d.ip.isV4() ? d.ip.data() : zero), 4);
  }
  out.push_back(static_cast<char>(d.port >> 8));
  out.push_back(static_cast<char>(d.port & 0xff));
}

std::string reply5(uint8_t code, const Destination& bound) {
  std::string out = {5, static_cast<char>(code), 0};
  appendAddress(out, bound);
  return out;
}

std::string reply4(bool granted) {
  return std::string({0, static_cast<char>(granted ? 0x5a : 0x5b), 0, 0, 0, 0, 0, 0});
}

Parse parseUdpHeader(ByteView in, UdpHeader& out, std::string& why) {
  ByteReader r(in);
  uint16_t rsv;
  uint8_t frag;
  if (!r.be16(rsv) || !r.u8(frag)) {
    why = "short UDP header";
    return Parse::Bad;
  }
  out.frag = frag;
  Parse p = parseAddress(r, out.dst, why);
  if (p == Parse::NeedMore) {
    why = "truncated UDP header";
    return Parse::Bad;
  }
  if (p != Parse::Done) return p;
  out.header_len = r.offset();
  return Parse::Done;
}

std::string udpHeader(const Destination& from) {
  std::string out = {0, 0, 0};
  appendAddress(out, from);
  return out;
}

}  // namespace veer::inbound::socks
