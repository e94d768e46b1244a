// zlib helpers for the .srs rule-set format: bounded inflation of untrusted input and deflation
// at the level sing-box uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace veer::rules {

/// Default cap on the decompressed size of one rule-set (a zip bomb stops here).
inline constexpr size_t kMaxInflatedBytes = size_t{64} << 20;

/// Inflates one zlib stream. Fails when the stream is corrupt or truncated, when it would
/// decompress to more than `max_out` bytes, or when bytes follow the end of the stream. The
/// error message gives the offset in `in` where decoding stopped.
Result<std::vector<uint8_t>> zlibInflate(ByteView in, size_t max_out = kMaxInflatedBytes);

/// Deflates `in` into a zlib stream (header, data, Adler-32) at `level` (9 = best, as Go's
/// zlib.BestCompression).
Result<std::vector<uint8_t>> zlibDeflate(ByteView in, int level = 9);

}  // namespace veer::rules
