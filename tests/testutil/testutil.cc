#include "testutil/testutil.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace veer::test {

static bool isDir(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string sourceDir() {
  const char* s = std::getenv("VEER_SOURCE_DIR");
  return s ? s : ".";
}

std::string binaryDir() {
  const char* s = std::getenv("VEER_BINARY_DIR");
  return s ? s : ".";
}

std::optional<std::string> testdataDir() {
  if (const char* env = std::getenv("VEER_TESTDATA")) {
    if (isDir(env)) return std::string(env);
    return std::nullopt;
  }
  std::string p = sourceDir() + "/../shared/testdata";
  if (isDir(p)) return p;
  return std::nullopt;
}

std::optional<std::string> readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<uint8_t> fromHex(const std::string& hex) {
  std::vector<uint8_t> out;
  int hi = -1;
  for (char c : hex) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else continue;
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  return out;
}

}  // namespace veer::test
