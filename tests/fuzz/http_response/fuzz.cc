// Fuzzes the HTTP client's response parser (remote rule-set downloads): the whole input as a
// response fed in pieces whose sizes come from the first byte, then the end of the connection;
// and the URL parser and Location resolution on the first line.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "outbound/http_response.h"

using namespace veer::outbound;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t step = (data[0] % 16) + 1;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  HttpResponseParser p(4096, (data[0] & 0x80) != 0);
  bool ok = true;
  for (size_t i = 0; i < in.size() && ok && !p.done(); i += step) {
    size_t n = in.size() - i < step ? in.size() - i : step;
    ok = p.feed(in.data() + i, n);
  }
  if (ok) ok = p.finish();
  if (ok) {
    // A complete response is consistent.
    if (!p.done() || p.status() < 100 || p.status() > 999 || p.body().size() > 4096) __builtin_trap();
    (void)p.header("Location");
  } else if (p.error().empty()) {
    __builtin_trap();
  }
  std::string_view line = in.substr(0, in.find('\n'));
  auto u = parseHttpUrl(line);
  if (u) {
    if (u->target.empty() || u->target[0] != '/' || u->host.empty()) __builtin_trap();
    (void)u->toString();
    std::string_view rest = in.substr(line.size() < in.size() ? line.size() + 1 : in.size());
    auto r = resolveLocation(*u, rest.substr(0, rest.find('\n')));
    if (r && (r->target.empty() || r->target[0] != '/')) __builtin_trap();
  }
  return 0;
}
