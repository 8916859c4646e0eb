#include "transport/metrics.hpp"

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <exception>
#include <limits>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

#include "transport/log_safety.hpp"
#include "transport/runtime.hpp"

#ifndef TETHER_VERSION
#define TETHER_VERSION "unknown"
#endif

namespace tether::transport {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

double value(std::uint64_t count) {
  return static_cast<double>(count);
}

class Families {
 public:
  // A family with one sample without labels.
  void single(std::string name, std::string help, MetricType type, double number) {
    ClientMetric metric;
    set(metric, type, number);
    families_.push_back(MetricFamily{std::move(name), std::move(help), type, {std::move(metric)}});
  }
  void counter(std::string name, std::string help, std::uint64_t count) {
    single(std::move(name), std::move(help), MetricType::Counter, value(count));
  }
  void gauge(std::string name, std::string help, std::uint64_t number) {
    single(std::move(name), std::move(help), MetricType::Gauge, value(number));
  }
  // A family with one sample per value of the label `label`.
  void labelled(std::string name, std::string help, MetricType type, const std::string& label,
                std::initializer_list<std::pair<const char*, std::uint64_t>> samples) {
    MetricFamily family{std::move(name), std::move(help), type, {}};
    for (const auto& [label_value, number] : samples) {
      ClientMetric metric;
      metric.label.push_back({label, label_value});
      set(metric, type, value(number));
      family.metric.push_back(std::move(metric));
    }
    families_.push_back(std::move(family));
  }
  void histogram(std::string name, std::string help, const session::LatencyHistogram& histogram) {
    ClientMetric metric;
    metric.histogram = prometheus_histogram(histogram);
    families_.push_back(
        MetricFamily{std::move(name), std::move(help), MetricType::Histogram, {std::move(metric)}});
  }
  void add(MetricFamily family) { families_.push_back(std::move(family)); }
  std::vector<MetricFamily> take() { return std::move(families_); }

 private:
  static void set(ClientMetric& metric, MetricType type, double number) {
    if (type == MetricType::Counter) {
      metric.counter.value = number;
    } else {
      metric.gauge.value = number;
    }
  }
  std::vector<MetricFamily> families_;
};

void add_server_families(Families& out, const ServerMetrics& server) {
  const session::EndpointStats& stats = server.endpoint;
  out.counter("tether_successful_authentication_total", "Sessions authenticated successfully",
              stats.authentications_succeeded);
  out.counter("tether_failed_authentication_total",
              "Authentications refused: wrong credentials, malformed exchanges, timeouts",
              stats.authentication_failures);
  out.counter("tether_authentication_throttled_total",
              "Authentication attempts refused unheard after too many recent failures",
              stats.authentications_throttled);
  out.counter("tether_successful_reauthentication_total",
              "Re-authentications completed in place on a live session",
              stats.reauthentications_succeeded);
  out.counter("tether_failed_reauthentication_total",
              "Re-authentications refused, malformed, timed out or changing the identity",
              stats.reauthentication_failures);
  out.histogram("tether_reauthentication_latency_seconds",
                "Re-authentication exchanges, first frame to result, as the server sees them",
                stats.reauthentication_latency);
  out.counter("tether_successful_authentication_no_reauth_total",
              "Sessions authenticated by a client that cannot re-authenticate",
              stats.authentications_without_reauthentication);
  out.counter("tether_expired_sessions_killed_total",
              "Sessions ended because their credential's lifetime passed",
              stats.expired_sessions_closed);
  out.counter("tether_expired_session_frames_total",
              "Frames carried on sessions past their lifetime (audit mode)",
              stats.frames_on_expired_sessions);
  out.counter("tether_revocations_total", "Sessions ended by an operator's revocation",
              stats.sessions_revoked);
  out.counter("tether_connections_accepted_total", "Transport connections accepted",
              stats.connections_accepted);
  out.counter("tether_sessions_created_total", "Sessions created", stats.sessions_created);
  out.counter("tether_resumes_rejected_total",
              "Resume attempts refused: forged, replayed or stale proofs, bad positions",
              stats.resumes_rejected);
  out.counter("tether_handshake_failures_total",
              "Connections whose first frame was malformed, unexpected, late or of a bad version",
              stats.handshake_failures);
  out.counter("tether_sessions_refused_total", "New sessions refused because a limit was reached",
              stats.sessions_refused);
  out.counter("tether_sessions_evicted_total", "Suspended sessions freed to make room",
              stats.sessions_evicted);
  out.counter("tether_pending_connections_refused_total",
              "Connections refused because too many had not finished their handshake",
              stats.pending_connections_refused);
  out.counter("tether_connections_refused_total",
              "Connections closed at once by the admission limits (total or per source)",
              server.connections_refused);
  out.counter("tether_stateless_resets_sent_total", "Stateless resets sent for unknown sessions",
              stats.stateless_resets_sent);
  out.labelled(
      "tether_fast_closes_total", "Fast-close requests, by result", MetricType::Counter, "result",
      {{"accepted", stats.fast_closes_accepted}, {"rejected", stats.fast_closes_rejected}});
  out.gauge("tether_buffered_bytes",
            "Stream bytes all sessions hold now (replay buffers and unread received bytes)",
            server.buffered_bytes);
  out.gauge("tether_buffered_bytes_limit", "The bound on tether_buffered_bytes",
            server.max_buffered_bytes);
  out.gauge("tether_pending_connections", "Connections that have not finished their handshake",
            server.pending_connections);
}

}  // namespace

void SessionCounterLedger::observe(const session::SessionId& id,
                                   const session::SessionStats& stats) {
  current_[id] = SessionCounterTotals::of(stats);
}

SessionCounterTotals SessionCounterLedger::finish() {
  for (const auto& [id, counts] : previous_) {
    if (!current_.contains(id)) retired_.add(counts);
  }
  previous_.swap(current_);
  current_.clear();
  SessionCounterTotals totals = retired_;
  for (const auto& [id, counts] : previous_) totals.add(counts);
  return totals;
}

void count_session_state(const session::Session& session, SessionStateCounts& counts) {
  switch (session.phase()) {
    case session::Phase::kConnecting:
      ++counts.connecting;
      return;
    case session::Phase::kOpen:
      ++(session.suspended() ? counts.suspended : counts.active);
      return;
    case session::Phase::kClosed:
      ++counts.closed;
      return;
  }
}

MetricsSnapshot server_metrics(ServerRuntime& runtime) {
  MetricsSnapshot snapshot;
  snapshot.role = "server";
  // Read through the const endpoint: a scrape does not make the server re-read sessions.
  const session::ServerEndpoint& core = runtime.endpoint();
  // Exact: what freed sessions carried (the endpoint adds it up as it frees them) plus the live.
  SessionCounterTotals& totals = snapshot.totals;
  totals = core.stats().freed_sessions;
  for (const auto& id : core.session_ids()) {
    if (const session::Session* session = core.find(id)) {
      count_session_state(*session, snapshot.sessions);
      totals.add(session->stats());
    }
  }
  ServerMetrics server;
  server.endpoint = core.stats();
  server.buffered_bytes = core.budget().used();
  server.max_buffered_bytes = core.budget().limit();
  server.pending_connections = runtime.admission().pending();
  server.connections_refused = runtime.connections_refused();
  snapshot.server = server;
  return snapshot;
}

MetricsSnapshot client_metrics(ClientRuntime& runtime, SessionCounterLedger& ledger,
                               std::string role) {
  MetricsSnapshot snapshot;
  snapshot.role = std::move(role);
  const session::Session& session = runtime.session();
  count_session_state(session, snapshot.sessions);
  ledger.begin();
  ledger.observe(session.id(), session.stats());
  snapshot.totals = ledger.finish();
  return snapshot;
}

ClientMetric::Histogram prometheus_histogram(const session::LatencyHistogram& histogram) {
  ClientMetric::Histogram out;
  out.sample_count = histogram.count();
  out.sample_sum = histogram.sum_milliseconds() / 1000;
  std::uint64_t cumulative = 0;
  const auto& bounds = session::LatencyHistogram::kUpperBoundsMilliseconds;
  for (std::size_t index = 0; index < bounds.size(); ++index) {
    cumulative += histogram.bucket_count(index);
    out.bucket.push_back({cumulative, bounds[index] / 1000});
  }
  cumulative += histogram.bucket_count(bounds.size());
  out.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
  return out;
}

std::vector<MetricFamily> metric_families(const std::optional<MetricsSnapshot>& snapshot,
                                          std::string_view role, std::uint64_t snapshot_timeouts) {
  Families out;
  ClientMetric build;
  build.label = {{"role", std::string(role)}, {"version", std::string(tether_version())}};
  build.gauge.value = 1;
  out.add(MetricFamily{"tether_build_info",
                       "tether's version and role (always 1)",
                       MetricType::Gauge,
                       {std::move(build)}});
  out.counter("tether_metrics_snapshot_timeouts_total",
              "Scrapes answered with an older snapshot: the io thread did not answer within 1 s",
              snapshot_timeouts);
  if (!snapshot) return out.take();
  const SessionStateCounts& sessions = snapshot->sessions;
  out.labelled("tether_sessions", "Sessions now, by state", MetricType::Gauge, "state",
               {{"connecting", sessions.connecting},
                {"active", sessions.active},
                {"suspended", sessions.suspended},
                {"closed", sessions.closed}});
  const SessionCounterTotals& totals = snapshot->totals;
  out.counter("tether_sent_bytes_total", "Stream payload bytes put on the wire, replays included",
              totals.bytes_sent);
  out.counter("tether_replayed_bytes_total",
              "Stream payload bytes sent again after a connection changed", totals.bytes_replayed);
  out.counter("tether_received_bytes_total", "Stream payload bytes delivered (each byte once)",
              totals.bytes_received);
  out.counter("tether_heartbeats_missed_total", "Heartbeats that went unanswered",
              totals.heartbeats_missed);
  if (snapshot->server) {
    out.counter("tether_resumes_total", "Sessions resumed on a new connection",
                snapshot->server->endpoint.resumes_accepted);
    add_server_families(out, *snapshot->server);
  } else {
    out.counter("tether_resumes_total", "Sessions resumed on a new connection", totals.resumes);
    out.counter("tether_successful_reauthentication_total",
                "Re-authentications completed in place on a live session",
                totals.reauthentications);
  }
  return out.take();
}

std::string_view tether_version() {
  return TETHER_VERSION;
}

Expected<asio::ip::tcp::endpoint, std::string> parse_metrics_listen(std::string_view text) {
  const auto invalid = [&](std::string_view why) {
    return make_unexpected(fmt::format("'{}': {}", escape_for_log(std::string(text)), why));
  };
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return invalid("expected [IPV6]:PORT");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return invalid("expected ADDRESS:PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return invalid("an IPv6 address goes in brackets: [ADDRESS]:PORT");
  }
  unsigned number = 0;
  const auto parsed = std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || parsed.ec != std::errc() || parsed.ptr != port.data() + port.size() ||
      number > 65535) {
    return invalid("the port is not a number from 0 to 65535");
  }
  std::error_code error;
  const auto address = asio::ip::make_address(std::string(host), error);
  if (error || host.empty()) return invalid("not an IP address (names are not resolved)");
  return asio::ip::tcp::endpoint(address, static_cast<std::uint16_t>(number));
}

struct MetricsExporter::Shared {
  Shared(asio::io_context& context, std::string name, Snapshot take, std::chrono::milliseconds wait)
      : io(context), role(std::move(name)), snapshot(std::move(take)), timeout(wait) {}
  asio::io_context& io;
  const std::string role;
  Snapshot snapshot;  // io thread only
  const std::chrono::milliseconds timeout;
  bool alive = true;  // io thread only: false once the exporter is destroyed

  std::mutex mutex;  // guards what follows
  std::condition_variable changed;
  std::optional<MetricsSnapshot> latest;
  std::uint64_t generation = 0;  // snapshots taken
  bool requested = false;        // a snapshot task is queued and has not run yet
  bool stopping = false;
  std::uint64_t timeouts = 0;
};

// What prometheus-cpp's HTTP threads call: a snapshot from the io thread, then the conversion.
class MetricsExporter::Collector final : public prometheus::Collectable {
 public:
  explicit Collector(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  std::vector<MetricFamily> Collect() const override {
    std::optional<MetricsSnapshot> snapshot;
    std::uint64_t timeouts = 0;
    {
      std::unique_lock lock(shared_->mutex);
      const std::uint64_t wanted = shared_->generation + 1;
      if (!shared_->requested && !shared_->stopping) {
        shared_->requested = true;
        asio::post(shared_->io, [shared = shared_] {
          if (!shared->alive) return;
          MetricsSnapshot taken = shared->snapshot();
          const std::lock_guard guard(shared->mutex);
          shared->latest = std::move(taken);
          ++shared->generation;
          shared->requested = false;
          shared->changed.notify_all();
        });
      }
      const bool fresh = shared_->changed.wait_for(lock, shared_->timeout, [&] {
        return shared_->stopping || shared_->generation >= wanted;
      });
      if (!fresh) ++shared_->timeouts;
      snapshot = shared_->latest;
      timeouts = shared_->timeouts;
    }
    return metric_families(snapshot, shared_->role, timeouts);
  }

 private:
  std::shared_ptr<Shared> shared_;
};

Expected<std::unique_ptr<MetricsExporter>, std::string> MetricsExporter::start(
    asio::io_context& io, std::string_view listen, std::string role, Snapshot snapshot,
    std::chrono::milliseconds timeout) {
  auto endpoint = parse_metrics_listen(listen);
  if (!endpoint) return make_unexpected("--metrics-listen " + endpoint.error());
  const std::string name =
      endpoint->address().is_v6()
          ? fmt::format("[{}]:{}", endpoint->address().to_string(), endpoint->port())
          : fmt::format("{}:{}", endpoint->address().to_string(), endpoint->port());
  // A trial bind first, for a precise reason (the HTTP server only says that it failed).
  {
    asio::ip::tcp::acceptor trial(io);
    std::error_code error;
    trial.open(endpoint->protocol(), error);
    if (!error) trial.set_option(asio::socket_base::reuse_address(true), error);
    if (!error) trial.bind(*endpoint, error);
    if (error)
      return make_unexpected(
          fmt::format("--metrics-listen {}: cannot listen: {}", name, error.message()));
  }
  std::unique_ptr<MetricsExporter> exporter(new MetricsExporter());
  exporter->shared_ = std::make_shared<Shared>(io, std::move(role), std::move(snapshot), timeout);
  exporter->collector_ = std::make_shared<Collector>(exporter->shared_);
  try {
    // Two threads serve scrapes; a client that sends its request slowly is cut after 10 s.
    exporter->exposer_ = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", name, "num_threads", "2", "request_timeout_ms", "10000"});
    exporter->exposer_->RegisterCollectable(exporter->collector_);
    const auto ports = exporter->exposer_->GetListeningPorts();
    exporter->endpoint_ = *endpoint;
    if (!ports.empty()) exporter->endpoint_.port(static_cast<std::uint16_t>(ports.front()));
  } catch (const std::exception& failure) {
    // The trial bind worked, so the address is usable: Debian's civetweb has no IPv6.
    if (endpoint->address().is_v6()) {
      return make_unexpected(fmt::format(
          "--metrics-listen {}: cannot listen: the HTTP server (civetweb) was built without "
          "IPv6; use an IPv4 address",
          name));
    }
    return make_unexpected(
        fmt::format("--metrics-listen {}: cannot listen: {}", name, failure.what()));
  }
  return exporter;
}

MetricsExporter::~MetricsExporter() {
  if (shared_) {
    shared_->alive = false;
    const std::lock_guard guard(shared_->mutex);
    shared_->stopping = true;
    shared_->changed.notify_all();
  }
  if (!exposer_) return;
  // civetweb's listening thread sees the stop only when its poll() returns, every 2 s: connections
  // of our own wake it at once (each poke is closed unanswered; they stop once the port is closed).
  asio::ip::tcp::endpoint target = endpoint_;
  if (target.address().is_unspecified()) {
    target.address(target.address().is_v6() ? asio::ip::address(asio::ip::address_v6::loopback())
                                            : asio::ip::address(asio::ip::address_v4::loopback()));
  }
  std::atomic<bool> stopped{false};
  std::thread waker([&stopped, target] {
    asio::io_context local;
    for (int attempt = 0; attempt < 150 && !stopped; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      asio::ip::tcp::socket socket(local);
      std::error_code error;
      socket.connect(target, error);
      if (error) return;
    }
  });
  exposer_.reset();  // joins the HTTP threads
  stopped = true;
  waker.join();
}

}  // namespace tether::transport
