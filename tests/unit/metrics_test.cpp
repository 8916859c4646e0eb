// The Prometheus exporter: the snapshot's conversion into metric families (cumulative histogram
// buckets in seconds, counter values, sessions by state), the ledger that keeps per-session
// counters monotonic, --metrics-listen's parsing, and the exporter over real HTTP on loopback
// (a scrape answered from the io thread, a stalled io thread, a port in use).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <sstream>
#include <string>
#include <thread>

#include <prometheus/text_serializer.h>
#include <asio.hpp>

#include "transport/metrics.hpp"

namespace tether {
namespace {

using namespace std::chrono_literals;
using transport::MetricsSnapshot;

const prometheus::MetricFamily* find_family(const std::vector<prometheus::MetricFamily>& families,
                                            const std::string& name) {
  for (const auto& family : families) {
    if (family.name == name) return &family;
  }
  return nullptr;
}

std::string text(const std::vector<prometheus::MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

session::SessionId id_of(std::uint8_t first) {
  session::SessionId id{};
  id[0] = static_cast<std::byte>(first);
  return id;
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndInSeconds) {
  session::LatencyHistogram histogram;
  histogram.record(300us);   // <= 0.5 ms
  histogram.record(700us);   // <= 1 ms
  histogram.record(3ms);     // <= 5 ms
  histogram.record(3ms);     // <= 5 ms
  histogram.record(7000ms);  // above every bound
  const auto converted = transport::prometheus_histogram(histogram);
  const auto& bounds = session::LatencyHistogram::kUpperBoundsMilliseconds;
  ASSERT_EQ(converted.bucket.size(), bounds.size() + 1);
  const std::vector<std::uint64_t> expected = {1, 2, 2, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5};
  for (std::size_t index = 0; index < converted.bucket.size(); ++index) {
    EXPECT_EQ(converted.bucket[index].cumulative_count, expected[index]) << "bucket " << index;
    if (index < bounds.size()) {
      EXPECT_DOUBLE_EQ(converted.bucket[index].upper_bound, bounds[index] / 1000);
    }
  }
  EXPECT_TRUE(std::isinf(converted.bucket.back().upper_bound));
  EXPECT_EQ(converted.sample_count, 5u);
  EXPECT_NEAR(converted.sample_sum, 7.0070, 1e-9);
}

TEST(MetricsTest, ServerSnapshotBecomesCountersGaugesAndAHistogram) {
  MetricsSnapshot snapshot;
  snapshot.role = "server";
  snapshot.sessions = {.connecting = 0, .active = 2, .suspended = 1, .closed = 0};
  snapshot.totals.bytes_replayed = 4096;
  transport::ServerMetrics server;
  server.endpoint.authentications_succeeded = 3;
  server.endpoint.authentication_failures = 2;
  server.endpoint.resumes_accepted = 5;
  server.endpoint.reauthentications_succeeded = 7;
  server.endpoint.reauthentication_latency.record(2ms);
  server.endpoint.reauthentication_latency.record(20ms);
  server.pending_connections = 4;
  snapshot.server = server;

  const auto families = transport::metric_families(snapshot, "server", 1);
  const auto* succeeded = find_family(families, "tether_successful_authentication_total");
  ASSERT_NE(succeeded, nullptr);
  EXPECT_EQ(succeeded->type, prometheus::MetricType::Counter);
  ASSERT_EQ(succeeded->metric.size(), 1u);
  EXPECT_EQ(succeeded->metric[0].counter.value, 3);
  EXPECT_EQ(find_family(families, "tether_failed_authentication_total")->metric[0].counter.value,
            2);
  EXPECT_EQ(find_family(families, "tether_resumes_total")->metric[0].counter.value, 5);
  EXPECT_EQ(find_family(families, "tether_replayed_bytes_total")->metric[0].counter.value, 4096);
  EXPECT_EQ(find_family(families, "tether_pending_connections")->metric[0].gauge.value, 4);
  // Every family KIP-368 names is there, at 0 where nothing happened.
  for (const char* name :
       {"tether_failed_reauthentication_total", "tether_successful_authentication_no_reauth_total",
        "tether_expired_sessions_killed_total", "tether_expired_session_frames_total",
        "tether_revocations_total", "tether_authentication_throttled_total"}) {
    const auto* family = find_family(families, name);
    ASSERT_NE(family, nullptr) << name;
    EXPECT_EQ(family->metric[0].counter.value, 0) << name;
  }

  const std::string exposition = text(families);
  EXPECT_NE(exposition.find("tether_sessions{state=\"active\"} 2\n"), std::string::npos)
      << exposition;
  EXPECT_NE(exposition.find("tether_sessions{state=\"suspended\"} 1\n"), std::string::npos);
  EXPECT_NE(exposition.find("tether_successful_reauthentication_total 7\n"), std::string::npos);
  EXPECT_NE(exposition.find("tether_reauthentication_latency_seconds_bucket{le=\"0.001\"} 0\n"),
            std::string::npos)
      << exposition;
  EXPECT_NE(exposition.find("tether_reauthentication_latency_seconds_bucket{le=\"0.0025\"} 1\n"),
            std::string::npos);
  EXPECT_NE(exposition.find("tether_reauthentication_latency_seconds_bucket{le=\"0.025\"} 2\n"),
            std::string::npos);
  EXPECT_NE(exposition.find("tether_reauthentication_latency_seconds_bucket{le=\"+Inf\"} 2\n"),
            std::string::npos);
  EXPECT_NE(exposition.find("tether_reauthentication_latency_seconds_count 2\n"),
            std::string::npos);
  EXPECT_NE(exposition.find("tether_metrics_snapshot_timeouts_total 1\n"), std::string::npos);
  EXPECT_NE(exposition.find("tether_build_info{role=\"server\",version=\"" +
                            std::string(transport::tether_version()) + "\"} 1\n"),
            std::string::npos)
      << exposition;
}

TEST(MetricsTest, ClientSnapshotHasNoServerFamilies) {
  MetricsSnapshot snapshot;
  snapshot.role = "client";
  snapshot.sessions.active = 1;
  snapshot.totals.resumes = 2;
  snapshot.totals.reauthentications = 3;
  snapshot.totals.heartbeats_missed = 4;
  const auto families = transport::metric_families(snapshot, "client");
  EXPECT_EQ(find_family(families, "tether_resumes_total")->metric[0].counter.value, 2);
  EXPECT_EQ(
      find_family(families, "tether_successful_reauthentication_total")->metric[0].counter.value,
      3);
  EXPECT_EQ(find_family(families, "tether_heartbeats_missed_total")->metric[0].counter.value, 4);
  EXPECT_EQ(find_family(families, "tether_successful_authentication_total"), nullptr);
  EXPECT_EQ(find_family(families, "tether_reauthentication_latency_seconds"), nullptr);
}

TEST(MetricsTest, WithoutASnapshotOnlyBuildInfoAndTimeouts) {
  const auto families = transport::metric_families(std::nullopt, "server", 3);
  ASSERT_EQ(families.size(), 2u);
  EXPECT_EQ(families[0].name, "tether_build_info");
  EXPECT_EQ(families[1].name, "tether_metrics_snapshot_timeouts_total");
  EXPECT_EQ(families[1].metric[0].counter.value, 3);
}

TEST(MetricsTest, LedgerKeepsTotalsMonotonicAsSessionsComeAndGo) {
  transport::SessionCounterLedger ledger;
  session::SessionStats first;
  first.bytes_replayed = 10;
  first.resumes = 1;
  ledger.begin();
  ledger.observe(id_of(1), first);
  EXPECT_EQ(ledger.finish().bytes_replayed, 10u);

  first.bytes_replayed = 15;
  session::SessionStats second;
  second.bytes_replayed = 1;
  ledger.begin();
  ledger.observe(id_of(1), first);
  ledger.observe(id_of(2), second);
  EXPECT_EQ(ledger.finish().bytes_replayed, 16u);

  // The first session is gone: its last counts stay in the total.
  second.bytes_replayed = 5;
  ledger.begin();
  ledger.observe(id_of(2), second);
  const auto totals = ledger.finish();
  EXPECT_EQ(totals.bytes_replayed, 20u);
  EXPECT_EQ(totals.resumes, 1u);

  ledger.begin();
  EXPECT_EQ(ledger.finish().bytes_replayed, 20u);
}

TEST(MetricsTest, ParsesListenAddresses) {
  const auto v4 = transport::parse_metrics_listen("127.0.0.1:9100");
  ASSERT_TRUE(v4) << v4.error();
  EXPECT_EQ(v4->port(), 9100);
  const auto v6 = transport::parse_metrics_listen("[::1]:0");
  ASSERT_TRUE(v6) << v6.error();
  EXPECT_TRUE(v6->address().is_v6());
  EXPECT_EQ(v6->port(), 0);
  for (const char* bad : {"localhost:9100", "::1:9100", "127.0.0.1:70000", "127.0.0.1",
                          "127.0.0.1:x", ":9100", "[::1]9100", "127.0.0.1:-1"}) {
    const auto parsed = transport::parse_metrics_listen(bad);
    EXPECT_FALSE(parsed) << bad;
    if (!parsed) {
      EXPECT_NE(parsed.error().find(std::string("'") + bad + "'"), std::string::npos);
    }
  }
}

// GET /metrics over HTTP/1.0 on loopback; the whole answer (headers and body).
std::string scrape(std::uint16_t port) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  asio::write(socket, asio::buffer(request));
  std::string answer;
  std::error_code error;
  std::array<char, 4096> buffer{};
  while (!error) {
    const std::size_t count = socket.read_some(asio::buffer(buffer), error);
    answer.append(buffer.data(), count);
  }
  return answer;
}

TEST(MetricsTest, ExporterTakesTheSnapshotOnTheIoThread) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread::id snapshot_thread;
  int calls = 0;
  auto exporter = transport::MetricsExporter::start(io, "127.0.0.1:0", "server", [&] {
    snapshot_thread = std::this_thread::get_id();
    MetricsSnapshot snapshot;
    snapshot.role = "server";
    snapshot.sessions.active = 1;
    snapshot.server = transport::ServerMetrics{};
    snapshot.server->endpoint.authentications_succeeded = static_cast<std::uint64_t>(++calls);
    return snapshot;
  });
  ASSERT_TRUE(exporter) << exporter.error();
  const std::uint16_t port = (*exporter)->endpoint().port();
  ASSERT_NE(port, 0);
  std::thread runner([&] { io.run(); });
  const std::thread::id runner_id = runner.get_id();
  const std::string first = scrape(port);
  const std::string second = scrape(port);
  work.reset();
  io.stop();
  runner.join();
  EXPECT_NE(first.find("200 OK"), std::string::npos) << first;
  EXPECT_NE(first.find("tether_successful_authentication_total 1\n"), std::string::npos) << first;
  EXPECT_NE(second.find("tether_successful_authentication_total 2\n"), std::string::npos);
  EXPECT_NE(first.find("tether_sessions{state=\"active\"} 1\n"), std::string::npos);
  EXPECT_EQ(snapshot_thread, runner_id);
}

TEST(MetricsTest, ExporterAnswersWhenTheIoThreadStalls) {
  asio::io_context io;  // never run: the snapshot task never runs
  auto exporter = transport::MetricsExporter::start(
      io, "127.0.0.1:0", "client", [] { return MetricsSnapshot{}; }, 100ms);
  ASSERT_TRUE(exporter) << exporter.error();
  const std::string answer = scrape((*exporter)->endpoint().port());
  EXPECT_NE(answer.find("tether_metrics_snapshot_timeouts_total 1\n"), std::string::npos) << answer;
  EXPECT_NE(answer.find("tether_build_info{role=\"client\""), std::string::npos);
  EXPECT_EQ(answer.find("tether_sessions"), std::string::npos);
}

TEST(MetricsTest, PortInUseIsAClearError) {
  asio::io_context io;
  asio::ip::tcp::acceptor taken(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = taken.local_endpoint().port();
  auto exporter = transport::MetricsExporter::start(io, "127.0.0.1:" + std::to_string(port),
                                                    "server", [] { return MetricsSnapshot{}; });
  ASSERT_FALSE(exporter);
  EXPECT_NE(exporter.error().find("cannot listen"), std::string::npos) << exporter.error();
  EXPECT_NE(exporter.error().find(std::to_string(port)), std::string::npos) << exporter.error();
  // IPv6: refused with a reason when the HTTP server lacks it (Debian's civetweb), else served.
  auto v6 =
      transport::MetricsExporter::start(io, "[::1]:0", "server", [] { return MetricsSnapshot{}; });
  if (!v6) {  // (or loopback has no IPv6 here: the trial bind says why)
    EXPECT_NE(v6.error().find("cannot listen"), std::string::npos) << v6.error();
  }
  // An address that is not this host's.
  auto foreign = transport::MetricsExporter::start(io, "192.0.2.1:9100", "server",
                                                   [] { return MetricsSnapshot{}; });
  ASSERT_FALSE(foreign);
  EXPECT_NE(foreign.error().find("cannot listen"), std::string::npos) << foreign.error();
}

}  // namespace
}  // namespace tether
