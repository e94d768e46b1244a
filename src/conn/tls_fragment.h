// TLS ClientHello fragmentation (sing-box route options `tls_fragment` and
// `tls_record_fragment`; common/tlsfragment): the first write to the server is cut inside the
// labels of its SNI host name, so that a middlebox reading one segment or one record does not
// see the whole name.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <uv.h>

namespace veer::conn {

/// Cuts `data`, which must start with one complete TLS handshake record carrying a ClientHello
/// whose SNI is `server_name`, inside each label of the name below its last label (each label
/// of two bytes or more, at a random point). With `as_records` the pieces of the record's
/// payload are re-wrapped as separate TLS records and returned as one string (one write);
/// otherwise the record's bytes are returned as several segments (one write each). Bytes after
/// the first record stay with the last piece. Returns {} when `data` is not such a record or
/// nothing can be cut (the caller writes it unchanged).
std::vector<std::string> fragmentClientHello(std::string_view data, std::string_view server_name,
                                             bool as_records, std::mt19937& rng);

/// True when every byte written to `tcp` has been acknowledged by the peer (Linux TCP_INFO);
/// false when unknown (the caller then waits its fallback delay).
bool allAcked(uv_tcp_t* tcp);

}  // namespace veer::conn
