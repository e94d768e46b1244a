// The small stream sniffers (BitTorrent, SSH, RDP) and the TCP dispatcher.
#include <algorithm>
#include <cstring>
#include <string_view>

#include "sniff/sniff.h"

namespace veer::sniff {

namespace {

void setProtocol(Info& out, const char* protocol) {
  out.protocol = protocol;
  out.domain.clear();
  out.client.clear();
  out.alpn.clear();
}

// NeedMore while `in` is a prefix of `want`, NoMatch once it differs, Match once it is whole.
Status matchPrefix(ByteView in, std::string_view want) {
  const size_t n = std::min(in.size(), want.size());
  // An empty view may have a null data pointer, which memcmp must never see.
  if (n > 0 && std::memcmp(in.data(), want.data(), n) != 0) return Status::NoMatch;
  return n < want.size() ? Status::NeedMore : Status::Match;
}

}  // namespace

Status sniffBittorrentTcp(ByteView in, Info& out) {
  // BEP 3 handshake: pstrlen 19, then "BitTorrent protocol".
  if (in.empty()) return Status::NeedMore;
  Status st = matchPrefix(in, std::string_view("\x13" "BitTorrent protocol", 20));
  if (st == Status::Match) setProtocol(out, "bittorrent");
  return st;
}

Status sniffSsh(ByteView in, Info& out) {
  // RFC 4253 4.2: "SSH-2.0-softwareversion SP comments CR LF", at most 255 bytes. sing-box
  // reports everything after "SSH-2.0-" on that line as the client.
  constexpr std::string_view kPrefix = "SSH-2.0-";
  constexpr size_t kMaxLine = 255;
  Status st = matchPrefix(in, kPrefix);
  if (st != Status::Match) return st;
  std::string_view s = asChars(in.first(std::min(in.size(), kMaxLine)));
  size_t eol = s.find('\n');
  if (eol == std::string_view::npos) {
    return in.size() >= kMaxLine ? Status::NoMatch : Status::NeedMore;
  }
  std::string_view line = s.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  setProtocol(out, "ssh");
  out.client.assign(line.substr(kPrefix.size()));
  return Status::Match;
}

Status sniffRdp(ByteView in, Info& out) {
  // TPKT (version 3, length 19) + X.224 Connection Request (LI 14, CR 0xE0) + RDP Negotiation
  // Request (type 1, length 8): the fixed 19-byte opening of every RDP client. Each byte is
  // checked as soon as it is present.
  struct Expect {
    size_t at;
    uint8_t value;
  };
  static constexpr Expect kFixed[] = {{0, 0x03}, {1, 0x00}, {2, 0x00}, {3, 19}, {4, 14},
                                      {5, 0xe0}, {11, 0x01}, {13, 0x08}};
  for (const Expect& e : kFixed) {
    if (e.at >= in.size()) return Status::NeedMore;
    if (in[e.at] != e.value) return Status::NoMatch;
  }
  setProtocol(out, "rdp");
  return Status::Match;
}

Status sniffStream(ByteView in, const std::vector<std::string>& enabled, Info& out) {
  using Fn = Status (*)(ByteView, Info&);
  struct Entry {
    const char* name;
    Fn fn;
  };
  static constexpr Entry kOrder[] = {{"tls", sniffTls},          {"http", sniffHttp},
                                     {"dns", sniffDnsTcp},       {"bittorrent", sniffBittorrentTcp},
                                     {"ssh", sniffSsh},          {"rdp", sniffRdp}};
  bool needMore = false;
  for (const Entry& e : kOrder) {
    if (!enabled.empty() && std::find(enabled.begin(), enabled.end(), e.name) == enabled.end()) {
      continue;
    }
    Info info;
    Status st = e.fn(in, info);
    if (st == Status::Match) {
      out = std::move(info);
      return st;
    }
    needMore = needMore || st == Status::NeedMore;
  }
  return needMore && in.size() < kMaxStreamSniffBytes ? Status::NeedMore : Status::NoMatch;
}

}  // namespace veer::sniff
