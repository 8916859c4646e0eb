// load_generator opens many real TLS sessions to a running `tether server` from one process,
// through the library's ClientRuntime (one per session, all on one io_context), keeps them idle
// with heartbeats, and measures the server: RSS per idle session, CPU while they idle, the
// ping-pong round trip of one extra active session (an echo through a tunnelled stream), and how
// fast the sessions were established. It reports (see bench/README.md); its exit status says only
// whether every level was established and every round trip answered.
//
// The server must allow streams to the generator's echo listener (--echo-port): start it with
// `--allow 127.0.0.1:PORT`. bench/scale_benchmark.sh starts both.
//
// With --establish N it measures session establishment instead (bench/auth_benchmark.sh): N
// sessions, at most --concurrency at once, each closed gracefully as soon as it is established;
// for each, the time from starting the connection (TCP connect) to the Welcome; over all of them,
// the server's CPU (utime + stime from /proc) and the generator's own, reported apart (the client's
// side of an exchange, such as SCRAM's PBKDF2, is the generator's cost). The credential options
// (--user, --password-file, --token-file, --cert/--key, --auth-mechanism) authenticate every
// session in both modes, each session as a new client (its own credential, so SCRAM derives the
// salted password every time) unless --reuse-credential. The exit status says whether all N were
// established, and, with a credential, authenticated (and with --expect-principal, as whom).
//
// With --reauthenticate SECONDS it measures re-authentication (bench/reauth_benchmark.sh): it
// keeps --sessions authenticated sessions open against a server whose lifetime (--max-reauth)
// makes the core re-authenticate them over and over, plus --probes sessions on a thread of their
// own that each write a 16-byte timestamped record every --probe-interval ms through a tunnelled
// stream to an echo listener (--echo-port + index; the server must --allow it). Over the window it
// reports each re-authentication's latency as the client measured it (events::Reauthenticated),
// their count and rate, the server's CPU (/proc) per re-authentication, and per probe the gaps
// between consecutive echoed records' arrivals and their round trips. The exit status says whether
// every session stayed open (a failed re-authentication closes its session) and every probe's
// records all came back in order.

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <nlohmann/json.hpp>

#include "auth/credentials.hpp"
#include "auth/mechanism.hpp"
#include "transport/runtime.hpp"
#include "transport/tls.hpp"
#include "tunnel/tunnel_protocol.hpp"

namespace {

using namespace tether;
using Clock = std::chrono::steady_clock;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

struct Arguments {
  std::string host = "127.0.0.1";
  std::string port;
  std::string fingerprint;
  int server_pid = 0;
  std::uint16_t echo_port = 0;
  std::vector<std::size_t> levels{0, 1000};
  std::size_t sessions_per_source = 10000;
  unsigned first_source = 2;  // 127.0.0.<first_source> upwards
  std::size_t window = 64;    // sessions connecting at once
  unsigned heartbeat_interval_ms = 30000;
  double idle_window_s = 30;
  std::size_t pings = 1000;
  unsigned ping_gap_ms = 20;
  double ping_time_s = 60;  // at most this long per level
  double settle_s = 5;
  double establish_timeout_s = 1200;
  bool resume_tls = false;
  std::string json_file;
  // Establishment mode (--establish N): N sessions one after another, --concurrency at once.
  std::size_t establish = 0;
  std::size_t concurrency = 1;
  std::size_t warmup = 5;  // sessions before the measurement (lazy initialisation, caches)
  // Credentials (every session authenticates with them; none: the server runs --auth none).
  std::string user;
  std::string password_file;
  std::string token_file;
  std::string certificate;
  std::string key;
  std::string auth_mechanism;
  std::string expect_principal;
  bool reuse_credential = false;
  // Re-authentication mode (--reauthenticate SECONDS): --sessions sessions kept open, --probes of
  // them carrying a timestamped stream every --probe-interval milliseconds.
  double reauthenticate_s = 0;
  std::size_t sessions = 1000;
  std::size_t probes = 1;
  double probe_interval_ms = 1;
  bool probe_realtime = false;
};

// The client credential the arguments describe (see auth/credentials.hpp), read once.
struct Credentials {
  auth::ClientCredentialConfig config;
  bool any = false;
};

Expected<Credentials, std::string> read_credentials(const Arguments& arguments) {
  Credentials credentials;
  auto& config = credentials.config;
  if (!arguments.auth_mechanism.empty()) {
    config.mechanism = auth::mechanism_named(arguments.auth_mechanism);
    if (!config.mechanism)
      return make_unexpected("--auth-mechanism: unknown mechanism " + arguments.auth_mechanism);
  }
  if (!arguments.user.empty()) {
    if (arguments.password_file.empty())
      return make_unexpected(std::string("--user needs --password-file"));
    std::ifstream file(arguments.password_file);
    std::string password;
    if (!std::getline(file, password) || password.empty())
      return make_unexpected("--password-file: no password on the first line of " +
                             arguments.password_file);
    config.user = arguments.user;
    config.password = std::move(password);
  }
  config.token_file = arguments.token_file;
  config.certificate = !arguments.certificate.empty();
  if (arguments.certificate.empty() != arguments.key.empty())
    return make_unexpected(std::string("--cert and --key go together"));
  credentials.any = !config.user.empty() || !config.token_file.empty() || config.certificate;
  // Checked once here, so that a contradiction is an error before any session starts.
  auto authenticator = auth::make_client_authenticator(config);
  if (!authenticator) return make_unexpected(authenticator.error());
  return credentials;
}

// ---- /proc figures

std::optional<std::uint64_t> rss_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  }
  return std::nullopt;
}

// utime + stime of `pid`, in seconds.
std::optional<double> cpu_seconds(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int index = 3; fields >> field; ++index) {  // field 3 is the state
    if (index == 14) utime = std::stoull(field);
    if (index == 15) {
      stime = std::stoull(field);
      return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
  }
  return std::nullopt;
}

// Raises the descriptor limit: as root up to fs.nr_open (both limits), otherwise the soft limit to
// the hard one. Returns the soft limit now in force.
std::uint64_t raise_descriptor_limit(std::uint64_t wanted) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_max < wanted && ::geteuid() == 0) {
    std::uint64_t ceiling = 1048576;
    std::ifstream("/proc/sys/fs/nr_open") >> ceiling;
    rlimit raised{std::min<std::uint64_t>(wanted, ceiling),
                  std::min<std::uint64_t>(wanted, ceiling)};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised{limit.rlim_max, limit.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return limit.rlim_cur;
}

// ---- Idle sessions

// Counts what the idle sessions report; they do nothing else.
class IdleObserver final : public transport::SessionObserver {
 public:
  void on_event(const session::SessionId&, session::Session*,
                const session::Event& event) override {
    if (std::holds_alternative<session::events::Established>(event)) {
      ++established;
      --connecting;
    } else if (std::holds_alternative<session::events::Closed>(event)) {
      ++closed;  // any Closed stops the benchmark: the server refused or lost a session
    } else if (std::holds_alternative<session::events::Suspended>(event)) {
      ++suspended;
    } else if (std::holds_alternative<session::events::Resumed>(event)) {
      ++resumed;
    }
  }
  void on_fatal(const transport::TransportError& error) override {
    ++fatal;
    if (fatal == 1) spdlog::error("idle session: {}", error.message);
  }
  std::size_t established = 0, closed = 0, suspended = 0, resumed = 0, fatal = 0;
  std::size_t connecting = 0;  // started, not yet established
};

// ---- The active session: an echo through one tunnelled stream

class ActiveSession final : public transport::SessionObserver {
 public:
  ActiveSession(asio::io_context& io, transport::ClientOptions options, std::uint16_t echo_port)
      : runtime_(io, std::move(options), *this), echo_port_(echo_port), signal_(io) {
    signal_.expires_at(Clock::time_point::max());
  }
  void start() { runtime_.start(); }
  void stop() { runtime_.stop(); }

  // Waits until the stream's reply arrived (the echo target is connected); false if it failed.
  asio::awaitable<bool> ready() {
    while (!connected_ && !failed_) co_await wait();
    co_return connected_;
  }

  // One round trip of `size` bytes: written to the stream, echoed, read back. nullopt on failure
  // or when the echo did not come back by `give_up` (it is then awaited, untimed, before the next).
  asio::awaitable<std::optional<Clock::duration>> ping(std::size_t size,
                                                       Clock::time_point give_up) {
    while (received_ < sent_ && !failed_) co_await wait(Clock::time_point::max());
    std::vector<std::byte> message(size, std::byte{0x5a});
    const auto started = Clock::now();
    auto written = runtime_.session().write(stream_, message, session::Clock::now());
    if (!written || *written != size) co_return std::nullopt;
    sent_ += size;
    runtime_.wake();
    while (received_ < sent_ && !failed_ && Clock::now() < give_up) co_await wait(give_up);
    if (failed_ || received_ < sent_) co_return std::nullopt;
    co_return Clock::now() - started;
  }
  [[nodiscard]] bool failed() const { return failed_; }

  void on_event(const session::SessionId&, session::Session* session,
                const session::Event& event) override {
    namespace events = session::events;
    if (std::holds_alternative<events::Established>(event)) {
      auto opened = session->open_stream(0, session::Clock::now());
      if (!opened) return fail("cannot open the echo stream");
      stream_ = *opened;
      const auto request = tunnel::encode(
          tunnel::StreamRequest{tunnel::RequestKind::kConnect, "127.0.0.1", echo_port_});
      auto written = session->write(stream_, request, session::Clock::now());
      if (!written || *written != request.size()) return fail("cannot write the stream request");
    } else if (const auto* readable = std::get_if<events::StreamReadable>(&event)) {
      if (readable->stream != stream_) return;
      std::array<std::byte, 4096> buffer{};
      while (true) {
        auto read = session->read(stream_, buffer, session::Clock::now());
        if (!read || read->bytes == 0) break;
        take(std::span(buffer).first(read->bytes));
      }
    } else if (std::holds_alternative<events::Closed>(event) ||
               std::holds_alternative<events::StreamReset>(event) ||
               std::holds_alternative<events::StreamFinished>(event)) {
      fail("the active session or its stream ended");
    }
  }
  void on_fatal(const transport::TransportError& error) override { fail(error.message); }

 private:
  void take(std::span<const std::byte> bytes) {
    if (!connected_) {
      header_.insert(header_.end(), bytes.begin(), bytes.end());
      std::size_t consumed = 0;
      auto reply = tunnel::parse_reply(header_, consumed);
      if (!reply) return fail("malformed reply: " + reply.error());
      if (!*reply) return;
      if ((*reply)->status != tunnel::ReplyStatus::kConnected)
        return fail(std::string("echo target refused: ") + tunnel::to_string((*reply)->status));
      connected_ = true;
      received_ += header_.size() - consumed;
    } else {
      received_ += bytes.size();
    }
    signal_.cancel();
  }
  void fail(const std::string& why) {
    if (!failed_) spdlog::error("active session: {}", why);
    failed_ = true;
    signal_.cancel();
  }
  asio::awaitable<void> wait(Clock::time_point until = Clock::time_point::max()) {
    signal_.expires_at(until);
    co_await signal_.async_wait(kTuple);
  }

  transport::ClientRuntime runtime_;
  std::uint16_t echo_port_;
  asio::steady_timer signal_;
  session::StreamId stream_ = 0;
  std::vector<std::byte> header_;
  bool connected_ = false;
  bool failed_ = false;
  std::size_t received_ = 0;  // echoed bytes, since the start
  std::size_t sent_ = 0;
};

asio::awaitable<void> echo_connection(asio::ip::tcp::socket socket) {
  std::array<std::byte, 4096> buffer{};
  while (true) {
    auto [error, count] = co_await socket.async_read_some(asio::buffer(buffer), kTuple);
    if (error) co_return;
    auto [write_error, written] =
        co_await asio::async_write(socket, asio::buffer(buffer.data(), count), kTuple);
    (void)written;
    if (write_error) co_return;
  }
}

asio::awaitable<void> echo_server(asio::ip::tcp::acceptor& acceptor) {
  while (true) {
    auto [error, socket] = co_await acceptor.async_accept(kTuple);
    if (error) co_return;
    socket.set_option(asio::ip::tcp::no_delay(true));
    asio::co_spawn(acceptor.get_executor(), echo_connection(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> sleep_for(Clock::duration duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(duration);
  co_await timer.async_wait(kTuple);
}

double milliseconds(Clock::duration duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

double percentile(std::vector<double> samples, double fraction) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const auto index = static_cast<std::size_t>(fraction * static_cast<double>(samples.size() - 1));
  return samples[index];
}

// The TLS context every session uses (with the client certificate of --cert/--key, if any).
Expected<std::shared_ptr<asio::ssl::context>, std::string> make_context(
    const Arguments& arguments) {
  transport::ServerTrust trust;
  trust.fingerprint = arguments.fingerprint;
  trust.host = arguments.host;
  std::optional<transport::ClientCertificate> certificate;
  if (!arguments.certificate.empty())
    certificate = transport::ClientCertificate{arguments.certificate, arguments.key};
  auto context = transport::make_client_context(trust, certificate);
  if (!context) {
    spdlog::error("{}", context.error());
    return context;
  }
  if (!arguments.resume_tls) {
    // Every session a full handshake, as distinct clients would make: keep no ticket.
    SSL_CTX_set_session_cache_mode((*context)->native_handle(), SSL_SESS_CACHE_OFF);
    SSL_CTX_sess_set_new_cb((*context)->native_handle(), nullptr);
  }
  return context;
}

// Hands each session its client authenticator: a new one per session (a new client, deriving
// SCRAM's salted password itself) or, with --reuse-credential, one shared by all (one client that
// keeps the salted password); nullptr without a credential.
class Authenticators {
 public:
  Authenticators(Credentials credentials, bool reuse) : credentials_(std::move(credentials)) {
    if (reuse && credentials_.any) shared_ = make();
  }
  [[nodiscard]] std::shared_ptr<session::ClientAuthenticator> for_session() const {
    if (!credentials_.any) return nullptr;
    return shared_ ? shared_ : make();
  }
  [[nodiscard]] bool any() const { return credentials_.any; }
  // A credential of its own (never the shared one), e.g. for a session on another thread.
  [[nodiscard]] std::shared_ptr<session::ClientAuthenticator> fresh() const {
    return credentials_.any ? make() : nullptr;
  }

 private:
  [[nodiscard]] std::shared_ptr<session::ClientAuthenticator> make() const {
    auto made = auth::make_client_authenticator(credentials_.config);
    return made ? *made : nullptr;  // checked once by read_credentials
  }
  Credentials credentials_;
  std::shared_ptr<session::ClientAuthenticator> shared_;
};

transport::ClientOptions client_options(
    const Arguments& arguments, std::shared_ptr<asio::ssl::context> context,
    std::string bind_address, std::shared_ptr<session::ClientAuthenticator> authenticator) {
  transport::ClientOptions options;
  options.host = arguments.host;
  options.port = arguments.port;
  options.tls = std::move(context);
  options.session.heartbeat_interval = std::chrono::milliseconds(arguments.heartbeat_interval_ms);
  options.session.missing_heartbeats_allowed = 3;
  options.session.authenticator = std::move(authenticator);
  options.connect_timeout = std::chrono::seconds(60);
  options.bind_address = std::move(bind_address);
  options.watch_network = false;
  return options;
}

std::string source_for(const Arguments& arguments, std::size_t index) {
  const std::size_t octet = arguments.first_source + index / arguments.sessions_per_source;
  return "127.0.0." + std::to_string(std::min<std::size_t>(octet, 254));
}

// ---- The benchmark

class Benchmark {
 public:
  Benchmark(asio::io_context& io, Arguments arguments, Credentials credentials)
      : io_(io),
        arguments_(std::move(arguments)),
        authenticators_(std::move(credentials), arguments_.reuse_credential) {}

  asio::awaitable<void> run() {
    auto context = make_context(arguments_);
    if (!context) co_return;
    context_ = *context;
    asio::ip::tcp::acceptor echo(io_, {asio::ip::make_address("127.0.0.1"), arguments_.echo_port});
    asio::co_spawn(io_, echo_server(echo), asio::detached);

    ActiveSession active(io_, options("127.0.0.1"), arguments_.echo_port);
    active.start();
    if (!co_await active.ready()) {
      finish(echo, active);
      co_return;
    }
    co_await sleep_for(std::chrono::seconds(1));
    for (const std::size_t level : arguments_.levels) {
      nlohmann::json row{{"idle_sessions_wanted", level}};
      const auto rss_before = rss_kib(arguments_.server_pid);
      const std::size_t established_before = observer_.established;
      const auto started = Clock::now();
      const bool reached = co_await establish(level);
      const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
      row["idle_sessions"] = observer_.established;
      if (observer_.established > established_before) {
        row["established_per_second"] =
            static_cast<double>(observer_.established - established_before) /
            std::max(seconds, 1e-9);
        row["establish_seconds"] = seconds;
      }
      if (!reached) {
        row["stopped"] = stop_reason_;
        spdlog::error("stopped at {} idle sessions: {}", observer_.established, stop_reason_);
      }
      co_await sleep_for(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(arguments_.settle_s)));
      const auto rss_after = rss_kib(arguments_.server_pid);
      if (rss_before && rss_after) {
        row["server_rss_kib"] = *rss_after;
        row["server_rss_before_kib"] = *rss_before;
        if (observer_.established > established_before) {
          row["server_rss_per_new_session_kib"] =
              static_cast<double>(static_cast<std::int64_t>(*rss_after) -
                                  static_cast<std::int64_t>(*rss_before)) /
              static_cast<double>(observer_.established - established_before);
        }
        if (rss_baseline_ && observer_.established > 0) {
          row["server_rss_per_idle_session_kib"] =
              static_cast<double>(static_cast<std::int64_t>(*rss_after) -
                                  static_cast<std::int64_t>(*rss_baseline_)) /
              static_cast<double>(observer_.established);
        }
      }
      if (!rss_baseline_) rss_baseline_ = rss_after;
      // The idle window: nothing but heartbeats.
      const auto server_cpu_before = cpu_seconds(arguments_.server_pid);
      const auto own_cpu_before = cpu_seconds(::getpid());
      const auto window_start = Clock::now();
      co_await sleep_for(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(arguments_.idle_window_s)));
      const double window = std::chrono::duration<double>(Clock::now() - window_start).count();
      const auto server_cpu_after = cpu_seconds(arguments_.server_pid);
      const auto own_cpu_after = cpu_seconds(::getpid());
      if (server_cpu_before && server_cpu_after)
        row["server_cpu_percent_idle"] = 100 * (*server_cpu_after - *server_cpu_before) / window;
      if (own_cpu_before && own_cpu_after)
        row["generator_cpu_percent_idle"] = 100 * (*own_cpu_after - *own_cpu_before) / window;
      row["idle_window_seconds"] = window;
      // The active session's round trips.
      std::vector<double> samples;
      const auto pings_end =
          Clock::now() + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(arguments_.ping_time_s));
      for (std::size_t index = 0; index < arguments_.pings && Clock::now() < pings_end; ++index) {
        auto rtt = co_await active.ping(32, pings_end);
        if (!rtt) {
          // Out of time with a round trip unanswered (or the session failed): what came back
          // counts.
          row["ping_unanswered"] = true;
          break;
        }
        samples.push_back(milliseconds(*rtt));
        co_await sleep_for(std::chrono::milliseconds(arguments_.ping_gap_ms));
      }
      row["pings"] = samples.size();
      row["ping_p50_ms"] = percentile(samples, 0.50);
      row["ping_p99_ms"] = percentile(samples, 0.99);
      row["ping_max_ms"] =
          samples.empty() ? 0.0 : *std::max_element(samples.begin(), samples.end());
      row["suspensions"] = observer_.suspended;
      row["sessions_closed"] = observer_.closed;
      rows_.push_back(row);
      report(row);
      if (!reached || active.failed()) break;
      if (row.contains("ping_unanswered") || samples.empty()) continue;
      ++complete_levels_;
    }
    finish(echo, active);
  }

  [[nodiscard]] const nlohmann::json& rows() const { return rows_; }
  // True when every level was established and its round trips all came back.
  [[nodiscard]] bool complete() const { return complete_levels_ == arguments_.levels.size(); }

 private:
  transport::ClientOptions options(std::string bind_address) const {
    return client_options(arguments_, context_, std::move(bind_address),
                          authenticators_.for_session());
  }

  // Opens idle sessions until `level` are established, at most `window` connecting at once. False
  // (with stop_reason_) if they could not all be established.
  asio::awaitable<bool> establish(std::size_t level) {
    const auto give_up =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(arguments_.establish_timeout_s));
    auto last_report = Clock::now();
    while (observer_.established < level) {
      if (observer_.closed > 0 || observer_.fatal > 0) {
        stop_reason_ = std::to_string(observer_.closed) + " sessions closed by the server, " +
                       std::to_string(observer_.fatal) + " fatal connect failures";
        co_return false;
      }
      if (Clock::now() > give_up) {
        stop_reason_ = "timed out with " + std::to_string(observer_.connecting) + " connecting";
        co_return false;
      }
      while (idle_.size() < level && observer_.connecting < arguments_.window) {
        const std::size_t index = idle_.size();
        if (arguments_.first_source + index / arguments_.sessions_per_source > 254) {
          stop_reason_ = "out of source addresses";
          co_return false;
        }
        idle_.push_back(std::make_unique<transport::ClientRuntime>(
            io_, options(source_for(arguments_, index)), observer_));
        ++observer_.connecting;
        idle_.back()->start();
      }
      if (Clock::now() - last_report > std::chrono::seconds(10)) {
        last_report = Clock::now();
        spdlog::warn("{} idle sessions established, {} connecting, server RSS {} KiB",
                     observer_.established, observer_.connecting,
                     rss_kib(arguments_.server_pid).value_or(0));
      }
      co_await sleep_for(std::chrono::milliseconds(5));
    }
    co_return true;
  }

  static void report(const nlohmann::json& row) {
    std::printf("RESULT %s\n", row.dump().c_str());
    std::fflush(stdout);
  }

  void finish(asio::ip::tcp::acceptor& echo, ActiveSession& active) {
    for (auto& runtime : idle_) runtime->stop();
    active.stop();
    std::error_code ignored;
    echo.close(ignored);
    io_.stop();
  }

  asio::io_context& io_;
  Arguments arguments_;
  Authenticators authenticators_;
  std::shared_ptr<asio::ssl::context> context_;
  IdleObserver observer_;
  std::vector<std::unique_ptr<transport::ClientRuntime>> idle_;
  std::optional<std::uint64_t> rss_baseline_;
  std::string stop_reason_;
  nlohmann::json rows_ = nlohmann::json::array();
  std::size_t complete_levels_ = 0;
};

// ---- Establishment mode

// One session of the establishment mode: started, established (latency taken, authentication
// checked), closed gracefully, then its connection stopped.
class EstablishProbe final : public transport::SessionObserver {
 public:
  // `on_done` is called (from a posted handler) once the session ended, established or not.
  EstablishProbe(asio::io_context& io, transport::ClientOptions options,
                 std::function<void()> on_done)
      : io_(io), runtime_(io, std::move(options), *this), on_done_(std::move(on_done)) {}
  void start() {
    started_ = Clock::now();
    runtime_.start();
  }
  void stop() { runtime_.stop(); }

  void on_event(const session::SessionId&, session::Session* session,
                const session::Event& event) override {
    if (std::holds_alternative<session::events::Established>(event)) {
      latency = Clock::now() - started_;
      established = true;
      principal = session->peer().principal;
      mechanism = session->peer().mechanism;
      session->close(session::Clock::now());
    } else if (const auto* closed = std::get_if<session::events::Closed>(&event)) {
      if (!established && failure.empty())
        failure = "closed before it was established: " + closed->message;
      finish();
    }
  }
  void on_fatal(const transport::TransportError& error) override {
    if (failure.empty()) failure = error.message;
    finish();
  }

  bool established = false;
  bool done = false;
  Clock::duration latency{};
  std::string principal, mechanism, failure;

 private:
  void finish() {
    if (done) return;
    done = true;
    // Not from inside the runtime's own event loop: the stop closes its connections.
    asio::post(io_, [this] {
      runtime_.stop();
      on_done_();
    });
  }
  asio::io_context& io_;
  transport::ClientRuntime runtime_;
  std::function<void()> on_done_;
  Clock::time_point started_;
};

class EstablishBenchmark {
 public:
  EstablishBenchmark(asio::io_context& io, Arguments arguments, Credentials credentials)
      : io_(io),
        arguments_(std::move(arguments)),
        authenticators_(std::move(credentials), arguments_.reuse_credential),
        signal_(io) {}

  asio::awaitable<void> run() {
    auto context = make_context(arguments_);
    if (!context) co_return finish();
    context_ = *context;
    if (arguments_.warmup > 0 && !co_await establish(arguments_.warmup)) {
      row_ = {{"stopped", "in the warm-up: " + stop_reason_}};
      std::printf("RESULT %s\n", row_.dump().c_str());
      co_return finish();
    }
    co_await sleep_for(std::chrono::milliseconds(200));
    const std::size_t first = probes_.size();
    const auto server_before = cpu_seconds(arguments_.server_pid);
    const auto own_before = cpu_seconds(::getpid());
    const auto started = Clock::now();
    const bool all = co_await establish(arguments_.establish);
    const double wall = std::chrono::duration<double>(Clock::now() - started).count();
    // The server's share of the last closes: a moment for it to read them.
    co_await sleep_for(std::chrono::milliseconds(100));
    const auto server_after = cpu_seconds(arguments_.server_pid);
    const auto own_after = cpu_seconds(::getpid());

    std::vector<double> latencies;
    std::size_t authenticated = 0;
    for (std::size_t index = first; index < probes_.size(); ++index) {
      const auto& probe = *probes_[index];
      if (!probe.established) continue;
      latencies.push_back(milliseconds(probe.latency));
      if (authenticated_as_expected(probe)) ++authenticated;
    }
    const std::size_t established = latencies.size();
    row_ = {{"sessions_wanted", arguments_.establish},
            {"sessions", established},
            {"authenticated", authenticated},
            {"concurrency", arguments_.concurrency},
            {"wall_seconds", wall},
            {"sessions_per_second_wall", static_cast<double>(established) / std::max(wall, 1e-9)}};
    if (!latencies.empty()) {
      row_["latency_p50_ms"] = percentile(latencies, 0.50);
      row_["latency_p99_ms"] = percentile(latencies, 0.99);
      row_["latency_max_ms"] = *std::max_element(latencies.begin(), latencies.end());
    }
    if (server_before && server_after && established > 0) {
      const double seconds = *server_after - *server_before;
      row_["server_cpu_seconds"] = seconds;
      row_["server_cpu_per_session_us"] = 1e6 * seconds / static_cast<double>(established);
      if (seconds > 0)
        row_["sessions_per_server_cpu_second"] = static_cast<double>(established) / seconds;
    }
    if (own_before && own_after && established > 0) {
      row_["generator_cpu_seconds"] = *own_after - *own_before;
      row_["generator_cpu_per_session_us"] =
          1e6 * (*own_after - *own_before) / static_cast<double>(established);
    }
    const auto& last = *probes_.back();
    row_["principal"] = last.principal;
    row_["mechanism"] = last.mechanism.empty() ? "none" : last.mechanism;
    if (!all) row_["stopped"] = stop_reason_;
    complete_ = all && established == arguments_.establish && authenticated == arguments_.establish;
    std::printf("RESULT %s\n", row_.dump().c_str());
    std::fflush(stdout);
    finish();
  }

  [[nodiscard]] const nlohmann::json& row() const { return row_; }
  // True when every session was established and authenticated as expected.
  [[nodiscard]] bool complete() const { return complete_; }

 private:
  // Without a credential: not authenticated (the server runs --auth none). With one: a mechanism
  // in the Welcome and, with --expect-principal, that principal.
  [[nodiscard]] bool authenticated_as_expected(const EstablishProbe& probe) const {
    if (!authenticators_.any()) return probe.mechanism.empty();
    if (probe.mechanism.empty()) return false;
    return arguments_.expect_principal.empty() || probe.principal == arguments_.expect_principal;
  }

  // Runs `count` more sessions to their end, at most --concurrency at once. False (with
  // stop_reason_) at the first that failed or when the time is up.
  asio::awaitable<bool> establish(std::size_t count) {
    const auto give_up =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(arguments_.establish_timeout_s));
    const std::size_t end = probes_.size() + count;
    std::size_t finished = probes_.size();  // probes before `finished` are all done
    while (finished < end) {
      for (std::size_t index = finished; index < probes_.size(); ++index) {
        const auto& probe = *probes_[index];
        if (probe.done && !probe.failure.empty()) {
          stop_reason_ = "session " + std::to_string(index) + ": " + probe.failure;
          spdlog::error("{}", stop_reason_);
          co_return false;
        }
      }
      while (finished < probes_.size() && probes_[finished]->done) ++finished;
      std::size_t running = 0;
      for (std::size_t index = finished; index < probes_.size(); ++index)
        running += probes_[index]->done ? 0 : 1;
      while (probes_.size() < end && running < arguments_.concurrency) {
        const std::size_t index = probes_.size();
        probes_.push_back(std::make_unique<EstablishProbe>(
            io_,
            client_options(arguments_, context_, source_for(arguments_, index),
                           authenticators_.for_session()),
            [this] { signal_.cancel(); }));
        probes_.back()->start();
        ++running;
      }
      if (finished >= end) break;
      if (Clock::now() > give_up) {
        stop_reason_ = "timed out with " + std::to_string(running) + " sessions running";
        co_return false;
      }
      // Until a probe is done (it cancels the wait) or the time is up; nothing runs between the
      // checks above and this wait, so no wake-up is lost.
      signal_.expires_at(give_up);
      co_await signal_.async_wait(kTuple);
    }
    co_return true;
  }

  void finish() {
    for (auto& probe : probes_) probe->stop();
    asio::post(io_, [this] { io_.stop(); });
  }

  asio::io_context& io_;
  Arguments arguments_;
  Authenticators authenticators_;
  std::shared_ptr<asio::ssl::context> context_;
  asio::steady_timer signal_;
  std::vector<std::unique_ptr<EstablishProbe>> probes_;
  std::string stop_reason_;
  nlohmann::json row_ = nlohmann::json::object();
  bool complete_ = false;
};

// ---- Re-authentication mode

// What the re-authenticating sessions report, counted together (one io_context: no locking).
struct ReauthenticationTally {
  std::size_t established = 0, connecting = 0, closed = 0, fatal = 0;
  std::size_t reauthenticated = 0;         // in the measured window
  std::size_t reauthenticated_before = 0;  // before it (warm-up)
  std::vector<double> latencies_ms;        // the client's measured latency of each, in the window
  std::string first_failure;
  std::string mechanism;  // of the last re-authentication
  bool recording = false;
};

// One session of the re-authentication mode: established, then idle; the core re-authenticates it
// at 85-95% of each lifetime the server gives.
class ReauthenticatingSession final : public transport::SessionObserver {
 public:
  ReauthenticatingSession(asio::io_context& io, transport::ClientOptions options,
                          ReauthenticationTally& tally)
      : runtime_(io, std::move(options), *this), tally_(tally) {}
  void start() {
    ++tally_.connecting;
    runtime_.start();
  }
  void stop() { runtime_.stop(); }
  [[nodiscard]] std::size_t reauthentications() const { return reauthentications_; }

  void on_event(const session::SessionId&, session::Session*,
                const session::Event& event) override {
    namespace events = session::events;
    if (std::holds_alternative<events::Established>(event)) {
      ++tally_.established;
      --tally_.connecting;
    } else if (const auto* reauthenticated = std::get_if<events::Reauthenticated>(&event)) {
      tally_.mechanism = reauthenticated->mechanism;
      if (!tally_.recording) {
        ++tally_.reauthenticated_before;
        return;
      }
      ++reauthentications_;
      ++tally_.reauthenticated;
      tally_.latencies_ms.push_back(milliseconds(reauthenticated->latency));
    } else if (const auto* closed = std::get_if<events::Closed>(&event)) {
      // A failed re-authentication ends the session (auth-failed), as does a lifetime that ran
      // out before one succeeded (credentials-expired): every Closed is a failure here.
      ++tally_.closed;
      if (tally_.first_failure.empty()) {
        tally_.first_failure = "session closed: " + std::string(wire::to_string(closed->reason));
        if (!closed->message.empty()) tally_.first_failure += ": " + closed->message;
      }
    }
  }
  void on_fatal(const transport::TransportError& error) override {
    ++tally_.fatal;
    if (tally_.first_failure.empty()) tally_.first_failure = "fatal: " + error.message;
  }

 private:
  transport::ClientRuntime runtime_;
  ReauthenticationTally& tally_;
  std::size_t reauthentications_ = 0;
};

// A probe: one more authenticated session (it re-authenticates like the others) on its own thread
// and io_context, carrying a timestamped stream: every --probe-interval a 16-byte record (sequence
// number, send time) is written to a tunnelled stream to an echo listener on the same thread; the
// arrival time of each echoed record is kept. Its own thread, so that the generator's work for
// the other sessions delays its timer as little as the two cores allow.
class StreamProbe final : public transport::SessionObserver {
 public:
  StreamProbe(asio::io_context& io, transport::ClientOptions options, std::uint16_t echo_port,
              Clock::duration interval)
      : io_(io),
        runtime_(io, std::move(options), *this),
        echo_port_(echo_port),
        interval_(interval),
        ticker_(io) {}
  void start() { runtime_.start(); }
  void stop() {
    stopping_ = true;
    ticker_.cancel();
    runtime_.stop();
  }

  // Written by the probe's thread only; read by the others once `ready`/`failed` says so, or
  // after the thread was joined.
  std::atomic<bool> ready{false}, failed{false}, recording{false};
  std::string failure;
  struct Record {
    std::uint64_t sequence;
    Clock::time_point sent, scheduled, arrived;
  };
  std::vector<Record> records;  // the echoed records sent while `recording`, in arrival order
  std::size_t out_of_order = 0, reauthentications = 0;

  void on_event(const session::SessionId&, session::Session* session,
                const session::Event& event) override {
    namespace events = session::events;
    if (std::holds_alternative<events::Established>(event)) {
      auto opened = session->open_stream(0, session::Clock::now());
      if (!opened) return fail("cannot open the probe stream");
      stream_ = *opened;
      const auto request = tunnel::encode(
          tunnel::StreamRequest{tunnel::RequestKind::kConnect, "127.0.0.1", echo_port_});
      auto written = session->write(stream_, request, session::Clock::now());
      if (!written || *written != request.size()) return fail("cannot write the stream request");
    } else if (const auto* readable = std::get_if<events::StreamReadable>(&event)) {
      if (readable->stream != stream_) return;
      std::array<std::byte, 4096> buffer{};
      while (true) {
        auto read = session->read(stream_, buffer, session::Clock::now());
        if (!read || read->bytes == 0) break;
        take(std::span(buffer).first(read->bytes));
      }
    } else if (std::holds_alternative<events::Reauthenticated>(event)) {
      if (recording) ++reauthentications;
    } else if (const auto* closed = std::get_if<events::Closed>(&event)) {
      fail("the probe session closed: " + std::string(wire::to_string(closed->reason)) + " " +
           closed->message);
    } else if (std::holds_alternative<events::StreamReset>(event) ||
               std::holds_alternative<events::StreamFinished>(event)) {
      fail("the probe stream ended");
    }
  }
  void on_fatal(const transport::TransportError& error) override { fail(error.message); }

 private:
  static constexpr std::size_t kRecordSize = 16;

  void take(std::span<const std::byte> bytes) {
    const auto now = Clock::now();
    pending_.insert(pending_.end(), bytes.begin(), bytes.end());
    std::size_t offset = 0;
    if (!connected_) {
      auto reply = tunnel::parse_reply(pending_, offset);
      if (!reply) return fail("malformed reply: " + reply.error());
      if (!*reply) return;
      if ((*reply)->status != tunnel::ReplyStatus::kConnected)
        return fail(std::string("echo target refused: ") + tunnel::to_string((*reply)->status));
      connected_ = true;
      asio::co_spawn(io_, send(), asio::detached);
    }
    for (; pending_.size() - offset >= kRecordSize; offset += kRecordSize) {
      std::uint64_t sequence = 0;
      std::int64_t sent_ticks = 0;
      std::memcpy(&sequence, pending_.data() + offset, 8);
      std::memcpy(&sent_ticks, pending_.data() + offset + 8, 8);
      if (sequence != expected_sequence_) ++out_of_order;
      expected_sequence_ = sequence + 1;
      if (sequence >= first_recorded_ && sequence < scheduled_.size()) {
        records.push_back(
            {sequence, Clock::time_point(Clock::duration(sent_ticks)), scheduled_[sequence], now});
      }
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(offset));
  }

  // Writes a record at every tick of a fixed schedule (a late tick is written at once, never
  // skipped), from the moment the echo target is connected until stopped.
  asio::awaitable<void> send() {
    ready = true;
    auto next = Clock::now();
    while (!failed) {
      ticker_.expires_at(next);
      auto [error] = co_await ticker_.async_wait(kTuple);
      if (error) co_return;
      const bool record = recording.load();
      if (record && first_recorded_ == kNone) first_recorded_ = scheduled_.size();
      if (!record && first_recorded_ != kNone) co_return;  // the window is over
      std::array<std::byte, kRecordSize> message{};
      const std::uint64_t sequence = scheduled_.size();
      const std::int64_t sent = Clock::now().time_since_epoch().count();
      std::memcpy(message.data(), &sequence, 8);
      std::memcpy(message.data() + 8, &sent, 8);
      auto written = runtime_.session().write(stream_, message, session::Clock::now());
      if (!written) {
        // WouldBlock: the session's window is full; the record waits for the next tick (counted
        // as a gap by the receiver, as it should be).
        next += interval_;
        continue;
      }
      if (*written != message.size()) {
        fail("a record was written in part");
        co_return;
      }
      scheduled_.push_back(next);
      runtime_.wake();
      next += interval_;
    }
  }

  void fail(const std::string& why) {
    if (stopping_) return;  // the end of the run, not a failure
    if (!failed) {
      failure = why;
      spdlog::error("probe: {}", why);
    }
    failed = true;
    ticker_.cancel();
  }

  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  asio::io_context& io_;
  transport::ClientRuntime runtime_;
  std::uint16_t echo_port_;
  Clock::duration interval_;
  asio::steady_timer ticker_;
  session::StreamId stream_ = 0;
  std::vector<std::byte> pending_;
  bool connected_ = false;
  std::vector<Clock::time_point> scheduled_;  // by sequence number
  std::size_t first_recorded_ = kNone;
  std::uint64_t expected_sequence_ = 0;
  bool stopping_ = false;
};

// A probe with its thread, its io_context and its echo listener.
class ProbeThread {
 public:
  ProbeThread(transport::ClientOptions options, std::uint16_t echo_port, Clock::duration interval,
              bool realtime)
      : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), echo_port}),
        probe_(io_, std::move(options), echo_port, interval) {
    asio::co_spawn(io_, echo_server(acceptor_), asio::detached);
    asio::post(io_, [this] { probe_.start(); });
    thread_ = std::thread([this] { io_.run(); });
    if (realtime) {
      // Round-robin real-time priority for the probe's thread (needs CAP_SYS_NICE): its timer
      // and its reads then wait for no other process's work, only for the server's and the
      // kernel's.
      sched_param parameter{};
      parameter.sched_priority = 10;
      realtime_ = ::pthread_setschedparam(thread_.native_handle(), SCHED_RR, &parameter) == 0;
      if (!realtime_) spdlog::warn("probe: no real-time priority (needs CAP_SYS_NICE)");
    }
  }
  [[nodiscard]] bool realtime() const { return realtime_; }
  ~ProbeThread() { join(); }
  StreamProbe& probe() { return probe_; }
  // Stops the probe and waits for its thread; its figures may be read afterwards.
  void join() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      probe_.stop();
      std::error_code ignored;
      acceptor_.close(ignored);
      // A moment for the stop's closes to be written, then the loop ends.
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
      timer->async_wait([this, timer](std::error_code) { io_.stop(); });
    });
    thread_.join();
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  StreamProbe probe_;
  std::thread thread_;
  bool realtime_ = false;
};

// The figures of one probe's window.
nlohmann::json probe_figures(const StreamProbe& probe) {
  nlohmann::json row = nlohmann::json::object();
  const auto& records = probe.records;
  row["messages"] = records.size();
  row["out_of_order"] = probe.out_of_order;
  row["reauthentications"] = probe.reauthentications;
  if (records.size() < 2) return row;
  std::vector<double> gaps, latencies, lateness;
  for (std::size_t index = 0; index < records.size(); ++index) {
    latencies.push_back(milliseconds(records[index].arrived - records[index].sent));
    lateness.push_back(milliseconds(records[index].sent - records[index].scheduled));
    if (index > 0)
      gaps.push_back(milliseconds(records[index].arrived - records[index - 1].arrived));
  }
  row["gap_p50_ms"] = percentile(gaps, 0.50);
  row["gap_p99_ms"] = percentile(gaps, 0.99);
  row["gap_p999_ms"] = percentile(gaps, 0.999);
  row["gap_max_ms"] = *std::max_element(gaps.begin(), gaps.end());
  row["round_trip_p50_ms"] = percentile(latencies, 0.50);
  row["round_trip_p99_ms"] = percentile(latencies, 0.99);
  row["round_trip_max_ms"] = *std::max_element(latencies.begin(), latencies.end());
  row["send_late_p99_ms"] = percentile(lateness, 0.99);
  row["send_late_max_ms"] = *std::max_element(lateness.begin(), lateness.end());
  return row;
}

class ReauthenticationBenchmark {
 public:
  ReauthenticationBenchmark(asio::io_context& io, Arguments arguments, Credentials credentials)
      : io_(io),
        arguments_(std::move(arguments)),
        authenticators_(std::move(credentials), arguments_.reuse_credential) {}

  asio::awaitable<void> run() {
    auto context = make_context(arguments_);
    if (!context) co_return finish();
    context_ = *context;
    // The probes first (each on its thread, with its own TLS context and credential: nothing
    // shared across threads), then the sessions, --window connecting at once.
    for (std::size_t index = 0; index < arguments_.probes; ++index) {
      auto probe_context = make_context(arguments_);
      if (!probe_context) co_return finish();
      probes_.push_back(std::make_unique<ProbeThread>(
          client_options(arguments_, *probe_context, "127.0.0.1", authenticators_.fresh()),
          static_cast<std::uint16_t>(arguments_.echo_port + index),
          std::chrono::duration_cast<Clock::duration>(
              std::chrono::duration<double, std::milli>(arguments_.probe_interval_ms)),
          arguments_.probe_realtime));
    }
    const auto give_up =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(arguments_.establish_timeout_s));
    const auto started = Clock::now();
    while (tally_.established < arguments_.sessions) {
      if (tally_.closed > 0 || tally_.fatal > 0) co_return stop(tally_.first_failure);
      if (Clock::now() > give_up) co_return stop("timed out establishing the sessions");
      while (sessions_.size() < arguments_.sessions && tally_.connecting < arguments_.window) {
        sessions_.push_back(std::make_unique<ReauthenticatingSession>(
            io_,
            client_options(arguments_, context_, source_for(arguments_, sessions_.size()),
                           authenticators_.for_session()),
            tally_));
        sessions_.back()->start();
      }
      co_await sleep_for(std::chrono::milliseconds(5));
    }
    row_["establish_seconds"] = std::chrono::duration<double>(Clock::now() - started).count();
    for (auto& thread : probes_) {
      while (!thread->probe().ready && !thread->probe().failed && Clock::now() < give_up)
        co_await sleep_for(std::chrono::milliseconds(10));
      if (!thread->probe().ready) co_return stop("probe: " + thread->probe().failure);
    }
    co_await sleep_for(seconds(arguments_.settle_s));
    if (tally_.closed > 0 || tally_.fatal > 0) co_return stop(tally_.first_failure);

    // The window: re-authentications counted, their latencies kept, the probes' records kept.
    const auto server_before = cpu_seconds(arguments_.server_pid);
    const auto own_before = cpu_seconds(::getpid());
    tally_.recording = true;
    for (auto& thread : probes_) thread->probe().recording = true;
    const auto window_start = Clock::now();
    co_await sleep_for(seconds(arguments_.reauthenticate_s));
    tally_.recording = false;
    for (auto& thread : probes_) thread->probe().recording = false;
    const double window = std::chrono::duration<double>(Clock::now() - window_start).count();
    const auto server_after = cpu_seconds(arguments_.server_pid);
    const auto own_after = cpu_seconds(::getpid());
    // The last records' echoes.
    co_await sleep_for(std::chrono::milliseconds(200));

    std::size_t sessions_reauthenticated = 0;
    for (const auto& session : sessions_)
      sessions_reauthenticated += session->reauthentications() > 0;
    row_["sessions"] = tally_.established;
    row_["window_seconds"] = window;
    row_["reauthentications"] = tally_.reauthenticated;
    row_["reauthentications_before_window"] = tally_.reauthenticated_before;
    row_["sessions_reauthenticated"] = sessions_reauthenticated;
    row_["reauthentications_per_second"] = static_cast<double>(tally_.reauthenticated) / window;
    row_["sessions_closed"] = tally_.closed;
    row_["fatal"] = tally_.fatal;
    if (!tally_.first_failure.empty()) row_["first_failure"] = tally_.first_failure;
    row_["mechanism"] = tally_.mechanism;
    if (!tally_.latencies_ms.empty()) {
      row_["latency_p50_ms"] = percentile(tally_.latencies_ms, 0.50);
      row_["latency_p99_ms"] = percentile(tally_.latencies_ms, 0.99);
      row_["latency_max_ms"] =
          *std::max_element(tally_.latencies_ms.begin(), tally_.latencies_ms.end());
    }
    if (server_before && server_after) {
      const double cpu = *server_after - *server_before;
      row_["server_cpu_seconds"] = cpu;
      row_["server_cpu_percent"] = 100 * cpu / window;
      if (tally_.reauthenticated > 0)
        row_["server_cpu_per_reauthentication_us"] =
            1e6 * cpu / static_cast<double>(tally_.reauthenticated);
    }
    if (own_before && own_after) {
      row_["generator_cpu_percent"] = 100 * (*own_after - *own_before) / window;
    }
    bool probes_ok = true;
    nlohmann::json probe_rows = nlohmann::json::array();
    for (auto& thread : probes_) {
      thread->join();
      const auto& probe = thread->probe();
      auto figures = probe_figures(probe);
      figures["realtime"] = thread->realtime();
      if (probe.failed) {
        figures["failure"] = probe.failure;
        probes_ok = false;
      }
      if (probe.out_of_order > 0 || probe.records.size() < 2) probes_ok = false;
      probe_rows.push_back(figures);
    }
    row_["probes"] = probe_rows;
    if (!probe_rows.empty()) {  // the worst probe's figures, for the table
      auto worst = [&probe_rows](const char* key) {
        double value = 0;
        for (const auto& probe : probe_rows)
          if (probe.contains(key)) value = std::max(value, probe[key].get<double>());
        return value;
      };
      for (const char* key : {"gap_p99_ms", "gap_max_ms", "round_trip_p99_ms", "round_trip_max_ms",
                              "send_late_max_ms"})
        row_[std::string("probe_") + key] = worst(key);
    }
    complete_ = tally_.closed == 0 && tally_.fatal == 0 && probes_ok &&
                tally_.established == arguments_.sessions;
    std::printf("RESULT %s\n", row_.dump().c_str());
    std::fflush(stdout);
    finish();
  }

  [[nodiscard]] const nlohmann::json& row() const { return row_; }
  // Every session established, none closed, every probe's records back in order.
  [[nodiscard]] bool complete() const { return complete_; }

 private:
  static Clock::duration seconds(double value) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(value));
  }
  void stop(const std::string& why) {
    spdlog::error("{}", why);
    row_["stopped"] = why;
    row_["sessions"] = tally_.established;
    std::printf("RESULT %s\n", row_.dump().c_str());
    std::fflush(stdout);
    finish();
  }
  void finish() {
    for (auto& thread : probes_) thread->join();
    for (auto& session : sessions_) session->stop();
    asio::post(io_, [this] { io_.stop(); });
  }

  asio::io_context& io_;
  Arguments arguments_;
  Authenticators authenticators_;
  std::shared_ptr<asio::ssl::context> context_;
  ReauthenticationTally tally_;
  std::vector<std::unique_ptr<ReauthenticatingSession>> sessions_;
  std::vector<std::unique_ptr<ProbeThread>> probes_;
  nlohmann::json row_ = nlohmann::json::object();
  bool complete_ = false;
};

void print_table(const nlohmann::json& rows) {
  std::printf(
      "\n| idle sessions | server RSS per idle session | server CPU, idle | generator CPU, "
      "idle | active ping p50 / p99 | sessions established per second |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& row : rows) {
    auto number = [&row](const char* key, const char* format) {
      if (!row.contains(key)) return std::string();
      char text[64];
      std::snprintf(text, sizeof text, format, row[key].get<double>());
      return std::string(text);
    };
    std::printf("| %zu | %s | %s | %s | %s / %s | %s |\n", row["idle_sessions"].get<std::size_t>(),
                number("server_rss_per_idle_session_kib", "%.1f KiB").c_str(),
                number("server_cpu_percent_idle", "%.1f%%").c_str(),
                number("generator_cpu_percent_idle", "%.1f%%").c_str(),
                number("ping_p50_ms", "%.2f").c_str(), number("ping_p99_ms", "%.2f ms").c_str(),
                number("established_per_second", "%.0f").c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Arguments arguments;
  std::string server;
  CLI::App app{"Opens many idle tether sessions and one active one; measures the server"};
  app.add_option("--server", server, "HOST:PORT of a running `tether server --auth none`")
      ->required();
  app.add_option("--fingerprint", arguments.fingerprint, "The server's sha256:HEX fingerprint")
      ->required();
  app.add_option("--server-pid", arguments.server_pid, "The server's process id (for /proc)")
      ->required();
  app.add_option("--echo-port", arguments.echo_port,
                 "Port of this program's echo listener on 127.0.0.1 (the server must --allow it); "
                 "required unless --establish");
  app.add_option("--levels", arguments.levels,
                 "Idle session counts to measure at, ascending (e.g. 0,10000,100000)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--sessions-per-source", arguments.sessions_per_source,
                 "Idle sessions per source address 127.0.0.N")
      ->capture_default_str();
  app.add_option("--first-source", arguments.first_source, "N of the first source 127.0.0.N")
      ->capture_default_str();
  app.add_option("--window", arguments.window, "Sessions connecting at once")
      ->capture_default_str();
  app.add_option("--heartbeat-interval", arguments.heartbeat_interval_ms,
                 "Milliseconds between heartbeats the sessions ask for")
      ->capture_default_str();
  app.add_option("--idle-window", arguments.idle_window_s, "Seconds of idle CPU measurement")
      ->capture_default_str();
  app.add_option("--pings", arguments.pings, "Round trips of the active session per level")
      ->capture_default_str();
  app.add_option("--ping-gap", arguments.ping_gap_ms, "Milliseconds between round trips")
      ->capture_default_str();
  app.add_option("--ping-time", arguments.ping_time_s, "Seconds the round trips may take per level")
      ->capture_default_str();
  app.add_option("--settle", arguments.settle_s, "Seconds between establishing and measuring RSS")
      ->capture_default_str();
  app.add_option("--establish-timeout", arguments.establish_timeout_s,
                 "Seconds one level may take to establish")
      ->capture_default_str();
  app.add_flag("--resume-tls", arguments.resume_tls,
               "Resume TLS with the newest ticket (default: a full handshake per session)");
  app.add_option("--json", arguments.json_file, "Also write the results as a JSON array here");
  app.add_option("--establish", arguments.establish,
                 "Establishment mode: this many sessions, each closed once established; measures "
                 "each one's latency (connect to Welcome) and the server's CPU per session");
  app.add_option("--concurrency", arguments.concurrency,
                 "Establishment mode: sessions under way at once")
      ->capture_default_str();
  app.add_option("--warmup", arguments.warmup,
                 "Establishment mode: sessions before the measured ones")
      ->capture_default_str();
  app.add_option("--user", arguments.user, "Authenticate as this user (SCRAM or PLAIN)");
  app.add_option("--password-file", arguments.password_file, "The password of --user (first line)");
  app.add_option("--token-file", arguments.token_file,
                 "Authenticate with this token (OAUTHBEARER)");
  app.add_option("--cert", arguments.certificate, "Client certificate (PEM) for mTLS (EXTERNAL)");
  app.add_option("--key", arguments.key, "Private key of --cert (PEM)");
  app.add_option("--auth-mechanism", arguments.auth_mechanism, "Use only this mechanism");
  app.add_option("--expect-principal", arguments.expect_principal,
                 "Count a session as authenticated only when the Welcome names this principal");
  app.add_flag("--reuse-credential", arguments.reuse_credential,
               "One credential for all sessions (SCRAM keeps the salted password: PBKDF2 once) "
               "instead of one per session (a new client each time)");
  app.add_option("--reauthenticate", arguments.reauthenticate_s,
                 "Re-authentication mode: keep --sessions authenticated sessions and --probes "
                 "stream probes open, then measure for this many seconds (after --settle) the "
                 "re-authentications the server's lifetime causes, their latency, the server's "
                 "CPU and the probes' stream gaps");
  app.add_option("--sessions", arguments.sessions, "Re-authentication mode: sessions kept open")
      ->capture_default_str();
  app.add_option("--probes", arguments.probes,
                 "Re-authentication mode: sessions carrying a timestamped echo stream, each to "
                 "its own echo listener on --echo-port + its index")
      ->capture_default_str();
  app.add_option("--probe-interval", arguments.probe_interval_ms,
                 "Re-authentication mode: milliseconds between a probe's records")
      ->capture_default_str();
  app.add_flag("--probe-realtime", arguments.probe_realtime,
               "Re-authentication mode: run the probes' thread at real-time priority (SCHED_RR; "
               "needs CAP_SYS_NICE), so that other processes on the machine delay its timer less");
  CLI11_PARSE(app, argc, argv);
  if (arguments.establish == 0 && arguments.echo_port == 0 &&
      (arguments.reauthenticate_s <= 0 || arguments.probes > 0)) {
    std::fprintf(stderr, "--echo-port is required (unless --establish, or --probes 0)\n");
    return 2;
  }
  if (arguments.concurrency == 0) {
    std::fprintf(stderr, "--concurrency must be at least 1\n");
    return 2;
  }
  auto credentials = read_credentials(arguments);
  if (!credentials) {
    std::fprintf(stderr, "%s\n", credentials.error().c_str());
    return 2;
  }
  auto address = tunnel::split_host_port(server);
  if (!address) {
    std::fprintf(stderr, "--server: %s\n", address.error().c_str());
    return 2;
  }
  arguments.host = address->first;
  arguments.port = std::to_string(address->second);
  std::sort(arguments.levels.begin(), arguments.levels.end());

  spdlog::set_pattern("[%H:%M:%S.%e] [%l] %v");
  spdlog::set_level(spdlog::level::warn);  // one line per session would cost more than the session
  if (arguments.reauthenticate_s > 0) {
    const std::uint64_t wanted = arguments.sessions + arguments.probes + 1000;
    const std::uint64_t limit = raise_descriptor_limit(wanted);
    if (limit < wanted)
      spdlog::warn("load generator file-descriptor limit {} (wanted {})", limit, wanted);
    asio::io_context io;
    ReauthenticationBenchmark benchmark(io, arguments, std::move(*credentials));
    asio::co_spawn(io, benchmark.run(), [](std::exception_ptr failure) {
      if (!failure) return;
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& error) {
        spdlog::error("load generator failed: {}", error.what());
      }
    });
    io.run();
    if (!arguments.json_file.empty()) std::ofstream(arguments.json_file) << benchmark.row().dump(2);
    return benchmark.complete() ? 0 : 1;
  }
  if (arguments.establish > 0) {
    asio::io_context io;
    EstablishBenchmark benchmark(io, arguments, std::move(*credentials));
    asio::co_spawn(io, benchmark.run(), [](std::exception_ptr failure) {
      if (!failure) return;
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& error) {
        spdlog::error("load generator failed: {}", error.what());
      }
    });
    io.run();
    if (!arguments.json_file.empty()) std::ofstream(arguments.json_file) << benchmark.row().dump(2);
    return benchmark.complete() ? 0 : 1;
  }
  const std::uint64_t wanted = arguments.levels.back() + 1000;
  const std::uint64_t limit = raise_descriptor_limit(wanted);
  spdlog::warn("load generator file-descriptor limit {} (wanted {})", limit, wanted);

  asio::io_context io;
  Benchmark benchmark(io, arguments, std::move(*credentials));
  asio::co_spawn(io, benchmark.run(), [](std::exception_ptr failure) {
    if (!failure) return;
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& error) {
      spdlog::error("load generator failed: {}", error.what());
    }
  });
  io.run();
  print_table(benchmark.rows());
  if (!arguments.json_file.empty()) std::ofstream(arguments.json_file) << benchmark.rows().dump(2);
  return benchmark.complete() ? 0 : 1;
}
