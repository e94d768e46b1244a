#include "dns/cache_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/file.h"

namespace veer::dns {
namespace {

constexpr uint8_t kMagic[8] = {'V', 'E', 'E', 'R', 'C', 'A', 'C', 'H'};

const std::array<uint32_t, 256>& crcTable() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

std::string at(size_t offset, const std::string& what) {
  return "offset " + std::to_string(offset) + ": " + what;
}

}  // namespace

uint32_t crc32Ieee(ByteView data, uint32_t crc) {
  const auto& t = crcTable();
  crc = ~crc;
  for (uint8_t b : data) crc = t[(crc ^ b) & 0xff] ^ (crc >> 8);
  return ~crc;
}

CacheFile::ParseResult CacheFile::parse(ByteView data) {
  ParseResult out;
  if (data.size() < kHeaderSize || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    out.foreign = true;
    out.problems.push_back(at(0, "not a veer cache file (no VEERCACH header)"));
    return out;
  }
  uint16_t version = loadBe16(data.data() + 8);
  uint16_t flags = loadBe16(data.data() + 10);
  uint32_t count = loadBe32(data.data() + 12);
  uint32_t crc = loadBe32(data.data() + 16);
  if (crc32Ieee(data.subspan(0, 16)) != crc) {
    out.foreign = true;
    out.problems.push_back(at(16, "header checksum mismatch"));
    return out;
  }
  if (version != kVersion) {
    out.foreign = true;
    out.problems.push_back(at(8, "unsupported version " + std::to_string(version) +
                                     " (this veer reads version " + std::to_string(kVersion) + ")"));
    return out;
  }
  if (flags != 0) {
    out.foreign = true;
    out.problems.push_back(at(10, "unknown header flags " + std::to_string(flags)));
    return out;
  }
  ByteReader r(data);
  r.skip(kHeaderSize);
  uint32_t seen = 0;
  while (!r.empty()) {
    if (seen == count) {
      out.problems.push_back(at(r.offset(), "data after the last section"));
      break;
    }
    ++seen;
    size_t start = r.offset();
    uint8_t kind = 0, reserved = 0;
    uint16_t id_len = 0;
    uint32_t body_len = 0;
    if (!r.u8(kind) || !r.u8(reserved) || !r.be16(id_len) || !r.be32(body_len)) {
      out.problems.push_back(at(start, "truncated section header"));
      break;
    }
    if (id_len > 255 || body_len > kMaxBody) {
      out.problems.push_back(at(start, "section lengths out of range"));
      break;
    }
    ByteView id, body;
    uint32_t sum = 0;
    if (!r.bytes(id_len, id) || !r.bytes(body_len, body)) {
      out.problems.push_back(at(start, "section runs past the end of the file"));
      break;
    }
    size_t sum_at = r.offset();
    if (!r.be32(sum)) {
      out.problems.push_back(at(sum_at, "truncated section checksum"));
      break;
    }
    if (crc32Ieee(data.subspan(start, sum_at - start)) != sum) {
      out.problems.push_back(at(start, "section checksum mismatch; section dropped"));
      continue;  // the framing is intact: later sections can still be read
    }
    if (reserved != 0) {
      out.problems.push_back(at(start + 1, "reserved byte set; section dropped"));
      continue;
    }
    Section s;
    s.kind = kind;
    s.cache_id.assign(reinterpret_cast<const char*>(id.data()), id.size());
    s.body.assign(body.begin(), body.end());
    s.body_offset = start + 8 + id_len;
    out.sections.push_back(std::move(s));
  }
  if (seen < count && r.empty()) {
    out.problems.push_back(at(r.offset(), "file ends after " + std::to_string(seen) + " of " +
                                              std::to_string(count) + " sections"));
  }
  return out;
}

std::vector<uint8_t> CacheFile::serialize(const std::vector<Section>& sections) {
  std::vector<uint8_t> out(kMagic, kMagic + sizeof kMagic);
  uint8_t b[4];
  storeBe16(b, kVersion);
  out.insert(out.end(), b, b + 2);
  storeBe16(b, 0);
  out.insert(out.end(), b, b + 2);
  storeBe32(b, static_cast<uint32_t>(sections.size()));
  out.insert(out.end(), b, b + 4);
  storeBe32(b, crc32Ieee(ByteView(out.data(), out.size())));
  out.insert(out.end(), b, b + 4);
  for (const auto& s : sections) {
    size_t start = out.size();
    out.push_back(s.kind);
    out.push_back(0);
    storeBe16(b, static_cast<uint16_t>(s.cache_id.size()));
    out.insert(out.end(), b, b + 2);
    storeBe32(b, static_cast<uint32_t>(s.body.size()));
    out.insert(out.end(), b, b + 4);
    out.insert(out.end(), s.cache_id.begin(), s.cache_id.end());
    out.insert(out.end(), s.body.begin(), s.body.end());
    storeBe32(b, crc32Ieee(ByteView(out.data() + start, out.size() - start)));
    out.insert(out.end(), b, b + 4);
  }
  return out;
}

CacheFile CacheFile::load(const std::string& path, std::vector<std::string>& warnings) {
  CacheFile cf;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    if (errno != ENOENT) warnings.push_back(path + ": " + std::strerror(errno));
    return cf;
  }
  std::vector<uint8_t> data;
  uint8_t buf[16384];
  size_t got;
  bool too_big = false;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) {
    data.insert(data.end(), buf, buf + got);
    if (data.size() > 4 * size_t{kMaxBody}) {
      too_big = true;
      break;
    }
  }
  std::fclose(f);
  ParseResult p;
  if (too_big) {
    p.foreign = true;
    p.problems.push_back(at(0, "file too large for a veer cache file"));
  } else {
    p = parse(ByteView(data.data(), data.size()));
  }
  for (const auto& problem : p.problems) warnings.push_back(path + ": " + problem);
  if (p.foreign) {
    // Possibly another program's file (sing-box's bbolt cache.db has the same default name):
    // move it aside instead of overwriting it later.
    std::string aside = path + ".bad";
    if (::rename(path.c_str(), aside.c_str()) == 0) {
      warnings.push_back(path + ": moved to " + aside);
    } else {
      warnings.push_back(path + ": could not move it aside: " + std::strerror(errno));
    }
  }
  cf.sections_ = std::move(p.sections);
  return cf;
}

Status CacheFile::save(const std::string& path) const {
  std::vector<uint8_t> out = serialize(sections_);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return unexpected(Error("cache file: open " + tmp + ": " + std::strerror(errno), errno));
  size_t off = 0;
  while (off < out.size()) {
    ssize_t w = ::write(fd, out.data() + off, out.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return unexpected(Error("cache file: write " + tmp + ": " + std::strerror(e), e));
    }
    off += static_cast<size_t>(w);
  }
  // fsync before rename: otherwise a power cut can leave the new name on an empty file.
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return unexpected(Error("cache file: fsync " + tmp + ": " + std::strerror(e), e));
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return unexpected(Error("cache file: rename to " + path + ": " + std::strerror(e), e));
  }
  return {};
}

const CacheFile::Section* CacheFile::find(uint8_t kind, const std::string& cache_id) const {
  for (const auto& s : sections_) {
    if (s.kind == kind && s.cache_id == cache_id) return &s;
  }
  return nullptr;
}

void CacheFile::erase(uint8_t kind, const std::string& cache_id) {
  for (auto it = sections_.begin(); it != sections_.end(); ++it) {
    if (it->kind == kind && it->cache_id == cache_id) {
      sections_.erase(it);
      return;
    }
  }
}

void CacheFile::put(uint8_t kind, const std::string& cache_id, std::vector<uint8_t> body) {
  for (auto& s : sections_) {
    if (s.kind == kind && s.cache_id == cache_id) {
      s.body = std::move(body);
      return;
    }
  }
  sections_.push_back(Section{kind, cache_id, std::move(body), 0});
}

}  // namespace veer::dns
