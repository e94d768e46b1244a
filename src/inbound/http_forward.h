// Plain HTTP proxying ("GET http://host/path HTTP/1.1"): each request is routed and sent to its
// origin in origin-form with the Proxy-* headers removed, and the response is relayed back.
// Requests and responses are framed (Content-Length, chunked, until close), so one client
// connection carries several requests (keep-alive), also to different hosts; the upstream
// connection is reused while the host stays the same.
#pragma once

#include <uv.h>

#include <string>

#include "conn/context.h"

namespace veer::inbound {

class HttpForwardSession {
 public:
  /// Takes the client handle (reading stopped) and the bytes already read from it.
  static void start(uv_loop_t* loop, conn::ConnectionHandler* handler, const std::string& tag,
                    uv_tcp_t* client, std::string buffered, const std::string& user);
};

}  // namespace veer::inbound
