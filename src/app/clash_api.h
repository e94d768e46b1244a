// The control API: the subset of the Clash REST API (sing-box `experimental.clash_api`) that
// dashboards and scripts use to look at groups and connections and to switch a selector at
// run time. One HTTP/1.1 request per connection, on the loop; JSON answers.
//
//   GET    /                      {"hello":"clash"}
//   GET    /version               {"version":"veer ...","premium":false,"meta":false}
//   GET    /proxies               every outbound: type, and for groups now/all (urltest: delays)
//   GET    /proxies/{name}
//   PUT    /proxies/{name}        {"name":"member"}: switch a selector (204)
//   GET    /connections           live TCP connections and UDP sessions with byte counts
//   DELETE /connections           close them all
//   DELETE /connections/{id}      close one
//
// With a `secret`, every request needs `Authorization: Bearer <secret>` (401 otherwise).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "base/result.h"
#include "config/config.h"
#include "route/router.h"

namespace veer::app {

class ClashApi {
 public:
  using ConfigFn = std::function<const config::Config*()>;
  /// Listens on `controller` ("127.0.0.1:9090", "[::1]:9090", ":9090" = all addresses).
  static Result<std::unique_ptr<ClashApi>> start(uv_loop_t* loop, const std::string& controller,
                                                 std::string secret, route::Router* router,
                                                 ConfigFn config);
  ~ClashApi();
  /// The address actually bound (port 0 resolved).
  const std::string& address() const { return address_; }

  ClashApi(const ClashApi&) = delete;
  ClashApi& operator=(const ClashApi&) = delete;

 private:
  class Session;
  ClashApi(uv_loop_t* loop, std::string secret, route::Router* router, ConfigFn config);
  /// Handles one request; returns the full HTTP response.
  std::string handle(const std::string& method, const std::string& target,
                     const std::string* auth, const std::string& body);

  uv_loop_t* loop_;
  std::string secret_;
  route::Router* router_;
  ConfigFn config_;
  uv_tcp_t* listener_ = nullptr;
  std::string address_;
  std::set<Session*> sessions_;  // open requests, closed with the API
};

}  // namespace veer::app
