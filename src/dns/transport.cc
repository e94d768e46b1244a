#include "base/file.h"
#include "dns/transport.h"


namespace veer::dns {

uint64_t LocalTransport::exchange(std::vector<uint8_t> query, Callback cb) {
  uint64_t id = next_id_++;
  auto q = parseMessage(query);
  if (!q) {
    cb(unexpected(q.error().wrap("dns/" + tag())));
    return id;
  }
  Message r = q->questions.empty() ? makeResponse(*q, Rcode::FormErr) : answer(*q);
  auto wire = serializeMessage(r);
  if (!wire) {
    cb(unexpected(wire.error().wrap("dns/" + tag())));
    return id;
  }
  cb(std::move(*wire));
  return id;
}

Status HostsTransport::loadHostsFile(const std::string& path,
                                     std::map<std::string, std::vector<IpAddress>>& out) {
  auto text = readFile(path);
  if (!text) return unexpected(Error("cannot read hosts file " + path));
  for (std::string_view line : splitLines(*text)) {
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    auto words = splitWords(line);
    if (words.empty()) continue;
    auto ip = IpAddress::parse(words[0]);
    if (!ip) continue;  // hosts files carry zone ids and junk; skip what we cannot read
    for (size_t i = 1; i < words.size(); ++i) out[canonicalName(words[i])].push_back(*ip);
  }
  return {};
}

Message HostsTransport::answer(const Message& query) {
  const Question& q = query.questions[0];
  auto it = entries_.find(canonicalName(q.name));
  if (it == entries_.end()) return makeResponse(query, Rcode::NxDomain);
  Message r = makeAddressResponse(query, it->second, 60);
  r.aa = true;
  return r;
}

Message FakeIpTransport::answer(const Message& query) {
  const Question& q = query.questions[0];
  if (q.type != rrtype::kA && q.type != rrtype::kAaaa) return makeResponse(query, Rcode::NoError);
  auto ip = store_.allocate(q.name, q.type == rrtype::kAaaa);
  if (!ip) return makeResponse(query, Rcode::NoError);
  return makeAddressResponse(query, {*ip}, 1);
}

}  // namespace veer::dns
