#include "rules/succinct_set.h"

#include <algorithm>
#include <set>
#include <unordered_set>

namespace veer::rules {
namespace {

constexpr char kPrefixLabel = '\r';  // marks a ".x" suffix (strict subdomains)
constexpr char kRootLabel = '\n';    // marks an "x" suffix (x and its subdomains), v2+

void setBit(std::vector<uint64_t>& bm, size_t i) {
  while ((i >> 6) >= bm.size()) bm.push_back(0);
  bm[i >> 6] |= uint64_t{1} << (i & 63);
}
void growTo(std::vector<uint64_t>& bm, size_t i) {
  while ((i >> 6) >= bm.size()) bm.push_back(0);
}
bool getBit(const std::vector<uint64_t>& bm, size_t i) {
  size_t w = i >> 6;
  return w < bm.size() && ((bm[w] >> (i & 63)) & 1) != 0;
}

size_t utf8SeqLen(std::string_view s, size_t i) {
  auto c = static_cast<uint8_t>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (n == 1 || i + n > s.size()) return 1;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<uint8_t>(s[i + k]) & 0xc0) != 0x80) return 1;
  }
  return n;
}

}  // namespace

std::string reverseDomainKey(std::string_view s) {
  std::string out(s.size(), '\0');
  size_t i = 0;
  while (i < s.size()) {
    size_t n = utf8SeqLen(s, i);
    // The code point keeps its byte order; only code points are reversed.
    std::copy(s.begin() + i, s.begin() + i + n, out.end() - i - n);
    i += n;
  }
  return out;
}

SuccinctSet buildSuccinctSet(const std::vector<std::string>& keys) {
  SuccinctSet ss;
  if (keys.empty()) return ss;
  struct Elt {
    size_t s, e, col;
  };
  std::vector<Elt> queue;
  queue.push_back({0, keys.size(), 0});
  size_t lidx = 0;
  for (size_t i = 0; i < queue.size(); ++i) {
    Elt elt = queue[i];
    if (elt.col == keys[elt.s].size()) {
      ++elt.s;
      setBit(ss.leaves, i);
    }
    for (size_t j = elt.s; j < elt.e;) {
      size_t from = j;
      char c = keys[from][elt.col];
      while (j < elt.e && keys[j][elt.col] == c) ++j;
      queue.push_back({from, j, elt.col + 1});
      ss.labels.push_back(static_cast<uint8_t>(c));
      growTo(ss.label_bitmap, lidx);
      ++lidx;
    }
    setBit(ss.label_bitmap, lidx);
    ++lidx;
  }
  return ss;
}

Result<std::vector<std::string>> succinctKeys(const SuccinctSet& set, size_t max_total_bytes) {
  // Nodes are numbered in BFS order and the bitmap lists them in that order, so one
  // sequential scan recovers every node's parent, label and depth; the keys are then rebuilt
  // by walking parents. This needs no rank/select index and visits each bit once. Every child
  // consumes one label, so the node arrays are bounded by the label count.
  std::vector<uint32_t> parent{0};
  std::vector<uint8_t> label{0};
  std::vector<uint16_t> depth{0};
  size_t node = 0;
  const size_t nbits = set.label_bitmap.size() * 64;
  for (size_t idx = 0; idx < nbits && node < parent.size(); ++idx) {
    if (getBit(set.label_bitmap, idx)) {
      ++node;
      continue;
    }
    size_t li = idx - node;
    if (li >= set.labels.size()) return unexpected("domain set: label index out of range");
    if (depth[node] >= kMaxSuccinctKeyLen) return unexpected("domain set: key too long");
    parent.push_back(static_cast<uint32_t>(node));
    label.push_back(set.labels[li]);
    depth.push_back(static_cast<uint16_t>(depth[node] + 1));
  }
  if (node < parent.size()) return unexpected("domain set: bitmap ends inside a node");
  size_t total = 0;
  for (size_t n = 0; n < parent.size(); ++n) {
    if (!getBit(set.leaves, n)) continue;
    total += depth[n] + sizeof(std::string);
    if (total > max_total_bytes) return unexpected("domain set: keys exceed the size limit");
  }
  std::vector<std::string> keys;
  for (size_t n = 0; n < parent.size(); ++n) {
    if (!getBit(set.leaves, n)) continue;
    std::string key(depth[n], '\0');
    size_t pos = key.size();
    for (size_t k = n; k != 0; k = parent[k]) key[--pos] = static_cast<char>(label[k]);
    keys.push_back(std::move(key));
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

bool readSuccinctSet(ByteReader& in, SuccinctSet& out) {
  uint8_t version;
  if (!in.u8(version)) return false;
  auto words = [&](std::vector<uint64_t>& v) {
    uint64_t n;
    if (!in.uvarint(n) || n > in.remaining() / 8) return false;
    v.resize(static_cast<size_t>(n));
    for (auto& w : v) in.be64(w);
    return true;
  };
  if (!words(out.leaves) || !words(out.label_bitmap)) return false;
  uint64_t n;
  ByteView b;
  if (!in.uvarint(n) || n > in.remaining() || !in.bytes(static_cast<size_t>(n), b)) return false;
  out.labels.assign(b.begin(), b.end());
  return true;
}

void writeSuccinctSet(const SuccinctSet& set, std::vector<uint8_t>& out) {
  auto uv = [&](uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<uint8_t>(v));
  };
  out.push_back(0);
  for (const auto* v : {&set.leaves, &set.label_bitmap}) {
    uv(v->size());
    for (uint64_t w : *v) {
      uint8_t b[8];
      storeBe64(b, w);
      out.insert(out.end(), b, b + 8);
    }
  }
  uv(set.labels.size());
  out.insert(out.end(), set.labels.begin(), set.labels.end());
}

Result<std::vector<std::string>> domainSetKeys(const std::vector<std::string>& domains,
                                                const std::vector<std::string>& suffixes,
                                                bool legacy) {
  std::vector<std::string> keys;
  keys.reserve(domains.size() + 2 * suffixes.size());
  // One "seen" set across both lists, as sing-box: a domain equal to a suffix is dropped
  // because the suffix already covers it.
  std::unordered_set<std::string> seen;
  for (const auto& s : suffixes) {
    if (s.empty()) return unexpected("empty domain_suffix");
    if (!seen.insert(s).second) continue;
    if (s[0] == '.') {
      keys.push_back(reverseDomainKey(std::string(1, kPrefixLabel) + s));
    } else if (legacy) {
      keys.push_back(reverseDomainKey(s));
      std::string dotted = "." + s;
      if (seen.insert(dotted).second) {
        keys.push_back(reverseDomainKey(std::string(1, kPrefixLabel) + dotted));
      }
    } else {
      keys.push_back(reverseDomainKey(std::string(1, kRootLabel) + s));
    }
  }
  for (const auto& d : domains) {
    if (d.empty()) return unexpected("empty domain");
    if (!seen.insert(d).second) continue;
    keys.push_back(reverseDomainKey(d));
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

Status dumpDomainKeys(const std::vector<std::string>& keys, std::vector<std::string>& domains,
                      std::vector<std::string>& suffixes) {
  std::set<std::string> domain_set;
  std::vector<std::string> prefixes;
  for (const auto& k : keys) {
    std::string key = reverseDomainKey(k);
    if (key.empty()) return unexpected("domain set holds an empty key");
    if (key[0] == kPrefixLabel) {
      prefixes.push_back(key.substr(1));
    } else if (key[0] == kRootLabel) {
      suffixes.push_back(key.substr(1));
    } else {
      domain_set.insert(std::move(key));
    }
  }
  for (auto& p : prefixes) {
    if (p.size() > 1 && p[0] == '.') {
      auto it = domain_set.find(p.substr(1));
      if (it != domain_set.end()) {
        // Version 1 stored suffix "x" as "x" plus ".x"; fold the pair back into "x".
        suffixes.push_back(*it);
        domain_set.erase(it);
        continue;
      }
    }
    suffixes.push_back(std::move(p));
  }
  domains.assign(domain_set.begin(), domain_set.end());
  std::sort(suffixes.begin(), suffixes.end());
  return {};
}

}  // namespace veer::rules
