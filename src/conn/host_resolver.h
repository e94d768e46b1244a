// The name-resolution seam for dialing: the direct outbound asks a HostResolver for the
// addresses of a domain. SystemResolver uses getaddrinfo on libuv's thread pool; the DNS
// module's resolver plugs in through the same interface.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/result.h"

namespace veer::conn {

enum class DomainStrategy : uint8_t { AsIs, PreferIpv4, PreferIpv6, Ipv4Only, Ipv6Only };

class HostResolver {
 public:
  virtual ~HostResolver() = default;
  using Callback = std::function<void(Result<std::vector<IpAddress>>)>;
  /// The callback runs once, on the loop, never inside resolve(); never after cancel(id).
  virtual uint64_t resolve(const std::string& host, DomainStrategy strategy, Callback cb) = 0;
  virtual void cancel(uint64_t id) = 0;
};

/// Orders/filters addresses by strategy (stable within a family).
std::vector<IpAddress> applyStrategy(std::vector<IpAddress> in, DomainStrategy s);

class SystemResolver : public HostResolver {
 public:
  explicit SystemResolver(uv_loop_t* loop) : loop_(loop) {}
  ~SystemResolver() override;
  uint64_t resolve(const std::string& host, DomainStrategy strategy, Callback cb) override;
  void cancel(uint64_t id) override;

 private:
  struct Req;
  uv_loop_t* loop_;
  uint64_t next_id_ = 1;
  std::vector<Req*> live_;
};

}  // namespace veer::conn
