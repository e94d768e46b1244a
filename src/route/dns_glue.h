// Glue between the router/ConnectionManager and veer's DNS: a HostResolver over the DNS router
// (so the direct outbound and the resolve action use the `dns` section), and the hijack-dns
// paths for TCP (length-prefixed messages) and UDP (one query per datagram).
#pragma once

#include <memory>

#include "conn/host_resolver.h"
#include "dns/dns_router.h"

namespace veer::route {

class DnsHostResolver : public conn::HostResolver {
 public:
  explicit DnsHostResolver(std::shared_ptr<dns::DnsRouter> dns) : dns_(std::move(dns)) {}
  uint64_t resolve(const std::string& host, conn::DomainStrategy strategy, Callback cb) override;
  void cancel(uint64_t id) override { dns_->cancel(id); }

 private:
  std::shared_ptr<dns::DnsRouter> dns_;
};

}  // namespace veer::route
