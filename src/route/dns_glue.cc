#include "route/dns_glue.h"

namespace veer::route {

uint64_t DnsHostResolver::resolve(const std::string& host, conn::DomainStrategy strategy,
                                  Callback cb) {
  dns::Strategy s = dns::Strategy::AsIs;
  switch (strategy) {
    case conn::DomainStrategy::AsIs: s = dns::Strategy::AsIs; break;
    case conn::DomainStrategy::PreferIpv4: s = dns::Strategy::PreferIpv4; break;
    case conn::DomainStrategy::PreferIpv6: s = dns::Strategy::PreferIpv6; break;
    case conn::DomainStrategy::Ipv4Only: s = dns::Strategy::Ipv4Only; break;
    case conn::DomainStrategy::Ipv6Only: s = dns::Strategy::Ipv6Only; break;
  }
  return dns_->lookup(host, s, [cb = std::move(cb)](Result<dns::LookupResult> r) {
    if (!r) {
      cb(unexpected(r.error()));
      return;
    }
    cb(std::move(r->addresses));
  });
}

}  // namespace veer::route
