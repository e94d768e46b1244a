#include "dns/message.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>
#include <unordered_map>

namespace veer::dns {
namespace {

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxNameWire = 255;
constexpr size_t kMaxLabel = 63;
// Each pointer must go strictly backwards, which already rules out loops; the hop limit bounds
// the work for long backward chains (a 64 KiB message could otherwise chain ~32k pointers).
constexpr int kMaxPointerHops = 64;

Error formErr(const std::string& what) { return Error("malformed DNS message: " + what); }

void appendLabelText(std::string& out, const uint8_t* p, size_t n) {
  if (!out.empty()) out.push_back('.');
  for (size_t i = 0; i < n; ++i) {
    uint8_t c = p[i];
    if (c == '.' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x21 || c > 0x7e) {
      char esc[5];
      esc[0] = '\\';
      esc[1] = static_cast<char>('0' + c / 100);
      esc[2] = static_cast<char>('0' + (c / 10) % 10);
      esc[3] = static_cast<char>('0' + c % 10);
      esc[4] = 0;
      out.append(esc, 4);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
}

// Reads a possibly compressed name starting at `pos`; on success `pos` is just past the name
// in the original position (after the first pointer, if any). `wire_out`, when given, receives
// the uncompressed wire form.
bool readName(ByteView msg, size_t& pos, std::string* text, std::vector<uint8_t>* wire_out) {
  size_t p = pos;
  size_t end_pos = 0;
  bool jumped = false;
  int hops = 0;
  size_t wire_len = 1;  // the final zero byte
  // Lower bound for the next pointer target: pointers must point before the start of the
  // label sequence that contains them.
  size_t seq_start = pos;
  if (text) text->clear();
  while (true) {
    if (p >= msg.size()) return false;
    uint8_t len = msg[p];
    if ((len & 0xc0) == 0xc0) {
      if (p + 1 >= msg.size()) return false;
      size_t target = ((len & 0x3fu) << 8) | msg[p + 1];
      if (target >= seq_start) return false;
      if (++hops > kMaxPointerHops) return false;
      if (!jumped) {
        end_pos = p + 2;
        jumped = true;
      }
      p = target;
      seq_start = target;
      continue;
    }
    if ((len & 0xc0) != 0) return false;  // 0x40/0x80: obsolete/reserved label types
    if (len == 0) {
      if (!jumped) end_pos = p + 1;
      break;
    }
    if (p + 1 + len > msg.size()) return false;
    wire_len += 1 + len;
    if (wire_len > kMaxNameWire) return false;
    if (text) appendLabelText(*text, msg.data() + p + 1, len);
    if (wire_out) wire_out->insert(wire_out->end(), msg.data() + p, msg.data() + p + 1 + len);
    p += 1 + len;
  }
  if (wire_out) wire_out->push_back(0);
  pos = end_pos;
  return true;
}

// Expands the names inside the rdata of types whose rdata may contain compression pointers
// (RFC 3597 §4: only the RFC 1035 types). `rdata_end` bounds the rdata.
bool expandRdata(ByteView msg, uint16_t type, size_t start, size_t rdlen,
                 std::vector<uint8_t>& out) {
  size_t end = start + rdlen;
  ByteView bounded = msg.first(end);
  size_t pos = start;
  switch (type) {
    case rrtype::kNs:
    case rrtype::kCname:
    case rrtype::kPtr:
    case rrtype::kDname:
      if (!readName(bounded, pos, nullptr, &out)) return false;
      return pos == end;
    case rrtype::kMx:
      if (rdlen < 3) return false;
      out.insert(out.end(), msg.data() + pos, msg.data() + pos + 2);
      pos += 2;
      if (!readName(bounded, pos, nullptr, &out)) return false;
      return pos == end;
    case rrtype::kSoa:
      if (!readName(bounded, pos, nullptr, &out)) return false;
      if (!readName(bounded, pos, nullptr, &out)) return false;
      if (end - pos != 20) return false;
      out.insert(out.end(), msg.data() + pos, msg.data() + end);
      return true;
    default:
      out.assign(msg.data() + start, msg.data() + end);
      return true;
  }
}

Result<Edns> parseOpt(const Record& rec, uint16_t& ext_rcode) {
  Edns e;
  e.udp_size = rec.cls;
  ext_rcode = static_cast<uint16_t>(rec.ttl >> 24);
  e.version = static_cast<uint8_t>(rec.ttl >> 16);
  e.flags = static_cast<uint16_t>(rec.ttl);
  ByteReader r(rec.rdata);
  while (!r.empty()) {
    uint16_t code = 0, len = 0;
    ByteView data;
    if (!r.be16(code) || !r.be16(len) || !r.bytes(len, data)) {
      return unexpected(formErr("truncated EDNS option"));
    }
    if (code == kEdnsOptionClientSubnet && !e.client_subnet && data.size() >= 4) {
      uint16_t family = loadBe16(data.data());
      uint8_t source = data[2], scope = data[3];
      size_t addr_len = (source + 7u) / 8u;
      size_t max_bits = family == 1 ? 32 : family == 2 ? 128 : 0;
      // An option we cannot interpret is kept raw rather than failing the whole message: a
      // forwarder must not break queries over an option it does not use.
      if (max_bits != 0 && source <= max_bits && data.size() == 4 + addr_len) {
        uint8_t buf[16] = {};
        std::memcpy(buf, data.data() + 4, addr_len);
        ClientSubnet cs;
        cs.address = family == 1 ? IpAddress::v4(buf) : IpAddress::v6(buf);
        cs.source_prefix = source;
        cs.scope_prefix = scope;
        e.client_subnet = cs;
        continue;
      }
    }
    e.options.push_back(EdnsOption{code, std::vector<uint8_t>(data.begin(), data.end())});
  }
  return e;
}

// ---- serializer -------------------------------------------------------------------------

class Writer {
 public:
  explicit Writer(size_t reserve) { out_.reserve(reserve); }

  struct Mark {
    size_t size;
    size_t log;
  };
  Mark mark() const { return {out_.size(), log_.size()}; }
  void rollback(const Mark& m) {
    out_.resize(m.size);
    while (log_.size() > m.log) {
      table_.erase(log_.back());
      log_.pop_back();
    }
  }

  size_t size() const { return out_.size(); }
  std::vector<uint8_t>& bytes() { return out_; }

  void u8(uint8_t v) { out_.push_back(v); }
  void be16(uint16_t v) {
    uint8_t b[2];
    storeBe16(b, v);
    out_.insert(out_.end(), b, b + 2);
  }
  void be32(uint32_t v) {
    uint8_t b[4];
    storeBe32(b, v);
    out_.insert(out_.end(), b, b + 4);
  }
  void raw(const uint8_t* p, size_t n) { out_.insert(out_.end(), p, p + n); }

  // Writes a name, reusing the longest suffix already written. Suffixes are matched exactly
  // (case included) so that a 0x20-randomised question name is echoed byte for byte.
  Status name(std::string_view text) {
    auto wire = encodeName(text);
    if (!wire) return unexpected(wire.error());
    const std::vector<uint8_t>& w = *wire;
    size_t i = 0;
    while (w[i] != 0) {
      std::string key(reinterpret_cast<const char*>(w.data() + i), w.size() - i);
      auto it = table_.find(key);
      if (it != table_.end()) {
        be16(static_cast<uint16_t>(0xc000 | it->second));
        return {};
      }
      size_t here = out_.size();
      if (here < 0x4000) {
        table_.emplace(key, static_cast<uint16_t>(here));
        log_.push_back(std::move(key));
      }
      raw(w.data() + i, 1 + w[i]);
      i += 1 + w[i];
    }
    u8(0);
    return {};
  }

 private:
  std::vector<uint8_t> out_;
  std::unordered_map<std::string, uint16_t> table_;
  std::vector<std::string> log_;
};

Status writeRecord(Writer& w, const Record& r) {
  if (r.rdata.size() > 0xffff) return unexpected(Error("DNS record rdata too long"));
  if (auto s = w.name(r.name); !s) return s;
  w.be16(r.type);
  w.be16(r.cls);
  w.be32(r.ttl);
  w.be16(static_cast<uint16_t>(r.rdata.size()));
  w.raw(r.rdata.data(), r.rdata.size());
  return {};
}

std::vector<uint8_t> optRdata(const Edns& e) {
  std::vector<uint8_t> out;
  // push_back rather than insert of a 2-byte array: GCC 12 -O2 warns falsely
  // (-Wstringop-overflow) on the latter.
  auto put16 = [&](uint16_t v) {
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
  };
  if (e.client_subnet) {
    const ClientSubnet& cs = *e.client_subnet;
    size_t addr_len = (cs.source_prefix + 7u) / 8u;
    addr_len = std::min(addr_len, cs.address.size());
    put16(kEdnsOptionClientSubnet);
    put16(static_cast<uint16_t>(4 + addr_len));
    put16(cs.address.isV4() ? 1 : 2);
    out.push_back(cs.source_prefix);
    out.push_back(cs.scope_prefix);
    // Bits beyond the source prefix must be zero (RFC 7871 §6).
    for (size_t i = 0; i < addr_len; ++i) {
      uint8_t b = cs.address.data()[i];
      size_t bit_end = (i + 1) * 8;
      if (bit_end > cs.source_prefix) {
        unsigned keep = cs.source_prefix - i * 8;
        b = static_cast<uint8_t>(b & (0xff00u >> keep));
      }
      out.push_back(b);
    }
  }
  for (const auto& o : e.options) {
    put16(o.code);
    put16(static_cast<uint16_t>(o.data.size()));
    out.insert(out.end(), o.data.begin(), o.data.end());
  }
  return out;
}

}  // namespace

// ---- Record helpers ---------------------------------------------------------------------

std::optional<IpAddress> Record::address() const {
  if (type == rrtype::kA && rdata.size() == 4) return IpAddress::v4(rdata.data());
  if (type == rrtype::kAaaa && rdata.size() == 16) return IpAddress::v6(rdata.data());
  return std::nullopt;
}

std::optional<std::string> Record::target() const {
  if (type != rrtype::kCname && type != rrtype::kNs && type != rrtype::kPtr &&
      type != rrtype::kDname) {
    return std::nullopt;
  }
  std::string text;
  size_t pos = 0;
  if (!readName(rdata, pos, &text, nullptr)) return std::nullopt;
  return text;
}

std::optional<uint32_t> Record::soaNegativeTtl() const {
  if (type != rrtype::kSoa || rdata.size() < 22) return std::nullopt;
  uint32_t minimum = loadBe32(rdata.data() + rdata.size() - 4);
  return std::min(ttl, minimum);
}

Record Record::address(std::string name, const IpAddress& ip, uint32_t ttl) {
  Record r;
  r.name = std::move(name);
  r.type = ip.isV4() ? rrtype::kA : rrtype::kAaaa;
  r.ttl = ttl;
  r.rdata.assign(ip.data(), ip.data() + ip.size());
  return r;
}

// ---- parse ------------------------------------------------------------------------------

Result<Message> parseMessage(ByteView wire) {
  if (wire.size() > kMaxMessageSize) return unexpected(formErr("longer than 65535 bytes"));
  if (wire.size() < kHeaderSize) return unexpected(formErr("shorter than the header"));
  Message m;
  const uint8_t* h = wire.data();
  m.id = loadBe16(h);
  uint16_t flags = loadBe16(h + 2);
  m.qr = flags & 0x8000;
  m.opcode = static_cast<uint8_t>((flags >> 11) & 0xf);
  m.aa = flags & 0x0400;
  m.tc = flags & 0x0200;
  m.rd = flags & 0x0100;
  m.ra = flags & 0x0080;
  m.ad = flags & 0x0020;
  m.cd = flags & 0x0010;
  m.rcode = flags & 0xf;
  uint16_t counts[4] = {loadBe16(h + 4), loadBe16(h + 6), loadBe16(h + 8), loadBe16(h + 10)};

  size_t pos = kHeaderSize;
  // No reserve() from the counts: they are attacker-controlled, and each entry is at least
  // 5 bytes of input, so the vectors grow only with the real input.
  for (uint16_t i = 0; i < counts[0]; ++i) {
    Question q;
    if (!readName(wire, pos, &q.name, nullptr)) return unexpected(formErr("bad question name"));
    if (pos + 4 > wire.size()) return unexpected(formErr("truncated question"));
    q.type = loadBe16(wire.data() + pos);
    q.cls = loadBe16(wire.data() + pos + 2);
    pos += 4;
    m.questions.push_back(std::move(q));
  }
  bool have_opt = false;
  for (int section = 1; section < 4; ++section) {
    std::vector<Record>& dst = section == 1 ? m.answers : section == 2 ? m.authorities : m.additionals;
    for (uint16_t i = 0; i < counts[section]; ++i) {
      Record r;
      if (!readName(wire, pos, &r.name, nullptr)) return unexpected(formErr("bad record name"));
      if (pos + 10 > wire.size()) return unexpected(formErr("truncated record header"));
      const uint8_t* p = wire.data() + pos;
      r.type = loadBe16(p);
      r.cls = loadBe16(p + 2);
      r.ttl = loadBe32(p + 4);
      uint16_t rdlen = loadBe16(p + 8);
      pos += 10;
      if (pos + rdlen > wire.size()) return unexpected(formErr("truncated rdata"));
      if (!expandRdata(wire, r.type, pos, rdlen, r.rdata)) {
        return unexpected(formErr("bad rdata of type " + typeName(r.type)));
      }
      pos += rdlen;
      if (r.type == rrtype::kOpt && section == 3) {
        if (have_opt) return unexpected(formErr("more than one OPT record"));
        if (!r.name.empty()) return unexpected(formErr("OPT record not owned by the root"));
        have_opt = true;
        uint16_t ext = 0;
        auto e = parseOpt(r, ext);
        if (!e) return unexpected(e.error());
        m.edns = std::move(*e);
        m.rcode = static_cast<uint16_t>(m.rcode | (ext << 4));
        continue;
      }
      dst.push_back(std::move(r));
    }
  }
  // Trailing bytes are tolerated, as most resolvers do: they carry nothing we would read.
  return m;
}

// ---- serialize --------------------------------------------------------------------------

Result<std::vector<uint8_t>> serializeMessage(const Message& m, size_t max_size) {
  max_size = std::min(max_size, kMaxMessageSize);
  if (m.questions.size() > 0xffff || m.answers.size() > 0xffff || m.authorities.size() > 0xffff ||
      m.additionals.size() > 0xfffe) {
    return unexpected(Error("DNS message has too many records"));
  }
  Writer w(std::min<size_t>(max_size, 512));
  for (int i = 0; i < 12; ++i) w.u8(0);
  for (const auto& q : m.questions) {
    if (auto s = w.name(q.name); !s) return unexpected(s.error());
    w.be16(q.type);
    w.be16(q.cls);
  }
  std::vector<uint8_t> opt;
  size_t opt_size = 0;
  if (m.edns) {
    opt = optRdata(*m.edns);
    if (opt.size() > 0xffff) return unexpected(Error("EDNS options too long"));
    opt_size = 11 + opt.size();
  }
  if (w.size() + opt_size > max_size) {
    return unexpected(Error("DNS header and question exceed " + std::to_string(max_size) + " bytes"));
  }
  bool truncated = false;
  uint16_t written[3] = {0, 0, 0};
  const std::vector<Record>* sections[3] = {&m.answers, &m.authorities, &m.additionals};
  for (int s = 0; s < 3 && !truncated; ++s) {
    for (const Record& r : *sections[s]) {
      auto mk = w.mark();
      if (auto st = writeRecord(w, r); !st) return unexpected(st.error());
      if (w.size() + opt_size > max_size) {
        w.rollback(mk);
        truncated = true;
        break;
      }
      ++written[s];
    }
  }
  uint16_t arcount = written[2];
  uint16_t rcode = m.rcode;
  if (m.edns) {
    w.u8(0);  // root owner
    w.be16(rrtype::kOpt);
    w.be16(m.edns->udp_size);
    uint32_t ttl = (uint32_t{static_cast<uint8_t>(rcode >> 4)} << 24) |
                   (uint32_t{m.edns->version} << 16) | m.edns->flags;
    w.be32(ttl);
    w.be16(static_cast<uint16_t>(opt.size()));
    w.raw(opt.data(), opt.size());
    ++arcount;
  } else if (rcode > 0xf) {
    return unexpected(Error("extended rcode needs EDNS"));
  }
  uint8_t* h = w.bytes().data();
  storeBe16(h, m.id);
  uint16_t flags = static_cast<uint16_t>((m.qr ? 0x8000 : 0) | ((m.opcode & 0xf) << 11) |
                                         (m.aa ? 0x0400 : 0) | ((m.tc || truncated) ? 0x0200 : 0) |
                                         (m.rd ? 0x0100 : 0) | (m.ra ? 0x0080 : 0) |
                                         (m.ad ? 0x0020 : 0) | (m.cd ? 0x0010 : 0) | (rcode & 0xf));
  storeBe16(h + 2, flags);
  storeBe16(h + 4, static_cast<uint16_t>(m.questions.size()));
  storeBe16(h + 6, written[0]);
  storeBe16(h + 8, written[1]);
  storeBe16(h + 10, arcount);
  return std::move(w.bytes());
}

size_t maxUdpResponseSize(const Message& query) {
  if (query.edns && query.edns->udp_size > kMinUdpSize) return query.edns->udp_size;
  return kMinUdpSize;
}

Message makeResponse(const Message& query, Rcode rcode) {
  Message r;
  r.id = query.id;
  r.qr = true;
  r.opcode = query.opcode;
  r.rd = query.rd;
  r.cd = query.cd;
  r.ra = true;
  r.rcode = static_cast<uint16_t>(rcode);
  r.questions = query.questions;
  if (query.edns) {
    Edns e;
    e.udp_size = kDefaultEdnsUdpSize;
    e.flags = query.edns->flags & 0x8000;  // echo DO (RFC 3225 §3)
    r.edns = e;
  }
  return r;
}

Message makeAddressResponse(const Message& query, const std::vector<IpAddress>& addresses,
                            uint32_t ttl) {
  Message r = makeResponse(query, Rcode::NoError);
  if (query.questions.empty()) return r;
  const Question& q = query.questions[0];
  for (const auto& ip : addresses) {
    if ((q.type == rrtype::kA && ip.isV4()) || (q.type == rrtype::kAaaa && ip.isV6())) {
      r.answers.push_back(Record::address(q.name, ip, ttl));
    }
  }
  return r;
}

Message makeQuery(uint16_t id, std::string name, uint16_t type, std::optional<Edns> edns) {
  Message m;
  m.id = id;
  m.rd = true;
  m.questions.push_back(Question{std::move(name), type, kClassIn});
  m.edns = std::move(edns);
  return m;
}

std::string canonicalName(std::string_view name) {
  std::string out(name);
  if (!out.empty() && out.back() == '.' && !(out.size() >= 2 && out[out.size() - 2] == '\\')) {
    out.pop_back();
  }
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

Result<std::vector<uint8_t>> encodeName(std::string_view text) {
  std::vector<uint8_t> out;
  if (text == ".") text = "";
  out.reserve(text.size() + 2);
  auto bad = [&](const char* why) {
    return unexpected(Error("bad DNS name \"" + std::string(text) + "\": " + why));
  };
  size_t label_start = out.size();
  out.push_back(0);  // length placeholder of the current label
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.') {
      size_t len = out.size() - label_start - 1;
      if (len == 0) return bad("empty label");
      if (len > kMaxLabel) return bad("label longer than 63 bytes");
      out[label_start] = static_cast<uint8_t>(len);
      label_start = out.size();
      out.push_back(0);
      continue;
    }
    if (c == '\\') {
      if (i + 1 >= text.size()) return bad("dangling escape");
      auto digit = [&](size_t k) {
        return k < text.size() && text[k] >= '0' && text[k] <= '9';
      };
      if (digit(i + 1) && digit(i + 2) && digit(i + 3)) {
        int v = (text[i + 1] - '0') * 100 + (text[i + 2] - '0') * 10 + (text[i + 3] - '0');
        if (v > 255) return bad("escape above 255");
        out.push_back(static_cast<uint8_t>(v));
        i += 3;
      } else {
        out.push_back(static_cast<uint8_t>(text[i + 1]));
        ++i;
      }
      continue;
    }
    out.push_back(static_cast<uint8_t>(c));
  }
  // The last label is open: close it, or drop the placeholder after a trailing dot / for root.
  size_t len = out.size() - label_start - 1;
  if (len == 0) {
    out.pop_back();
  } else {
    if (len > kMaxLabel) return bad("label longer than 63 bytes");
    out[label_start] = static_cast<uint8_t>(len);
  }
  out.push_back(0);
  if (out.size() > kMaxNameWire) return bad("longer than 255 bytes");
  return out;
}

std::string typeName(uint16_t type) {
  switch (type) {
    case rrtype::kA: return "A";
    case rrtype::kNs: return "NS";
    case rrtype::kCname: return "CNAME";
    case rrtype::kSoa: return "SOA";
    case rrtype::kPtr: return "PTR";
    case rrtype::kMx: return "MX";
    case rrtype::kTxt: return "TXT";
    case rrtype::kAaaa: return "AAAA";
    case rrtype::kSrv: return "SRV";
    case rrtype::kOpt: return "OPT";
    case rrtype::kSvcb: return "SVCB";
    case rrtype::kHttps: return "HTTPS";
    case rrtype::kAny: return "ANY";
    default: return "TYPE" + std::to_string(type);
  }
}

std::optional<uint16_t> parseTypeName(std::string_view text) {
  std::string up;
  for (char c : text) up.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  static const uint16_t kKnown[] = {rrtype::kA,   rrtype::kNs,   rrtype::kCname, rrtype::kSoa,
                                    rrtype::kPtr, rrtype::kMx,   rrtype::kTxt,   rrtype::kAaaa,
                                    rrtype::kSrv, rrtype::kSvcb, rrtype::kHttps, rrtype::kAny};
  for (uint16_t t : kKnown) {
    if (typeName(t) == up) return t;
  }
  std::string_view digits = up;
  if (digits.rfind("TYPE", 0) == 0) digits.remove_prefix(4);
  if (digits.empty() || digits.size() > 5) return std::nullopt;
  uint32_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 0xffff) return std::nullopt;
  return static_cast<uint16_t>(v);
}

const char* rcodeName(uint16_t rcode) {
  switch (rcode) {
    case 0: return "NOERROR";
    case 1: return "FORMERR";
    case 2: return "SERVFAIL";
    case 3: return "NXDOMAIN";
    case 4: return "NOTIMP";
    case 5: return "REFUSED";
    default: return "RCODE?";
  }
}

uint16_t peekId(ByteView wire) { return wire.size() < 2 ? 0 : loadBe16(wire.data()); }

void setId(std::vector<uint8_t>& wire, uint16_t id) {
  if (wire.size() >= 2) storeBe16(wire.data(), id);
}

std::vector<uint8_t> frameTcp(ByteView message) {
  std::vector<uint8_t> out(2 + message.size());
  storeBe16(out.data(), static_cast<uint16_t>(std::min(message.size(), kMaxMessageSize)));
  std::memcpy(out.data() + 2, message.data(), message.size());
  return out;
}

void TcpDeframer::feed(ByteView data) { buf_.insert(buf_.end(), data.begin(), data.end()); }

std::optional<std::vector<uint8_t>> TcpDeframer::next() {
  if (buf_.size() < 2) return std::nullopt;
  size_t len = loadBe16(buf_.data());
  if (buf_.size() < 2 + len) return std::nullopt;
  std::vector<uint8_t> msg(buf_.begin() + 2, buf_.begin() + 2 + static_cast<ptrdiff_t>(len));
  buf_.erase(buf_.begin(), buf_.begin() + 2 + static_cast<ptrdiff_t>(len));
  return msg;
}

}  // namespace veer::dns
