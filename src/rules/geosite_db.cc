#include "rules/geosite_db.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace veer::rules {

Result<std::unique_ptr<GeositeDb>> GeositeDb::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return unexpected(Error(path + ": " + std::strerror(errno), errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return unexpected(Error(path + ": " + std::strerror(e), e));
  }
  std::unique_ptr<GeositeDb> db(new GeositeDb());
  db->name_ = path;
  if (st.st_size > 0) {
    void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return unexpected(Error(path + ": mmap: " + std::strerror(e), e));
    }
    db->map_ = p;
    db->map_len_ = static_cast<size_t>(st.st_size);
    db->data_ = ByteView(static_cast<const uint8_t*>(p), db->map_len_);
  }
  ::close(fd);
  if (auto s = db->index(); !s) return unexpected(s.error());
  return db;
}

Result<std::unique_ptr<GeositeDb>> GeositeDb::fromBytes(std::vector<uint8_t> data,
                                                        const std::string& name) {
  std::unique_ptr<GeositeDb> db(new GeositeDb());
  db->name_ = name;
  db->owned_ = std::move(data);
  db->data_ = ByteView(db->owned_);
  if (auto s = db->index(); !s) return unexpected(s.error());
  return db;
}

GeositeDb::~GeositeDb() {
  if (map_) munmap(map_, map_len_);
}

Status GeositeDb::index() {
  ByteReader in(data_);
  auto fail = [&](const std::string& msg) {
    return unexpected(name_ + ": offset " + std::to_string(in.offset()) + ": " + msg);
  };
  uint8_t version;
  if (!in.u8(version)) return fail("empty file");
  if (version != 0) return fail("unknown geosite.db version " + std::to_string(version));
  uint64_t n;
  if (!in.uvarint(n)) return fail("truncated code count");
  // An index entry is at least 3 bytes.
  if (n > in.remaining() / 3) return fail("code count " + std::to_string(n) + " exceeds the file");
  std::vector<std::pair<uint64_t, uint64_t>> raw;
  entries_.reserve(static_cast<size_t>(n));
  for (uint64_t k = 0; k < n; ++k) {
    uint64_t len, off, cnt;
    ByteView code;
    if (!in.uvarint(len) || len > in.remaining() || !in.bytes(static_cast<size_t>(len), code)) {
      return fail("truncated code name");
    }
    if (!in.uvarint(off) || !in.uvarint(cnt)) return fail("truncated index entry");
    entries_.push_back({asChars(code), 0, 0});
    raw.emplace_back(off, cnt);
  }
  const size_t base = in.offset();
  const size_t content = data_.size() - base;
  for (size_t k = 0; k < entries_.size(); ++k) {
    auto [off, cnt] = raw[k];
    // An item is at least 2 bytes (type and an empty string's length).
    if (off > content || cnt > (content - off) / 2) {
      return unexpected(name_ + ": code \"" + std::string(entries_[k].code) + "\": offset " +
                        std::to_string(off) + " / count " + std::to_string(cnt) +
                        " outside the file");
    }
    entries_[k].offset = base + static_cast<size_t>(off);
    entries_[k].count = static_cast<size_t>(cnt);
  }
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.code < b.code; });
  for (size_t k = 1; k < entries_.size(); ++k) {
    if (entries_[k].code == entries_[k - 1].code) {
      return unexpected(name_ + ": duplicate code \"" + std::string(entries_[k].code) + "\"");
    }
  }
  return {};
}

const GeositeDb::Entry* GeositeDb::find(std::string_view code) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), code,
                             [](const Entry& e, std::string_view c) { return e.code < c; });
  if (it == entries_.end() || it->code != code) return nullptr;
  return &*it;
}

Result<std::vector<GeositeItem>> GeositeDb::load(std::string_view code) const {
  const Entry* e = find(code);
  if (!e) return unexpected(name_ + ": geosite code \"" + std::string(code) + "\" not found");
  ByteReader in(data_.subspan(e->offset));
  std::vector<GeositeItem> items;
  items.reserve(e->count);
  for (size_t k = 0; k < e->count; ++k) {
    uint8_t type;
    uint64_t len;
    ByteView v;
    if (!in.u8(type) || !in.uvarint(len) || len > in.remaining() ||
        !in.bytes(static_cast<size_t>(len), v)) {
      return unexpected(name_ + ": code \"" + std::string(code) + "\": truncated item at offset " +
                        std::to_string(e->offset + in.offset()));
    }
    if (type > 3) {
      return unexpected(name_ + ": code \"" + std::string(code) + "\": unknown item type " +
                        std::to_string(type) + " at offset " +
                        std::to_string(e->offset + in.offset()));
    }
    items.push_back({static_cast<GeositeItem::Type>(type), std::string(asChars(v))});
  }
  return items;
}

bool GeositeDb::has(std::string_view code) const { return find(code) != nullptr; }

std::vector<std::string> GeositeDb::codes() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& e : entries_) out.emplace_back(e.code);
  return out;
}

size_t GeositeDb::itemCount(std::string_view code) const {
  const Entry* e = find(code);
  return e ? e->count : 0;
}

Result<GeositeMap> GeositeDb::loadAll() const {
  GeositeMap out;
  for (const auto& e : entries_) {
    auto items = load(e.code);
    if (!items) return unexpected(items.error());
    out.emplace(std::string(e.code), std::move(*items));
  }
  return out;
}

Result<std::vector<uint8_t>> writeGeositeDb(const GeositeMap& codes) {
  auto uv = [](std::vector<uint8_t>& o, uint64_t v) {
    while (v >= 0x80) {
      o.push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    o.push_back(static_cast<uint8_t>(v));
  };
  std::vector<uint8_t> content, out;
  std::vector<size_t> offsets;
  for (const auto& [code, items] : codes) {  // std::map iterates in bytewise order
    offsets.push_back(content.size());
    for (const auto& it : items) {
      if (static_cast<uint8_t>(it.type) > 3) {
        return unexpected("geosite code \"" + code + "\": unknown item type");
      }
      content.push_back(static_cast<uint8_t>(it.type));
      uv(content, it.value.size());
      content.insert(content.end(), it.value.begin(), it.value.end());
    }
  }
  out.push_back(0);
  uv(out, codes.size());
  size_t k = 0;
  for (const auto& [code, items] : codes) {
    uv(out, code.size());
    out.insert(out.end(), code.begin(), code.end());
    uv(out, offsets[k++]);
    uv(out, items.size());
  }
  out.insert(out.end(), content.begin(), content.end());
  return out;
}

}  // namespace veer::rules
