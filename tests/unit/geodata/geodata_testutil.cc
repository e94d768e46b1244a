#include "geodata_testutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <re2/re2.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

namespace veer::test {

std::vector<uint8_t> readBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<std::string> listFiles(const std::string& dir, const std::string& ext) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* de = readdir(d)) {
      std::string n = de->d_name;
      if (n.size() > ext.size() && n.compare(n.size() - ext.size(), ext.size(), ext) == 0) {
        out.push_back(dir + "/" + n);
      }
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
bool suffixMatch(const std::string& pat, const std::string& host) {
  if (!pat.empty() && pat[0] == '.') {
    return host.size() > pat.size() && host.compare(host.size() - pat.size(), pat.size(), pat) == 0;
  }
  if (host == pat) return true;
  std::string dotted = "." + pat;
  return host.size() > dotted.size() &&
         host.compare(host.size() - dotted.size(), dotted.size(), dotted) == 0;
}
bool regexSearch(const std::string& re, const std::string& host) {
  RE2 r(re, RE2::Quiet);
  return r.ok() && RE2::PartialMatch(host, r);
}
}  // namespace

bool refMatchDomain(const rules::RuleSpec& r, const std::string& host) {
  for (const auto& d : r.domain) {
    if (d == host) return true;
  }
  for (const auto& s : r.domain_suffix) {
    if (suffixMatch(s, host)) return true;
  }
  for (const auto& k : r.domain_keyword) {
    if (host.find(k) != std::string::npos) return true;
  }
  for (const auto& re : r.domain_regex) {
    if (regexSearch(re, host)) return true;
  }
  return false;
}

bool refMatchIp(const rules::RuleSpec& r, const IpAddress& ip) {
  for (const auto& c : r.ip_cidr) {
    std::string addr = c;
    int bits = -1;
    if (auto slash = c.find('/'); slash != std::string::npos) {
      addr = c.substr(0, slash);
      bits = std::stoi(c.substr(slash + 1));
    }
    uint8_t b[16];
    bool v6 = addr.find(':') != std::string::npos;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, addr.c_str(), b) != 1) continue;
    if (v6 != ip.isV6()) continue;
    size_t n = v6 ? 16 : 4;
    if (bits < 0) bits = static_cast<int>(n * 8);
    bool ok = true;
    for (int i = 0; i < bits && ok; ++i) {
      int byte = i / 8, sh = 7 - i % 8;
      ok = ((b[byte] >> sh) & 1) == ((ip.data()[byte] >> sh) & 1);
    }
    if (ok) return true;
  }
  return false;
}

bool refMatchAny(const std::vector<rules::RuleSpec>& rs, const std::string& host,
                 const std::optional<IpAddress>& ip) {
  for (const auto& r : rs) {
    if (!host.empty() && refMatchDomain(r, host)) return true;
    if (ip && refMatchIp(r, *ip)) return true;
  }
  return false;
}

bool refMatchGeosite(const std::vector<rules::GeositeItem>& items, const std::string& host) {
  using T = rules::GeositeItem::Type;
  for (const auto& it : items) {
    switch (it.type) {
      case T::Domain:
        if (it.value == host) return true;
        break;
      case T::Suffix:
        if (suffixMatch(it.value, host)) return true;
        break;
      case T::Keyword:
        if (host.find(it.value) != std::string::npos) return true;
        break;
      case T::Regex:
        if (regexSearch(it.value, host)) return true;
        break;
    }
  }
  return false;
}

}  // namespace veer::test
