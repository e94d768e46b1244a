#include "rules/cidr_set.h"

#include <algorithm>
#include <charconv>

namespace veer::rules {

CidrSet::U128 CidrSet::toU128(const IpAddress& ip) {
  U128 v;
  const uint8_t* b = ip.data();
  for (int i = 0; i < 8; ++i) v.hi = (v.hi << 8) | b[i];
  for (int i = 8; i < 16; ++i) v.lo = (v.lo << 8) | b[i];
  return v;
}

bool CidrSet::parsePrefix(std::string_view text, IpAddress* first, IpAddress* last) {
  size_t slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return false;
  int bits = ip->isV4() ? 32 : 128;
  int len = bits;
  if (slash != std::string_view::npos) {
    std::string_view n = text.substr(slash + 1);
    auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), len);
    if (n.empty() || ec != std::errc() || p != n.data() + n.size() || len < 0 || len > bits) {
      return false;
    }
  }
  // An IPv4-mapped prefix (::ffff:a.b.c.d/96+n) is the IPv4 prefix a.b.c.d/n.
  if (ip->isV6() && len >= 96 && ip->unmap().isV4()) {
    ip = ip->unmap();
    len -= 96;
    bits = 32;
  }
  uint8_t lo[16], hi[16];
  size_t size = ip->size();
  for (size_t i = 0; i < size; ++i) {
    int keep = std::clamp(len - static_cast<int>(i) * 8, 0, 8);
    uint8_t mask = keep == 0 ? 0 : static_cast<uint8_t>(0xff << (8 - keep));
    lo[i] = ip->data()[i] & mask;
    hi[i] = lo[i] | static_cast<uint8_t>(~mask);
  }
  *first = ip->isV4() ? IpAddress::v4(lo) : IpAddress::v6(lo);
  *last = ip->isV4() ? IpAddress::v4(hi) : IpAddress::v6(hi);
  return true;
}

Status CidrSet::add(std::string_view text) {
  IpAddress first, last;
  if (!parsePrefix(text, &first, &last)) {
    return unexpected("invalid IP prefix \"" + std::string(text) + "\"");
  }
  addRange(first, last);
  return {};
}

void CidrSet::addRange(const IpAddress& first, const IpAddress& last) {
  if (first.isV4()) {
    v4_.push_back(V4{first.v4HostOrder(), last.v4HostOrder()});
  } else {
    v6_.push_back(V6{toU128(first), toU128(last)});
  }
}

namespace {
template <typename R, typename Succ>
void mergeRanges(std::vector<R>& v, Succ succ) {
  std::sort(v.begin(), v.end(), [](const R& a, const R& b) { return a.lo < b.lo; });
  std::vector<R> out;
  for (const R& r : v) {
    // Adjacent ranges merge too (hi + 1 == lo), unless hi is the maximum value.
    if (!out.empty() && (r.lo <= out.back().hi || succ(out.back().hi, r.lo))) {
      if (out.back().hi < r.hi) out.back().hi = r.hi;
    } else {
      out.push_back(r);
    }
  }
  out.shrink_to_fit();
  v = std::move(out);
}
}  // namespace

void CidrSet::finalize() {
  mergeRanges(v4_, [](uint32_t a, uint32_t b) { return a != UINT32_MAX && a + 1 == b; });
  mergeRanges(v6_, [](const U128& a, const U128& b) {
    if (a.lo != UINT64_MAX) return a.hi == b.hi && a.lo + 1 == b.lo;
    return a.hi != UINT64_MAX && a.hi + 1 == b.hi && b.lo == 0;
  });
}

bool CidrSet::contains(const IpAddress& addr) const {
  IpAddress ip = addr.unmap();
  if (ip.isV4()) {
    uint32_t v = ip.v4HostOrder();
    auto it = std::upper_bound(v4_.begin(), v4_.end(), v, [](uint32_t x, const V4& r) { return x < r.lo; });
    return it != v4_.begin() && v <= std::prev(it)->hi;
  }
  if (ip.isV6()) {
    U128 v = toU128(ip);
    auto it = std::upper_bound(v6_.begin(), v6_.end(), v, [](const U128& x, const V6& r) { return x < r.lo; });
    return it != v6_.begin() && v <= std::prev(it)->hi;
  }
  return false;
}

void PortSet::add(uint16_t lo, uint16_t hi) {
  if (lo > hi) std::swap(lo, hi);
  ranges_.push_back(Range{lo, hi});
}

bool PortSet::parseRange(std::string_view text, uint16_t* lo, uint16_t* hi) {
  size_t sep = text.find(':');
  if (sep == std::string_view::npos) sep = text.find('-');
  auto num = [](std::string_view s, uint16_t dflt, uint16_t* out) {
    if (s.empty()) {
      *out = dflt;
      return true;
    }
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return false;
    *out = static_cast<uint16_t>(v);
    return true;
  };
  if (sep == std::string_view::npos) return false;
  std::string_view a = text.substr(0, sep), b = text.substr(sep + 1);
  if (a.empty() && b.empty()) return false;
  if (!num(a, 0, lo) || !num(b, 65535, hi)) return false;
  return *lo <= *hi;
}

void PortSet::finalize() {
  mergeRanges(ranges_, [](uint16_t a, uint16_t b) { return a != 65535 && a + 1 == b; });
}

bool PortSet::contains(uint16_t port) const {
  for (const Range& r : ranges_) {
    if (port < r.lo) return false;
    if (port <= r.hi) return true;
  }
  return false;
}

std::string PortSet::toString() const {
  std::string out;
  for (const Range& r : ranges_) {
    if (!out.empty()) out += ' ';
    out += std::to_string(r.lo);
    if (r.hi != r.lo) {
      out += '-';
      out += std::to_string(r.hi);
    }
  }
  return out;
}

}  // namespace veer::rules
