#include "crypto/kdf.h"

#include <fcntl.h>
#include <unistd.h>

#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>

#include <cerrno>
#include <cstring>

#if defined(__has_include)
#if __has_include(<sys/random.h>)
#include <sys/random.h>
#define VEER_HAVE_GETRANDOM 1
#endif
#endif

namespace veer::crypto {

bool hkdfSha1(ByteView ikm, ByteView salt, ByteView info, MutableByteView out) {
  const mbedtls_md_info_t* md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA1);
  if (md == nullptr) return false;
  return mbedtls_hkdf(md, salt.data(), salt.size(), ikm.data(), ikm.size(), info.data(),
                      info.size(), out.data(), out.size()) == 0;
}

std::vector<uint8_t> evpBytesToKey(std::string_view password, size_t key_len) {
  const mbedtls_md_info_t* md = mbedtls_md_info_from_type(MBEDTLS_MD_MD5);
  std::vector<uint8_t> key;
  if (md == nullptr) return key;
  uint8_t prev[16];
  size_t prev_len = 0;
  std::vector<uint8_t> in;
  while (key.size() < key_len) {
    in.assign(prev, prev + prev_len);
    in.insert(in.end(), password.begin(), password.end());
    if (mbedtls_md(md, in.data(), in.size(), prev) != 0) return {};
    prev_len = sizeof prev;
    size_t take = key_len - key.size() < prev_len ? key_len - key.size() : prev_len;
    key.insert(key.end(), prev, prev + take);
  }
  return key;
}

namespace {
bool readUrandom(uint8_t* p, size_t n) {
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ::close(fd);
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  ::close(fd);
  return true;
}
}  // namespace

bool randomBytes(MutableByteView out) {
  uint8_t* p = out.data();
  size_t n = out.size();
#ifdef VEER_HAVE_GETRANDOM
  while (n > 0) {
    ssize_t r = ::getrandom(p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      // ENOSYS: a kernel older than 3.17 (or a seccomp filter); use the device instead.
      return readUrandom(p, n);
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
#else
  return readUrandom(p, n);
#endif
}

}  // namespace veer::crypto
