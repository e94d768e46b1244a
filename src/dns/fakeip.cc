#include "dns/fakeip.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "base/bytes.h"
#include "dns/message.h"

namespace veer::dns {
namespace {

constexpr uint8_t kMagic[4] = {'V', 'F', 'I', 'P'};
constexpr uint8_t kVersion = 1;
constexpr size_t kMaxDomain = 1024;

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

void putAddress(std::vector<uint8_t>& out, const IpAddress& ip) {
  out.push_back(static_cast<uint8_t>(ip.family()));
  uint8_t b[16] = {};
  std::memcpy(b, ip.data(), ip.size());
  out.insert(out.end(), b, b + 16);
}

bool getAddress(ByteReader& r, IpAddress& ip) {
  uint8_t fam = 0;
  ByteView b;
  if (!r.u8(fam) || !r.bytes(16, b)) return false;
  if (fam == 4) {
    ip = IpAddress::v4(b.data());
  } else if (fam == 6) {
    ip = IpAddress::v6(b.data());
  } else if (fam == 0) {
    ip = IpAddress();
  } else {
    return false;
  }
  return true;
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

Status FakeIpStore::save(const std::string& path) const {
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  out.push_back(kVersion);
  putAddress(out, v4_.current);
  putAddress(out, v6_.current);
  uint8_t n[4];
  storeBe32(n, static_cast<uint32_t>(by_address_.size()));
  out.insert(out.end(), n, n + 4);
  for (const auto& [ip, domain] : by_address_) {
    putAddress(out, ip);
    uint8_t len[2];
    storeBe16(len, static_cast<uint16_t>(domain.size()));
    out.insert(out.end(), len, len + 2);
    out.insert(out.end(), domain.begin(), domain.end());
  }
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return unexpected(Error("fakeip: open " + tmp + ": " + std::strerror(errno), errno));
  size_t off = 0;
  while (off < out.size()) {
    ssize_t w = ::write(fd, out.data() + off, out.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return unexpected(Error("fakeip: write " + tmp + ": " + std::strerror(e), e));
    }
    off += static_cast<size_t>(w);
  }
  // fsync before rename: otherwise a power cut can leave the new name on an empty file.
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return unexpected(Error("fakeip: rename to " + path + ": " + std::strerror(e), e));
  }
  return {};
}

Status FakeIpStore::load(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    if (errno == ENOENT) return {};
    return unexpected(Error("fakeip: open " + path + ": " + std::strerror(errno), errno));
  }
  std::vector<uint8_t> data;
  uint8_t buf[4096];
  size_t got;
  // The file holds at most a few MB even for a full /15; refuse anything far larger.
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0 && data.size() < (64u << 20)) {
    data.insert(data.end(), buf, buf + got);
  }
  std::fclose(f);
  auto bad = [&](const char* why) {
    return unexpected(Error("fakeip: " + path + ": " + why));
  };
  ByteReader r(data);
  ByteView magic;
  uint8_t version = 0;
  if (!r.bytes(4, magic) || std::memcmp(magic.data(), kMagic, 4) != 0) return bad("not a fakeip file");
  if (!r.u8(version) || version != kVersion) return bad("unsupported version");
  IpAddress cur4, cur6;
  uint32_t count = 0;
  if (!getAddress(r, cur4) || !getAddress(r, cur6) || !r.be32(count)) return bad("truncated");
  Pool v4{v4_.range, {}, {}}, v6{v6_.range, {}, {}};
  std::unordered_map<IpAddress, std::string, IpAddressHash> by_address;
  for (uint32_t i = 0; i < count; ++i) {
    IpAddress ip;
    uint16_t len = 0;
    ByteView name;
    if (!getAddress(r, ip) || !r.be16(len) || len > kMaxDomain || !r.bytes(len, name)) {
      return bad("truncated entry");
    }
    Pool& p = ip.isV6() ? v6 : v4;
    if (!p.range || !p.range->contains(ip)) continue;
    std::string domain(asChars(name));
    if (p.by_domain.count(domain) || by_address.count(ip)) continue;
    p.by_domain.emplace(domain, ip);
    by_address.emplace(ip, std::move(domain));
  }
  v4_ = std::move(v4);
  v6_ = std::move(v6);
  by_address_ = std::move(by_address);
  resetCurrent(v4_);
  resetCurrent(v6_);
  if (v4_.range && v4_.range->contains(cur4)) v4_.current = cur4;
  if (v6_.range && v6_.range->contains(cur6)) v6_.current = cur6;
  dirty_ = false;
  return {};
}

}  // namespace veer::dns
