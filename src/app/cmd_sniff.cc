// veer sniff: runs veer's sniffers on a capture and prints what the router would see.
#include <cstdio>
#include <string>
#include <vector>

#include "app/cmd_util.h"
#include "app/commands.h"
#include "base/json.h"
#include "sniff/sniff.h"

namespace veer::app {

namespace {

const char* kSniffHelp =
    "Usage: veer sniff [--udp] [--hex] [--json] FILE|-\n"
    "\n"
    "Runs veer's sniffers on the first bytes of a connection (TCP, the default: tls, http, dns,\n"
    "bittorrent, ssh, rdp) or on datagrams (--udp: dns, quic, stun, bittorrent, dtls, ntp) and\n"
    "prints what the router sees: protocol, domain, client and ALPN.\n"
    "  --udp     the input is UDP datagrams (default: one TCP stream)\n"
    "  --hex     the input is hex text, one chunk per line (an empty line is an empty chunk):\n"
    "            with TCP each line is one read, fed cumulatively to the stream sniffers;\n"
    "            with --udp each line is one datagram, fed in order to one session's sniffer\n"
    "            (so a QUIC ClientHello split over several Initials is reassembled).\n"
    "            Without --hex the file is raw bytes: the stream, or with --udp one datagram.\n"
    "  --json    print {\"protocol\", \"domain\", \"client\", \"alpn\", \"result\", \"chunks\"}\n"
    "FILE '-' reads stdin.\n"
    "Exit status: 0 a protocol was recognised, 1 not (or an error), 2 usage.\n";

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// One chunk per line; whitespace inside a line is ignored. Fails naming the line.
Result<std::vector<std::string>> parseHexLines(const std::string& text, const std::string& file) {
  std::vector<std::string> chunks;
  size_t line_no = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    std::string digits;
    for (size_t i = start; i < end; ++i) {
      char c = text[i];
      if (c == ' ' || c == '\t' || c == '\r') continue;
      if (hexDigit(c) < 0) {
        return unexpected(file + ":" + std::to_string(line_no) + ": not a hex digit: '" +
                          std::string(1, c) + "'");
      }
      digits += c;
    }
    if (digits.size() % 2 != 0) {
      return unexpected(file + ":" + std::to_string(line_no) + ": odd number of hex digits");
    }
    std::string chunk;
    chunk.reserve(digits.size() / 2);
    for (size_t i = 0; i < digits.size(); i += 2) {
      chunk += static_cast<char>(hexDigit(digits[i]) * 16 + hexDigit(digits[i + 1]));
    }
    chunks.push_back(std::move(chunk));
    start = end + 1;
  }
  return chunks;
}

const char* statusName(sniff::Status s) {
  switch (s) {
    case sniff::Status::Match:
      return "match";
    case sniff::Status::NeedMore:
      return "need_more";
    case sniff::Status::NoMatch:
      return "no_match";
  }
  return "no_match";
}

json::Value str(const std::string& s) {
  json::Value v;
  v.type = json::Value::Type::String;
  v.str = validUtf8(s);
  return v;
}

json::Value strOrNull(const std::string& s) {
  if (s.empty()) return json::Value{};
  return str(s);
}

}  // namespace

int cmdSniff(const std::vector<std::string>& args) {
  const char* cmd = "sniff";
  bool udp = false, hex = false, as_json = false;
  ArgParser p;
  p.flag({"--udp", "-u"}, &udp);
  p.flag({"--hex", "-x"}, &hex);
  p.flag({"--json"}, &as_json);
  if (!p.parse(args)) return usageError(cmd, p.error(), kSniffHelp);
  if (p.help()) return printHelp(kSniffHelp);
  if (p.positional().size() != 1) return usageError(cmd, "expected one FILE (or -)", kSniffHelp);
  const std::string& file = p.positional()[0];
  auto text = readInput(file);
  if (!text) return failure(cmd, text.error().message());

  std::vector<std::string> chunks;
  if (hex) {
    auto parsed = parseHexLines(*text, file);
    if (!parsed) return failure(cmd, parsed.error().message());
    chunks = std::move(*parsed);
  } else {
    chunks.push_back(std::move(*text));
  }

  sniff::Info info;
  sniff::Status status = sniff::Status::NeedMore;
  size_t used = 0;
  if (udp) {
    sniff::PacketSniffer sniffer;
    for (const auto& d : chunks) {
      ++used;
      status = sniffer.feed(asBytes(d), info);
      if (status != sniff::Status::NeedMore) break;
    }
  } else {
    // The stream sniffers see everything read so far, as the router's peek buffer holds it.
    std::string stream;
    for (const auto& c : chunks) {
      ++used;
      stream += c;
      status = sniff::sniffStream(asBytes(stream), {}, info);
      if (status != sniff::Status::NeedMore) break;
    }
  }
  if (chunks.empty()) status = sniff::Status::NeedMore;

  if (as_json) {
    json::Value root;
    root.type = json::Value::Type::Object;
    root.members.push_back({"protocol", {}, strOrNull(info.protocol)});
    root.members.push_back({"domain", {}, strOrNull(info.domain)});
    root.members.push_back({"client", {}, strOrNull(info.client)});
    json::Value alpn;
    alpn.type = json::Value::Type::Array;
    for (const auto& a : info.alpn) alpn.items.push_back(str(a));
    root.members.push_back({"alpn", {}, std::move(alpn)});
    root.members.push_back({"result", {}, str(statusName(status))});
    json::Value n;
    n.type = json::Value::Type::Uint;
    n.u = used;
    root.members.push_back({"chunks", {}, std::move(n)});
    std::printf("%s\n", json::serialize(root, true).c_str());
  } else {
    const char* unit = udp ? "datagram" : "read";
    switch (status) {
      case sniff::Status::Match:
        std::printf("result:   recognised after %zu %s%s\n", used, unit, used == 1 ? "" : "s");
        break;
      case sniff::Status::NeedMore:
        std::printf("result:   needs more data (after %zu %s%s)\n", used, unit,
                    used == 1 ? "" : "s");
        break;
      case sniff::Status::NoMatch:
        std::printf("result:   not recognised (at %s %zu)\n", unit, used);
        break;
    }
    auto field = [](const std::string& v) { return v.empty() ? std::string("-") : printable(v); };
    std::printf("protocol: %s\n", field(info.protocol).c_str());
    std::printf("domain:   %s\n", field(info.domain).c_str());
    std::printf("client:   %s\n", field(info.client).c_str());
    std::string alpn;
    for (const auto& a : info.alpn) alpn += (alpn.empty() ? "" : ", ") + printable(a);
    std::printf("alpn:     %s\n", alpn.empty() ? "-" : alpn.c_str());
  }
  return status == sniff::Status::Match ? kExitOk : kExitFailure;
}

}  // namespace veer::app
