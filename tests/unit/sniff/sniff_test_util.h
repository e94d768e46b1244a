// Helpers shared by the sniff tests: reading the chunked hex vectors of testdata/sniff.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "sniff/sniff.h"
#include "testutil/testutil.h"

namespace veer::sniff::test {

using Bytes = std::vector<uint8_t>;

/// One chunk per line (an empty line is a 0-byte chunk); the final newline ends the last line.
inline std::optional<std::vector<Bytes>> readChunks(const std::string& path) {
  auto text = veer::test::readFile(path);
  if (!text) return std::nullopt;
  std::vector<Bytes> chunks;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t eol = text->find('\n', pos);
    if (eol == std::string::npos) eol = text->size();
    chunks.push_back(veer::test::fromHex(text->substr(pos, eol - pos)));
    pos = eol + 1;
  }
  if (text->empty()) chunks.emplace_back();
  return chunks;
}

inline Bytes concat(const std::vector<Bytes>& chunks) {
  Bytes out;
  for (const auto& c : chunks) out.insert(out.end(), c.begin(), c.end());
  return out;
}

inline Bytes hex(const std::string& s) { return veer::test::fromHex(s); }

inline const char* statusName(Status s) {
  switch (s) {
    case Status::Match:
      return "Match";
    case Status::NeedMore:
      return "NeedMore";
    case Status::NoMatch:
      return "NoMatch";
  }
  return "?";
}

/// Wraps a handshake message in TLS records of at most `recordSize` payload bytes.
inline Bytes tlsRecords(const Bytes& handshake, size_t recordSize) {
  Bytes out;
  for (size_t pos = 0; pos < handshake.size(); pos += recordSize) {
    const size_t n = std::min(recordSize, handshake.size() - pos);
    out.push_back(0x16);
    out.push_back(0x03);
    out.push_back(0x01);
    out.push_back(static_cast<uint8_t>(n >> 8));
    out.push_back(static_cast<uint8_t>(n));
    out.insert(out.end(), handshake.begin() + pos, handshake.begin() + pos + n);
  }
  return out;
}

}  // namespace veer::sniff::test

namespace veer::sniff {
// Found by argument-dependent lookup, so gtest prints statuses by name.
inline std::ostream& operator<<(std::ostream& os, Status s) { return os << test::statusName(s); }
}  // namespace veer::sniff
