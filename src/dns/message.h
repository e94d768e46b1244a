// DNS wire format (RFC 1035, RFC 6891 EDNS0, RFC 7871 client subnet): a pure, bounds-checked
// parser and a serializer with name compression and truncation. No sockets, no loop: this is
// what the fuzz target exercises. Malformed input yields an Error, never a crash or an
// unbounded allocation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/bytes.h"
#include "base/result.h"

namespace veer::dns {

/// Record types veer looks at; every other type is carried as raw rdata.
namespace rrtype {
constexpr uint16_t kA = 1;
constexpr uint16_t kNs = 2;
constexpr uint16_t kCname = 5;
constexpr uint16_t kSoa = 6;
constexpr uint16_t kPtr = 12;
constexpr uint16_t kMx = 15;
constexpr uint16_t kTxt = 16;
constexpr uint16_t kAaaa = 28;
constexpr uint16_t kSrv = 33;
constexpr uint16_t kDname = 39;
constexpr uint16_t kOpt = 41;
constexpr uint16_t kSvcb = 64;
constexpr uint16_t kHttps = 65;
constexpr uint16_t kAny = 255;
}  // namespace rrtype

constexpr uint16_t kClassIn = 1;

/// Response codes (the 12-bit extended value; the header holds the low 4 bits).
enum class Rcode : uint16_t {
  NoError = 0,
  FormErr = 1,
  ServFail = 2,
  NxDomain = 3,
  NotImp = 4,
  Refused = 5,
};

/// The classic UDP limit without EDNS (RFC 1035 §4.2.1).
constexpr size_t kMinUdpSize = 512;
constexpr size_t kMaxMessageSize = 65535;
/// The UDP size veer advertises upstream (DNS flag day 2020).
constexpr uint16_t kDefaultEdnsUdpSize = 1232;
constexpr uint16_t kEdnsOptionClientSubnet = 8;

struct Question {
  /// Presentation form without the trailing dot ("" is the root); bytes outside printable
  /// ASCII, '.', and '\' are escaped as \DDD / \. / \\ so the text maps back to the same labels.
  std::string name;
  uint16_t type = 0;
  uint16_t cls = kClassIn;
};

/// A resource record. `rdata` never contains compression pointers: names inside the rdata of
/// the types that may be compressed (NS, CNAME, PTR, DNAME, SOA, MX) are expanded by the
/// parser, so a record can be copied into another message as is.
struct Record {
  std::string name;
  uint16_t type = 0;
  uint16_t cls = kClassIn;
  uint32_t ttl = 0;
  std::vector<uint8_t> rdata;

  /// The address of an A or AAAA record.
  std::optional<IpAddress> address() const;
  /// The target name of a CNAME, NS, PTR or DNAME record.
  std::optional<std::string> target() const;
  /// For SOA: min(record TTL, MINIMUM field), the negative-caching TTL of RFC 2308 §5.
  std::optional<uint32_t> soaNegativeTtl() const;

  /// An A or AAAA record for `ip`.
  static Record address(std::string name, const IpAddress& ip, uint32_t ttl);
};

struct ClientSubnet {
  IpAddress address;  // masked to source_prefix
  uint8_t source_prefix = 0;
  uint8_t scope_prefix = 0;
};

struct EdnsOption {
  uint16_t code = 0;
  std::vector<uint8_t> data;
};

struct Edns {
  uint16_t udp_size = kDefaultEdnsUdpSize;
  uint8_t version = 0;
  uint16_t flags = 0;  // the DO bit is 0x8000
  std::optional<ClientSubnet> client_subnet;
  std::vector<EdnsOption> options;  // every option other than client subnet, in order
};

struct Message {
  uint16_t id = 0;
  bool qr = false;
  uint8_t opcode = 0;
  bool aa = false;
  bool tc = false;
  bool rd = false;
  bool ra = false;
  bool ad = false;
  bool cd = false;
  uint16_t rcode = 0;  // 12 bits: header rcode | EDNS extended rcode << 4
  std::vector<Question> questions;
  std::vector<Record> answers;
  std::vector<Record> authorities;
  std::vector<Record> additionals;  // without the OPT pseudo-record
  std::optional<Edns> edns;

  Rcode rcodeValue() const { return static_cast<Rcode>(rcode); }
};

/// Parses a whole message. Errors: truncation, trailing garbage in rdata of decoded types,
/// compression pointers that do not point strictly backwards or exceed the hop limit, names
/// longer than 255 bytes, more than one OPT record.
Result<Message> parseMessage(ByteView wire);

/// Serializes `m` with name compression. When the result would exceed `max_size`, records are
/// left out from the end (answers, then authority, then additional; the OPT record is always
/// kept) and TC is set, as miekg/dns Msg.Truncate does. Fails only when the header, questions
/// and OPT alone do not fit, or a name cannot be encoded.
Result<std::vector<uint8_t>> serializeMessage(const Message& m, size_t max_size = kMaxMessageSize);

/// The size limit for a UDP response to `query`: 512, or the query's EDNS UDP size when larger
/// (sing-box dns/client_truncate.go).
size_t maxUdpResponseSize(const Message& query);

/// A response skeleton for `query`: same ID, opcode, RD, CD and questions; QR and RA set; EDNS
/// echoed (our UDP size, no options) when the query had EDNS.
Message makeResponse(const Message& query, Rcode rcode);
/// A NOERROR response answering the first question with `addresses` that match its type
/// (A gets IPv4, AAAA gets IPv6; the others are dropped, which can leave an empty answer).
Message makeAddressResponse(const Message& query, const std::vector<IpAddress>& addresses,
                            uint32_t ttl);
/// A recursive query for one question.
Message makeQuery(uint16_t id, std::string name, uint16_t type, std::optional<Edns> edns);

/// Lower-cases ASCII letters and strips one trailing dot: the form used for cache keys,
/// rules and FakeIP.
std::string canonicalName(std::string_view name);
/// Encodes presentation text as uncompressed wire labels (with the final zero byte).
Result<std::vector<uint8_t>> encodeName(std::string_view text);

/// "A", "AAAA", "TYPE65"... and the reverse (accepts names and numbers); for rules and logs.
std::string typeName(uint16_t type);
std::optional<uint16_t> parseTypeName(std::string_view text);
const char* rcodeName(uint16_t rcode);

/// The ID of a raw message (0 when shorter than 2 bytes) and an in-place rewrite of it.
uint16_t peekId(ByteView wire);
void setId(std::vector<uint8_t>& wire, uint16_t id);

/// RFC 1035 §4.2.2 TCP framing: a two-byte big-endian length before each message.
std::vector<uint8_t> frameTcp(ByteView message);

/// Reassembles framed messages from a TCP byte stream fed in arbitrary pieces. It holds what it
/// is fed: callers drain next() after each feed(), which keeps it below one message (64 KiB + 2)
/// plus one read.
class TcpDeframer {
 public:
  void feed(ByteView data);
  /// The next complete message, if one has arrived.
  std::optional<std::vector<uint8_t>> next();
  size_t buffered() const { return buf_.size(); }

 private:
  std::vector<uint8_t> buf_;
};

}  // namespace veer::dns
