// MetricsExporter serves a running tether's counters at http://ADDR:PORT/metrics in Prometheus
// text format (prometheus-cpp's HTTP server, on threads of its own); the rest of this header is
// the plain snapshot it serves and the conversion of that snapshot into metric families.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/metric_family.h>
#include <asio.hpp>

#include "session/latency_histogram.hpp"
#include "session/server_endpoint.hpp"
#include "session/session.hpp"
#include "tether/expected.hpp"

namespace prometheus {
class Exposer;
}

namespace tether::transport {

class ClientRuntime;
class ServerRuntime;

// Sessions by state, as `tether status` names them ("open" is exported as "active").
struct SessionStateCounts {
  std::uint64_t connecting = 0;
  std::uint64_t active = 0;  // open, with a live connection
  std::uint64_t suspended = 0;
  std::uint64_t closed = 0;  // closed, not yet freed
};

// Per-session counters summed over every session this process has had.
// Per-session counters summed over sessions (the core's SessionCounters).
using SessionCounterTotals = session::SessionCounters;

// What a server adds: the endpoint's counters and how close it is to its bounds.
struct ServerMetrics {
  session::EndpointStats endpoint;
  std::uint64_t buffered_bytes = 0;
  std::uint64_t max_buffered_bytes = 0;
  std::uint64_t pending_connections = 0;
  std::uint64_t connections_refused = 0;  // by the runtime's admission limits
};

// One scrape's worth of figures: plain values, copied on the io thread. Its size does not depend
// on the number of sessions (nor on anything a peer sends).
struct MetricsSnapshot {
  std::string role;  // "server", "client" or "stdio"
  SessionStateCounts sessions;
  SessionCounterTotals totals;
  std::optional<ServerMetrics> server;
};

// Keeps a client's per-session counters monotonic across the sessions it replaces (a server needs
// none: its endpoint adds up freed sessions exactly): it remembers the counters last seen of each
// session and adds those of a session that is gone to a running total. A session's counts after the
// last snapshot before it was freed are not seen. Holds one entry per live session; io thread only.
class SessionCounterLedger {
 public:
  // Starts a pass; then observe() every live session once, then finish().
  void begin() { current_.clear(); }
  void observe(const session::SessionId& id, const session::SessionStats& stats);
  // The totals: sessions gone (at their last observation) plus those observed in this pass.
  [[nodiscard]] SessionCounterTotals finish();

 private:
  SessionCounterTotals retired_;
  std::map<session::SessionId, SessionCounterTotals> previous_;
  std::map<session::SessionId, SessionCounterTotals> current_;
};

// Counts `session` into `counts` by its state.
void count_session_state(const session::Session& session, SessionStateCounts& counts);

// The snapshots of the two runtimes (call on their io thread).
[[nodiscard]] MetricsSnapshot server_metrics(ServerRuntime& runtime);
[[nodiscard]] MetricsSnapshot client_metrics(ClientRuntime& runtime, SessionCounterLedger& ledger,
                                             std::string role = "client");

// The histogram in Prometheus form: bounds in seconds, cumulative counts, a last +Inf bucket.
[[nodiscard]] prometheus::ClientMetric::Histogram prometheus_histogram(
    const session::LatencyHistogram& histogram);

// The metric families of a snapshot (names tether_*, Kafka's in Prometheus form; ARCHITECTURE.md,
// "Metrics"). `snapshot_timeouts` counts scrapes that were answered with an older snapshot; with
// no snapshot at all only tether_build_info and that counter are exported.
[[nodiscard]] std::vector<prometheus::MetricFamily> metric_families(
    const std::optional<MetricsSnapshot>& snapshot, std::string_view role,
    std::uint64_t snapshot_timeouts = 0);

// tether's version (the CMake project version).
[[nodiscard]] std::string_view tether_version();

// ADDR:PORT or [IPV6]:PORT (port 0: any free port) as an endpoint, or why not (the message quotes
// `text`, escaped).
[[nodiscard]] Expected<asio::ip::tcp::endpoint, std::string> parse_metrics_listen(
    std::string_view text);

class MetricsExporter {
 public:
  // Called on the io thread only; must not block.
  using Snapshot = std::function<MetricsSnapshot()>;

  // Listens on `listen` (parse_metrics_listen) and serves /metrics: each scrape posts `snapshot`
  // to `io` and waits at most `timeout` for it, else serves the last snapshot taken. At most one
  // snapshot task is queued at a time. The error names the address and why (not an address, in
  // use, not local, IPv6 where civetweb lacks it). Never throws.
  static Expected<std::unique_ptr<MetricsExporter>, std::string> start(
      asio::io_context& io, std::string_view listen, std::string role, Snapshot snapshot,
      std::chrono::milliseconds timeout = std::chrono::seconds(1));
  // Stops the HTTP server (a scrape waiting for the io thread returns at once). Call on the io
  // thread's side, after io_context::run() returned or from a handler.
  ~MetricsExporter();
  MetricsExporter(const MetricsExporter&) = delete;
  MetricsExporter& operator=(const MetricsExporter&) = delete;

  // Where it listens (the port the kernel chose for port 0).
  [[nodiscard]] const asio::ip::tcp::endpoint& endpoint() const { return endpoint_; }

  struct Shared;
  class Collector;

 private:
  MetricsExporter() = default;

  std::shared_ptr<Shared> shared_;
  std::shared_ptr<Collector> collector_;  // registered with the exposer by weak_ptr
  asio::ip::tcp::endpoint endpoint_;
  std::unique_ptr<prometheus::Exposer> exposer_;  // declared last: destroyed first
};

}  // namespace tether::transport
