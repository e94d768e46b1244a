// Fuzzes the cache-file reader (experimental.cache_file) and the FakeIP table inside it: any
// bytes must parse without crashing; what parses must survive a write/read round trip
// unchanged, and a FakeIP table that restores must restore again from its own serialisation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "dns/cache_file.h"
#include "dns/fakeip.h"

using namespace veer;
using namespace veer::dns;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto p = CacheFile::parse(ByteView(data, size));
  if (p.foreign && !p.sections.empty()) std::abort();
  auto wire = CacheFile::serialize(p.sections);
  auto again = CacheFile::parse(ByteView(wire.data(), wire.size()));
  if (!again.problems.empty() || again.sections.size() != p.sections.size()) std::abort();
  for (size_t i = 0; i < again.sections.size(); ++i) {
    const auto& a = p.sections[i];
    const auto& b = again.sections[i];
    if (a.kind != b.kind || a.cache_id != b.cache_id || a.body != b.body) std::abort();
  }
  // Each body as a FakeIP table, for both a matching and a different range; the whole input
  // too (past the checksums, which a fuzzer rarely gets right).
  p.sections.push_back(
      CacheFile::Section{CacheFile::kFakeIp, "", std::vector<uint8_t>(data, data + size), 0});
  for (const auto& s : p.sections) {
    for (const char* v4 : {"198.18.0.0/15", "10.0.0.0/30"}) {
      FakeIpStore::Options o;
      o.inet4_range = IpPrefix::parse(v4);
      o.inet6_range = IpPrefix::parse("fc00::/18");
      auto store = FakeIpStore::create(o);
      if (!store) std::abort();
      if (!store->restore(ByteView(s.body.data(), s.body.size()), s.body_offset)) continue;
      auto body = store->serialize();
      auto copy = FakeIpStore::create(o);
      if (!copy->restore(ByteView(body.data(), body.size()))) std::abort();
      if (copy->size() != store->size()) std::abort();
      (void)store->allocate("fuzz.test", false);
    }
  }
  return 0;
}
