// Upstream DNS transports: something that takes a query in wire format and produces a response.
// CaresTransport (cares_transport.h) talks to servers; the in-process ones here answer from
// static data (hosts), with a fixed rcode (legacy "rcode://"), or from the FakeIP pool.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/result.h"
#include "dns/fakeip.h"
#include "dns/message.h"

namespace veer::dns {

class Transport {
 public:
  using Callback = std::function<void(Result<std::vector<uint8_t>>)>;

  virtual ~Transport() = default;
  /// Sends one query and calls `cb` exactly once with the response (same ID as the query) or
  /// an error, unless cancelled or closed first. In-process transports call back synchronously,
  /// so callers must not assume the call returns first.
  virtual uint64_t exchange(std::vector<uint8_t> query, Callback cb) = 0;
  /// The callback of `id` will not run. The query itself may still complete upstream.
  virtual void cancel(uint64_t id) = 0;
  /// Drops every pending callback and releases the transport; it frees itself once its libuv
  /// handles are closed, so callers only call close() (TransportPtr does that).
  virtual void close() = 0;

  const std::string& tag() const { return tag_; }
  /// In-process answers (hosts, fakeip, rcode) bypass the cache: they are already local.
  virtual bool cacheable() const { return true; }

 protected:
  explicit Transport(std::string tag) : tag_(std::move(tag)) {}

 private:
  std::string tag_;
};

struct TransportCloser {
  void operator()(Transport* t) const { t->close(); }
};
using TransportPtr = std::unique_ptr<Transport, TransportCloser>;

/// Shared base of the in-process transports: they parse the query, build a response and call
/// back synchronously. A query that cannot be parsed gets an error (there is no ID to echo
/// reliably); one without a question gets FORMERR.
class LocalTransport : public Transport {
 public:
  uint64_t exchange(std::vector<uint8_t> query, Callback cb) override;
  void cancel(uint64_t) override {}
  void close() override { delete this; }
  bool cacheable() const override { return false; }

 protected:
  using Transport::Transport;
  virtual Message answer(const Message& query) = 0;

 private:
  uint64_t next_id_ = 1;
};

/// sing-box's "hosts" server: `predefined` entries and hosts files. A name present with no
/// address of the asked family gets an empty NOERROR; an absent name gets NXDOMAIN.
class HostsTransport final : public LocalTransport {
 public:
  HostsTransport(std::string tag, std::map<std::string, std::vector<IpAddress>> entries)
      : LocalTransport(std::move(tag)), entries_(std::move(entries)) {}
  /// Reads /etc/hosts-format text ("addr name [alias...]", '#' comments) into `out`.
  static Status loadHostsFile(const std::string& path,
                              std::map<std::string, std::vector<IpAddress>>& out);

 protected:
  Message answer(const Message& query) override;

 private:
  std::map<std::string, std::vector<IpAddress>> entries_;  // canonical names
};

/// Legacy "rcode://refused" and the reject action: every query gets `rcode`.
class RcodeTransport final : public LocalTransport {
 public:
  RcodeTransport(std::string tag, Rcode rcode) : LocalTransport(std::move(tag)), rcode_(rcode) {}

 protected:
  Message answer(const Message& query) override { return makeResponse(query, rcode_); }

 private:
  Rcode rcode_;
};

/// sing-box's "fakeip" server: A/AAAA get an address from the pool (TTL 1, as sing-box), other
/// types an empty NOERROR.
class FakeIpTransport final : public LocalTransport {
 public:
  FakeIpTransport(std::string tag, FakeIpStore store)
      : LocalTransport(std::move(tag)), store_(std::move(store)) {}
  FakeIpStore& store() { return store_; }

 protected:
  Message answer(const Message& query) override;

 private:
  FakeIpStore store_;
};

}  // namespace veer::dns
