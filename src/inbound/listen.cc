#include "inbound/inbound.h"
#include "loop/uv_util.h"

namespace veer::inbound {

Status listenTcp(uv_tcp_t* tcp, const std::string& host, uint16_t port, bool reuse_addr,
                 uv_connection_cb cb) {
  auto ip = IpAddress::parse(host);
  if (!ip) return unexpected(Error("listen address \"" + host + "\" is not an IP address"));
  SocketAddress sa(*ip, port);
  (void)reuse_addr;  // libuv sets SO_REUSEADDR on TCP listeners already
  int rc = uv_tcp_bind(tcp, sa.sa(), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), 1024, cb);
  if (rc != 0) return unexpected(loop::uvError(rc, "listen " + sa.toString()));
  return {};
}

}  // namespace veer::inbound
