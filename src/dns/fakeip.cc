#include "dns/fakeip.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "base/bytes.h"
#include "dns/message.h"

namespace veer::dns {
namespace {

IpAddress fromBytes(const uint8_t* b, bool v6) { return v6 ? IpAddress::v6(b) : IpAddress::v4(b); }

// Big-endian increment of the address bytes; wraps at the top of the family's space.
IpAddress nextAddress(const IpAddress& ip) {
  uint8_t b[16];
  std::memcpy(b, ip.data(), ip.size());
  for (size_t i = ip.size(); i-- > 0;) {
    if (++b[i] != 0) break;
  }
  return fromBytes(b, ip.isV6());
}

}  // namespace

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  std::string_view bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 3) return std::nullopt;
  unsigned v = 0;
  for (char c : bits) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > ip->size() * 8) return std::nullopt;
  uint8_t b[16] = {};
  std::memcpy(b, ip->data(), ip->size());
  for (size_t i = 0; i < ip->size(); ++i) {
    size_t lo = i * 8;
    if (lo >= v) {
      b[i] = 0;
    } else if (v - lo < 8) {
      b[i] = static_cast<uint8_t>(b[i] & (0xff00u >> (v - lo)));
    }
  }
  return IpPrefix{fromBytes(b, ip->isV6()), static_cast<uint8_t>(v)};
}

bool IpPrefix::contains(const IpAddress& ip) const {
  if (ip.family() != address.family()) return false;
  for (size_t i = 0; i < ip.size(); ++i) {
    size_t lo = i * 8;
    if (lo >= bits) break;
    uint8_t mask = bits - lo >= 8 ? 0xff : static_cast<uint8_t>(0xff00u >> (bits - lo));
    if ((ip.data()[i] & mask) != (address.data()[i] & mask)) return false;
  }
  return true;
}

std::string IpPrefix::toString() const { return address.toString() + "/" + std::to_string(bits); }

size_t IpAddressHash::operator()(const IpAddress& ip) const {
  size_t h = static_cast<size_t>(ip.family());
  for (size_t i = 0; i < ip.size(); ++i) h = h * 131 + ip.data()[i];
  return h;
}

FakeIpStore::FakeIpStore(const Options& options) : options_(options) {
  v4_.range = options.inet4_range;
  v6_.range = options.inet6_range;
  resetCurrent(v4_);
  resetCurrent(v6_);
}

void FakeIpStore::resetCurrent(Pool& p) {
  // As sing-box: the first address handed out is network+2 (network+1 is usually the gateway
  // address the firewall uses for the range).
  if (p.range) p.current = nextAddress(p.range->address);
}

Result<FakeIpStore> FakeIpStore::create(const Options& options) {
  if (options.inet4_range) {
    if (!options.inet4_range->address.isV4()) return unexpected("inet4_range is not IPv4");
    if (options.inet4_range->bits > 30) return unexpected("inet4_range is too small");
  }
  if (options.inet6_range) {
    if (!options.inet6_range->address.isV6()) return unexpected("inet6_range is not IPv6");
    if (options.inet6_range->bits > 126) return unexpected("inet6_range is too small");
  }
  return FakeIpStore(options);
}

std::optional<IpAddress> FakeIpStore::allocate(std::string_view domain, bool v6) {
  Pool& p = pool(v6);
  if (!p.range) return std::nullopt;
  std::string name = canonicalName(domain);
  if (auto it = p.by_domain.find(name); it != p.by_domain.end()) return it->second;
  IpAddress next = nextAddress(p.current);
  if (!p.range->contains(next)) next = nextAddress(nextAddress(p.range->address));
  // Wrap-around reuses the oldest addresses: the domain that held it loses its mapping.
  if (auto old = by_address_.find(next); old != by_address_.end()) {
    p.by_domain.erase(old->second);
    by_address_.erase(old);
  }
  p.current = next;
  p.by_domain.emplace(name, next);
  by_address_.emplace(next, std::move(name));
  dirty_ = true;
  return next;
}

std::optional<std::string> FakeIpStore::lookupDomain(const IpAddress& ip) const {
  auto it = by_address_.find(ip.unmap());
  if (it == by_address_.end()) return std::nullopt;
  return it->second;
}

std::optional<IpAddress> FakeIpStore::lookupAddress(std::string_view domain, bool v6) const {
  const Pool& p = pool(v6);
  auto it = p.by_domain.find(canonicalName(domain));
  if (it == p.by_domain.end()) return std::nullopt;
  return it->second;
}

bool FakeIpStore::inRange(const IpAddress& ip) const {
  IpAddress u = ip.unmap();
  return (v4_.range && v4_.range->contains(u)) || (v6_.range && v6_.range->contains(u));
}

namespace {

void putRaw(std::vector<uint8_t>& out, const IpAddress& ip) {
  out.insert(out.end(), ip.data(), ip.data() + ip.size());
}

bool sameRange(const std::optional<IpPrefix>& a, const std::optional<IpPrefix>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || (a->address == b->address && a->bits == b->bits);
}

}  // namespace

bool FakeIpStore::sameRanges(const FakeIpStore& other) const {
  return sameRange(v4_.range, other.v4_.range) && sameRange(v6_.range, other.v6_.range);
}

std::vector<uint8_t> FakeIpStore::serialize() const {
  std::vector<uint8_t> out;
  out.push_back(static_cast<uint8_t>((v4_.range ? 1 : 0) | (v6_.range ? 2 : 0)));
  for (const Pool* p : {&v4_, &v6_}) {
    if (!p->range) continue;
    putRaw(out, p->range->address);
    out.push_back(p->range->bits);
    putRaw(out, p->current);
  }
  // Names longer than 253 characters (escaped labels) are not kept: they are not worth a
  // wider length field.
  size_t count_at = out.size();
  uint32_t count = 0;
  out.resize(out.size() + 4);
  for (const auto& [ip, domain] : by_address_) {
    if (domain.empty() || domain.size() > 253) continue;
    ++count;
    out.push_back(ip.isV6() ? 6 : 4);
    putRaw(out, ip);
    out.push_back(static_cast<uint8_t>(domain.size()));
    out.insert(out.end(), domain.begin(), domain.end());
  }
  storeBe32(out.data() + count_at, count);
  return out;
}

Status FakeIpStore::restore(ByteView body, size_t base_offset) {
  ByteReader r(body);
  auto bad = [&](size_t at, const std::string& why) {
    return unexpected(Error("offset " + std::to_string(base_offset + at) + ": FakeIP table: " + why));
  };
  uint8_t flags = 0;
  if (!r.u8(flags)) return bad(0, "empty");
  if (flags & ~3u) return bad(0, "unknown flags");
  std::optional<IpPrefix> file_range[2];
  IpAddress file_current[2];
  for (int fam = 0; fam < 2; ++fam) {
    if (!(flags & (1u << fam))) continue;
    size_t len = fam == 0 ? 4 : 16;
    size_t at = r.offset();
    ByteView addr, cur;
    uint8_t bits = 0;
    if (!r.bytes(len, addr) || !r.u8(bits) || !r.bytes(len, cur)) return bad(at, "truncated range");
    if (bits > len * 8) return bad(at + len, "prefix length out of range");
    file_range[fam] = IpPrefix{fromBytes(addr.data(), fam == 1), bits};
    file_current[fam] = fromBytes(cur.data(), fam == 1);
  }
  uint32_t count = 0;
  if (!r.be32(count)) return bad(r.offset(), "truncated entry count");
  // Each entry takes at least 7 bytes: refuse counts the body cannot hold before reserving.
  if (count > r.remaining() / 7) return bad(r.offset() - 4, "entry count larger than the data");
  Pool v4{v4_.range, {}, {}}, v6{v6_.range, {}, {}};
  std::unordered_map<IpAddress, std::string, IpAddressHash> by_address;
  // Sized once: growing three tables step by step was half the load time of a large table.
  by_address.reserve(count);
  if (v4.range) v4.by_domain.reserve(count);
  if (v6.range) v6.by_domain.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    size_t at = r.offset();
    uint8_t fam = 0, len = 0;
    ByteView addr, name;
    if (!r.u8(fam)) return bad(at, "truncated entry");
    if (fam != 4 && fam != 6) return bad(at, "bad address family " + std::to_string(fam));
    if (!r.bytes(fam == 4 ? 4 : 16, addr) || !r.u8(len) || !r.bytes(len, name)) {
      return bad(at, "truncated entry");
    }
    if (len == 0 || len > 253) return bad(at, "bad name length");
    std::string domain(asChars(name));
    if (canonicalName(domain) != domain) return bad(at, "name is not in canonical form");
    IpAddress ip = fromBytes(addr.data(), fam == 6);
    Pool& p = fam == 6 ? v6 : v4;
    if (!p.range || !p.range->contains(ip)) continue;  // the range changed: drop
    if (p.by_domain.count(domain) || by_address.count(ip)) return bad(at, "duplicate entry");
    p.by_domain.emplace(domain, ip);
    by_address.emplace(ip, std::move(domain));
  }
  if (!r.empty()) return bad(r.offset(), "trailing bytes");
  v4_ = std::move(v4);
  v6_ = std::move(v6);
  by_address_ = std::move(by_address);
  resetCurrent(v4_);
  resetCurrent(v6_);
  if (v4_.range && file_range[0] && v4_.range->contains(file_current[0])) v4_.current = file_current[0];
  if (v6_.range && file_range[1] && v6_.range->contains(file_current[1])) v6_.current = file_current[1];
  dirty_ = false;
  return {};
}

}  // namespace veer::dns
