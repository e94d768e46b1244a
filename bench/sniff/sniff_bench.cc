// ns per sniff: TLS ClientHello (one record and fragmented), QUIC Initial (one packet, a
// ClientHello split over three Initials), and the dispatchers. Inputs are built at start-up
// (tests/unit/sniff/hello_builder.h), so the benchmark needs no captured data.
#include <benchmark/benchmark.h>

#include "hello_builder.h"
#include "sniff/sniff.h"

namespace {

using veer::sniff::Info;
using veer::sniff::Status;
using namespace veer::sniff::test;

const Bytes kDcid = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};

Bytes chromeSizedHello(size_t padding) {
  HelloSpec s;
  s.sni = "www.example.com";
  s.alpn = {"h2", "http/1.1"};
  s.paddingExt = padding;
  return buildClientHello(s);
}

Bytes tlsRecordsOf(const Bytes& hello, size_t recordSize) {
  Bytes out;
  for (size_t pos = 0; pos < hello.size(); pos += recordSize) {
    const size_t n = std::min(recordSize, hello.size() - pos);
    out.insert(out.end(), {0x16, 0x03, 0x01, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
    out.insert(out.end(), hello.begin() + pos, hello.begin() + pos + n);
  }
  return out;
}

void BM_TlsClientHello512(benchmark::State& state) {
  const Bytes stream = tlsRecordsOf(chromeSizedHello(300), 16384);
  for (auto _ : state) {
    Info info;
    Status st = veer::sniff::sniffTls(stream, info);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(info);
  }
  state.SetLabel(std::to_string(stream.size()) + " B");
}
BENCHMARK(BM_TlsClientHello512);

void BM_TlsClientHello2KFragmented(benchmark::State& state) {
  const Bytes stream = tlsRecordsOf(chromeSizedHello(1900), 1024);
  for (auto _ : state) {
    Info info;
    Status st = veer::sniff::sniffTls(stream, info);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(info);
  }
  state.SetLabel(std::to_string(stream.size()) + " B, 1 KiB records");
}
BENCHMARK(BM_TlsClientHello2KFragmented);

void BM_SniffStreamTls(benchmark::State& state) {
  const Bytes stream = tlsRecordsOf(chromeSizedHello(300), 16384);
  for (auto _ : state) {
    Info info;
    benchmark::DoNotOptimize(veer::sniff::sniffStream(stream, {}, info));
  }
}
BENCHMARK(BM_SniffStreamTls);

void BM_QuicInitialSingle(benchmark::State& state) {
  const Bytes hello = chromeSizedHello(300);
  const Bytes pkt = sealInitial(veer::sniff::kQuicVersion1, kDcid, 0,
                                cryptoFrame(0, hello.data(), hello.size()), 1250);
  // A fresh sniffer per iteration: key derivation is part of every new connection's cost.
  for (auto _ : state) {
    veer::sniff::QuicSniffer q;
    Info info;
    if (q.feed(pkt, info) != Status::Match) state.SkipWithError("no match");
    benchmark::DoNotOptimize(info);
  }
  state.SetLabel("1250 B datagram");
}
BENCHMARK(BM_QuicInitialSingle);

void BM_QuicInitialSplit3(benchmark::State& state) {
  const Bytes hello = chromeSizedHello(2000);
  const auto pkts = splitInitials(veer::sniff::kQuicVersion1, kDcid, hello, 800);
  for (auto _ : state) {
    veer::sniff::QuicSniffer q;
    Info info;
    Status st = Status::NeedMore;
    for (const auto& p : pkts) st = q.feed(p, info);
    if (st != Status::Match) state.SkipWithError("no match");
    benchmark::DoNotOptimize(info);
  }
  state.SetLabel(std::to_string(pkts.size()) + " Initials, " + std::to_string(hello.size()) +
                 " B ClientHello (time for all)");
}
BENCHMARK(BM_QuicInitialSplit3);

void BM_PacketSnifferQuic(benchmark::State& state) {
  const Bytes hello = chromeSizedHello(300);
  const Bytes pkt = sealInitial(veer::sniff::kQuicVersion1, kDcid, 0,
                                cryptoFrame(0, hello.data(), hello.size()), 1250);
  for (auto _ : state) {
    veer::sniff::PacketSniffer p;
    Info info;
    benchmark::DoNotOptimize(p.feed(pkt, info));
  }
}
BENCHMARK(BM_PacketSnifferQuic);

}  // namespace

BENCHMARK_MAIN();
