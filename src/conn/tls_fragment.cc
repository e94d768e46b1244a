#include "conn/tls_fragment.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>

namespace veer::conn {

std::vector<std::string> fragmentClientHello(std::string_view data, std::string_view server_name,
                                             bool as_records, std::mt19937& rng) {
  // Record header: type 22 (handshake), version, 16-bit length; handshake type 1.
  if (data.size() < 9 || static_cast<uint8_t>(data[0]) != 22 || static_cast<uint8_t>(data[5]) != 1) {
    return {};
  }
  size_t len = static_cast<size_t>(static_cast<uint8_t>(data[3])) << 8 |
               static_cast<uint8_t>(data[4]);
  if (len == 0 || data.size() < 5 + len || server_name.empty()) return {};
  std::string_view payload = data.substr(5, len);
  // The name as sent may differ in case from the sniffed (lower-cased) one.
  auto eq = [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  };
  auto it = std::search(payload.begin(), payload.end(), server_name.begin(), server_name.end(), eq);
  if (it == payload.end()) return {};
  size_t at = static_cast<size_t>(it - payload.begin());

  // Cut points (offsets into the payload), one inside each label but the last.
  std::vector<size_t> cuts;
  size_t label_start = 0;
  while (true) {
    size_t dot = server_name.find('.', label_start);
    if (dot == std::string_view::npos) break;  // the last label (the public suffix) stays whole
    size_t label_len = dot - label_start;
    if (label_len >= 2) {
      std::uniform_int_distribution<size_t> pick(1, label_len - 1);
      cuts.push_back(at + label_start + pick(rng));
    }
    label_start = dot + 1;
  }
  if (cuts.empty()) return {};

  std::vector<std::string> out;
  if (as_records) {
    std::string records;
    size_t prev = 0;
    cuts.push_back(payload.size());
    for (size_t cut : cuts) {
      size_t n = cut - prev;
      records.push_back(data[0]);
      records.push_back(data[1]);
      records.push_back(data[2]);
      records.push_back(static_cast<char>(n >> 8));
      records.push_back(static_cast<char>(n & 0xff));
      records.append(payload.substr(prev, n));
      prev = cut;
    }
    records.append(data.substr(5 + len));
    out.push_back(std::move(records));
    return out;
  }
  size_t prev = 0;
  for (size_t cut : cuts) {
    out.emplace_back(data.substr(prev, 5 + cut - prev));
    prev = 5 + cut;
  }
  out.emplace_back(data.substr(prev));
  return out;
}

bool allAcked(uv_tcp_t* tcp) {
#if defined(TCP_INFO) && defined(__linux__)
  uv_os_fd_t fd;
  if (tcp == nullptr || uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd) != 0) return false;
  struct tcp_info ti {};
  socklen_t len = sizeof(ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return false;
  return ti.tcpi_unacked == 0;
#else
  (void)tcp;
  return false;
#endif
}

}  // namespace veer::conn
