#include "rules/domain_set.h"

#include <cstring>

namespace veer::rules {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

size_t tableSize(size_t n) {
  // Load factor at most 1/2 keeps probe sequences short.
  size_t size = 8;
  while (size < n * 2) size <<= 1;
  return size;
}

}  // namespace

void DomainSet::add(std::string_view value, Kind kind, uint32_t tag) {
  if (kind == Kind::Suffix && !value.empty() && value.front() == '.') {
    value.remove_prefix(1);
    kind = Kind::SubdomainOnly;
  }
  if (!value.empty() && value.back() == '.') value.remove_suffix(1);
  // DNS names are at most 253 bytes; anything longer can never match a host.
  if (value.empty() || value.size() > 0xffff) return;
  Entry e{static_cast<uint32_t>(arena_.size()), 0, tag, static_cast<uint16_t>(value.size()),
          static_cast<uint8_t>(kind)};
  for (char c : value) arena_.push_back(lower(c));
  e.hash = hashOf(view(e));
  entries_.push_back(e);
}

uint32_t DomainSet::hashOf(std::string_view s) {
  // FNV-1a: short keys, good enough spread, and cheap on 32-bit MIPS.
  uint32_t h = kHashSeed;
  for (size_t i = s.size(); i-- > 0;) h = hashStep(h, static_cast<unsigned char>(s[i]));
  return h;
}

int64_t DomainSet::find(const std::vector<uint32_t>& table, std::string_view key, uint32_t h) const {
  if (table.empty()) return -1;
  size_t mask = table.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    uint32_t slot = table[i];
    if (slot == 0) return -1;
    const Entry& e = entries_[slot - 1];
    if (e.hash == h && e.length == key.size() &&
        std::memcmp(arena_.data() + e.offset, key.data(), key.size()) == 0) {
      return slot - 1;
    }
  }
}

void DomainSet::insert(std::vector<uint32_t>& table, uint32_t index) {
  size_t mask = table.size() - 1;
  for (size_t i = entries_[index].hash & mask;; i = (i + 1) & mask) {
    if (table[i] == 0) {
      table[i] = index + 1;
      return;
    }
  }
}

void DomainSet::finalize() {
  // Deduplicate per table while building it; a suffix given both as "x.com" and ".x.com"
  // becomes one entry that also matches the name itself.
  std::vector<Entry> kept;
  kept.reserve(entries_.size());
  std::vector<Entry> all = std::move(entries_);
  entries_.clear();
  size_t n_exact = 0, n_suffix = 0;
  for (const auto& e : all) (e.kind == uint8_t(Kind::Exact) ? n_exact : n_suffix)++;
  exact_.assign(n_exact ? tableSize(n_exact) : 0, 0);
  suffix_.assign(n_suffix ? tableSize(n_suffix) : 0, 0);
  for (Entry e : all) {
    bool is_exact = e.kind == uint8_t(Kind::Exact);
    e.self = e.kind == uint8_t(Kind::Suffix);
    auto& table = is_exact ? exact_ : suffix_;
    int64_t existing = find(table, view(e), e.hash);
    if (existing >= 0) {
      Entry& old = entries_[existing];
      if (e.self && !old.self) {
        old.self = true;
        old.kind = e.kind;
        old.tag = e.tag;
      }
      continue;
    }
    entries_.push_back(e);
    insert(table, static_cast<uint32_t>(entries_.size() - 1));
  }
  entries_.shrink_to_fit();
  // Strings of dropped duplicates stay in the arena; compacting is not worth a second copy.
  arena_.shrink_to_fit();
}

bool DomainSet::match(std::string_view host, Hit* hit) const {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > 0xffff) return false;
  auto report = [&](int64_t idx) {
    if (hit != nullptr) {
      const Entry& e = entries_[idx];
      *hit = Hit{view(e), static_cast<Kind>(e.kind), e.tag};
    }
    return true;
  };
  // One right-to-left pass: at each label boundary the running hash is the hash of the suffix
  // that starts there. Suffix entries match proper subdomains ("a.x.com" for "x.com"); the
  // whole host is probed in the exact table and in the suffix table (entries marked `self`).
  // Shorter suffixes are probed first, so the result is the same as probing longest-first
  // unless two entries nest; either one is a correct match.
  uint32_t h = kHashSeed;
  for (size_t i = host.size(); i-- > 0;) {
    h = hashStep(h, static_cast<unsigned char>(host[i]));
    if (i > 0 && host[i - 1] == '.' && !suffix_.empty()) {
      int64_t idx = find(suffix_, host.substr(i), h);
      if (idx >= 0) return report(idx);
    }
  }
  int64_t idx = find(exact_, host, h);
  if (idx >= 0) return report(idx);
  idx = find(suffix_, host, h);
  if (idx >= 0 && entries_[idx].self) return report(idx);
  return false;
}

size_t DomainSet::memoryBytes() const {
  return arena_.capacity() + entries_.capacity() * sizeof(Entry) +
         (exact_.capacity() + suffix_.capacity()) * sizeof(uint32_t);
}

}  // namespace veer::rules
