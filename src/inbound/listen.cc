#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "inbound/inbound.h"
#include "loop/uv_util.h"

namespace veer::inbound {

Status listenTcp(uv_tcp_t* tcp, const ListenOptions& opts, uv_connection_cb cb) {
  auto ip = IpAddress::parse(opts.listen);
  if (!ip) {
    return unexpected(Error("listen address \"" + opts.listen + "\" is not an IP address"));
  }
  SocketAddress sa(*ip, opts.listen_port);
  // reuse_addr: libuv already sets SO_REUSEADDR on every TCP listener it binds.
  int rc = uv_tcp_bind(tcp, sa.sa(), 0);
#ifdef TCP_FASTOPEN
  if (rc == 0 && opts.tcp_fast_open) {
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd) == 0) {
      int qlen = 256;
      if (setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) != 0) {
        return unexpected(Error("listen " + sa.toString() + ": enable TCP fast open failed"));
      }
    }
  }
#endif
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp), 1024, cb);
  if (rc != 0) return unexpected(loop::uvError(rc, "listen " + sa.toString()));
  return {};
}

}  // namespace veer::inbound
