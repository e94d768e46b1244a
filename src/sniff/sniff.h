// Protocol sniffers: pure functions from the first bytes of a stream (TCP) or one datagram (UDP)
// to what the client is speaking (sing-box's protocol names) and the server name it asked for.
// Nothing here touches a socket or the loop; the caller (conn/route) owns the peek buffer, its
// size cap and the timeout, and keeps calling while a sniffer answers NeedMore.
//
// Every sniffer reads its input only through bounds-checked helpers, allocates at most a small
// multiple of its (capped) input, and answers NoMatch for anything malformed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"

namespace veer::sniff {

enum class Status {
  Match,     ///< the protocol was recognised; `Info` is filled in
  NeedMore,  ///< the input is a valid prefix: call again with more bytes (or the next datagram)
  NoMatch,   ///< not this protocol (or malformed): more bytes will not help
};

/// What a sniffer found. Sniffers only ever assign to it on Match (and, for QUIC, on NeedMore
/// to say "this is QUIC" before the server name is known).
struct Info {
  std::string protocol;  ///< "tls","http","quic","dns","bittorrent","stun","dtls","ssh","rdp","ntp"
  std::string domain;    ///< SNI or Host, lower-case, port stripped; empty when there is none
  std::string client;    ///< QUIC: chromium/firefox/safari/quic-go/unknown; SSH: software version
  std::vector<std::string> alpn;
};

/// Upper bound on the stream prefix the stream sniffers look at (sing-box's sniff buffer): a
/// ClientHello or request head that does not fit is NoMatch rather than NeedMore forever.
inline constexpr size_t kMaxStreamSniffBytes = 16 * 1024;

// Stream sniffers: `in` is everything read from the start of the connection so far.
Status sniffTls(ByteView in, Info& out);
Status sniffHttp(ByteView in, Info& out);
Status sniffDnsTcp(ByteView in, Info& out);
Status sniffBittorrentTcp(ByteView in, Info& out);
Status sniffSsh(ByteView in, Info& out);
Status sniffRdp(ByteView in, Info& out);

// Packet sniffers: `in` is one UDP payload.
Status sniffDnsUdp(ByteView in, Info& out);
Status sniffStun(ByteView in, Info& out);
/// uTP (BEP 29) and UDP tracker connect requests (BEP 15).
Status sniffBittorrentUdp(ByteView in, Info& out);
Status sniffDtls(ByteView in, Info& out);
Status sniffNtp(ByteView in, Info& out);

/// Runs the stream sniffers in sing-box's order (tls, http, dns, bittorrent, ssh, rdp), limited
/// to the names in `enabled` when it is not empty. Match from the first sniffer that matches;
/// otherwise NeedMore if any enabled sniffer still needs more, else NoMatch.
Status sniffStream(ByteView in, const std::vector<std::string>& enabled, Info& out);

/// QUIC client Initial sniffer for one UDP session. Decrypts the first long-header packet of
/// each datagram with the version's Initial keys (v1, v2, draft-29) and reassembles the CRYPTO
/// stream per destination connection ID across datagrams, in any order, until the ClientHello
/// is complete. State is bounded (a few DCIDs, kMaxStreamSniffBytes of CRYPTO data each).
class QuicSniffer {
 public:
  QuicSniffer();
  ~QuicSniffer();
  QuicSniffer(const QuicSniffer&) = delete;
  QuicSniffer& operator=(const QuicSniffer&) = delete;
  QuicSniffer(QuicSniffer&&) noexcept;
  QuicSniffer& operator=(QuicSniffer&&) noexcept;

  /// Match: the ClientHello is complete (domain, alpn, client filled). NeedMore: a valid
  /// Initial whose ClientHello is still incomplete (protocol "quic" is set). NoMatch: not a
  /// decryptable client Initial of a known version.
  Status feed(ByteView datagram, Info& out);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

/// The UDP dispatcher for one session: dns, quic, stun, bittorrent, dtls, ntp in sing-box's
/// order, limited to `enabled` when it is not empty. Once QUIC has answered NeedMore, later
/// datagrams go to the QUIC sniffer only (as sing-box's router does), so that a ClientHello
/// split over several Initials is reassembled.
class PacketSniffer {
 public:
  explicit PacketSniffer(std::vector<std::string> enabled = {});

  Status feed(ByteView datagram, Info& out);

 private:
  bool enabled(const char* name) const;

  std::vector<std::string> enabled_;
  QuicSniffer quic_;
  bool quicPending_ = false;
};

}  // namespace veer::sniff
