#include "rules/zlib_util.h"

#include <zlib.h>

#include <algorithm>

namespace veer::rules {

Result<std::vector<uint8_t>> zlibInflate(ByteView in, size_t max_out) {
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) return unexpected("zlib: inflateInit failed");
  std::vector<uint8_t> out;
  // Grow geometrically instead of trusting any size hint: the input is untrusted.
  out.resize(std::min<size_t>(max_out, std::max<size_t>(in.size() * 4, 4096)));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(std::min<size_t>(in.size(), UINT32_MAX));
  size_t produced = 0;
  int rc = Z_OK;
  while (true) {
    if (produced == out.size()) {
      if (out.size() >= max_out) {
        inflateEnd(&zs);
        return unexpected("zlib: decompressed data exceeds " + std::to_string(max_out) +
                          " bytes (offset " + std::to_string(zs.total_in) + ")");
      }
      out.resize(std::min(max_out, out.size() * 2));
    }
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - produced, UINT32_MAX));
    rc = inflate(&zs, Z_NO_FLUSH);
    produced = zs.total_out;
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      inflateEnd(&zs);
      return unexpected("zlib: truncated stream (offset " + std::to_string(zs.total_in) + ")");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      std::string msg = zs.msg ? zs.msg : "error " + std::to_string(rc);
      size_t at = zs.total_in;
      inflateEnd(&zs);
      return unexpected("zlib: " + msg + " (offset " + std::to_string(at) + ")");
    }
  }
  size_t consumed = zs.total_in;
  inflateEnd(&zs);
  if (consumed != in.size()) {
    return unexpected("zlib: " + std::to_string(in.size() - consumed) +
                      " trailing bytes after the stream (offset " + std::to_string(consumed) + ")");
  }
  out.resize(produced);
  return out;
}

Result<std::vector<uint8_t>> zlibDeflate(ByteView in, int level) {
  uLongf bound = compressBound(static_cast<uLong>(in.size()));
  std::vector<uint8_t> out(bound);
  int rc = compress2(out.data(), &bound, in.data(), static_cast<uLong>(in.size()), level);
  if (rc != Z_OK) return unexpected("zlib: compress failed (" + std::to_string(rc) + ")");
  out.resize(bound);
  return out;
}

}  // namespace veer::rules
