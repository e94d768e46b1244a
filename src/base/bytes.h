// Byte views and explicit-byte-order integer access. Every multi-byte read or write in veer goes
// through these helpers: byte by byte, so there are no unaligned loads (MIPS traps on them) and
// the byte order is stated, never the host's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace veer {

using ByteView = std::span<const uint8_t>;
using MutableByteView = std::span<uint8_t>;

inline ByteView asBytes(std::string_view s) {
  return ByteView(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view asChars(ByteView b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}

inline uint16_t loadBe16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t loadBe24(const uint8_t* p) {
  return (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | uint32_t{p[2]};
}
inline uint32_t loadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
inline uint64_t loadBe64(const uint8_t* p) {
  return (uint64_t{loadBe32(p)} << 32) | loadBe32(p + 4);
}
inline uint16_t loadLe16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t loadLe32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

inline void storeBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void storeBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
inline void storeBe64(uint8_t* p, uint64_t v) {
  storeBe32(p, static_cast<uint32_t>(v >> 32));
  storeBe32(p + 4, static_cast<uint32_t>(v));
}

/// A bounds-checked forward reader over a byte view. Every accessor returns false (and leaves
/// the output untouched) instead of reading past the end; parsers of wire and file formats use
/// it so that truncated input can never be read out of bounds.
class ByteReader {
 public:
  explicit ByteReader(ByteView in) : in_(in) {}

  size_t offset() const { return pos_; }
  size_t remaining() const { return in_.size() - pos_; }
  bool empty() const { return pos_ >= in_.size(); }
  ByteView rest() const { return in_.subspan(pos_); }

  bool u8(uint8_t& v) {
    if (remaining() < 1) return false;
    v = in_[pos_++];
    return true;
  }
  bool be16(uint16_t& v) {
    if (remaining() < 2) return false;
    v = loadBe16(in_.data() + pos_);
    pos_ += 2;
    return true;
  }
  bool be24(uint32_t& v) {
    if (remaining() < 3) return false;
    v = loadBe24(in_.data() + pos_);
    pos_ += 3;
    return true;
  }
  bool be32(uint32_t& v) {
    if (remaining() < 4) return false;
    v = loadBe32(in_.data() + pos_);
    pos_ += 4;
    return true;
  }
  bool be64(uint64_t& v) {
    if (remaining() < 8) return false;
    v = loadBe64(in_.data() + pos_);
    pos_ += 8;
    return true;
  }
  /// Unsigned LEB128 as Go's binary.ReadUvarint reads it (at most 10 bytes, no overflow).
  bool uvarint(uint64_t& v) {
    uint64_t x = 0;
    unsigned shift = 0;
    for (size_t i = 0; i < 10; ++i) {
      if (remaining() < 1) return false;
      uint8_t b = in_[pos_++];
      if (b < 0x80) {
        if (i == 9 && b > 1) return false;
        v = x | (uint64_t{b} << shift);
        return true;
      }
      x |= uint64_t{b & 0x7fu} << shift;
      shift += 7;
    }
    return false;
  }
  bool bytes(size_t n, ByteView& out) {
    if (remaining() < n) return false;
    out = in_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool skip(size_t n) {
    if (remaining() < n) return false;
    pos_ += n;
    return true;
  }

 private:
  ByteView in_;
  size_t pos_ = 0;
};

}  // namespace veer
