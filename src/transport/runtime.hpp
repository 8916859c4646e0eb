// ClientRuntime and ServerRuntime drive the sans-I/O session core with standalone Asio: one reader
// and one writer coroutine per transport connection and one steady timer armed at the core's
// deadline.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include "session/server_endpoint.hpp"
#include "session/session.hpp"
#include "transport/admission.hpp"
#include "transport/byte_stream.hpp"
#include "transport/route_monitor.hpp"
#include "transport/transport_error.hpp"
#include "transport/worker_pool.hpp"

namespace tether::transport {

// What the application layer (the tunnel) is told. `session` is null when the session no longer
// exists (a server session freed right after its Closed event).
class SessionObserver {
 public:
  virtual ~SessionObserver() = default;
  virtual void on_event(const session::SessionId& id, session::Session* session,
                        const session::Event& event) = 0;
  // A failure no retry can fix (is_fatal: the server's certificate does not match the pin).
  virtual void on_fatal(const TransportError& error) = 0;
};

// A RandomSource backed by OpenSSL's CSPRNG.
class SystemRandom final : public session::RandomSource {
 public:
  void fill(std::span<std::byte> out) override;
};

// The first 8 bytes of a session id in hex: enough to tell sessions apart in logs.
[[nodiscard]] std::string short_id(const session::SessionId& id);

// The machinery both runtimes share: path drivers, the processing loop and the deadline timer.
class RuntimeBase {
 public:
  explicit RuntimeBase(asio::io_context& io, SessionObserver& observer);
  virtual ~RuntimeBase();
  // Schedules a processing pass: call after changing the session from outside an event handler.
  void wake();
  // Stops the timers and closes every connection; io_context::run() returns once they unwind.
  virtual void stop();

  // The kernel's TCP_USER_TIMEOUT of each of these connections that is attached (for status).
  [[nodiscard]] std::vector<std::chrono::milliseconds> user_timeouts(
      std::span<const session::PathId> connections);

 protected:
  struct PathDriver {
    session::PathId id = 0;
    std::unique_ptr<ByteStream> stream;
    bool writing = false;
    bool done_requested = false;
    bool closed = false;
    std::optional<asio::ip::tcp::endpoint> local;   // client: where the connection leaves from
    std::optional<asio::ip::tcp::endpoint> remote;  // client: the server address it reached
    // The reader waits on this while the core does not want input (core_wants_input); the writer
    // cancels it after every write.
    std::unique_ptr<asio::steady_timer> input_ready;
  };

  // The core, as the drivers see it.
  virtual void core_receive(session::PathId path, std::span<const std::byte> bytes) = 0;
  virtual std::size_t core_take(session::PathId path, std::vector<std::byte>& out,
                                std::size_t max) = 0;
  virtual void core_closed(session::PathId path) = 0;
  // False while the core's queue for `path` is full: the reader stops reading (backpressure).
  virtual bool core_wants_input(session::PathId path) = 0;
  virtual std::optional<session::Time> core_deadline() = 0;
  virtual void core_timeout() = 0;
  // The connections that may have bytes to send since the last call (replacing `out`'s contents);
  // only these are flushed by a processing pass.
  virtual void core_ready(std::vector<session::PathId>& out) = 0;
  // Drains the core's events; returns true if there were any.
  virtual bool drain_events() = 0;

  void process();
  void attach(session::PathId id, std::unique_ptr<ByteStream> stream);
  // Once a session is established or resumed: its connections' TCP_USER_TIMEOUT follows the
  // negotiated heartbeat (session::kernel_user_timeout), not this side's configuration.
  void apply_negotiated_user_timeout(std::span<const session::PathId> connections,
                                     const session::HeartbeatParameters& heartbeat);
  void path_done(session::PathId id);
  void finish_path(const std::shared_ptr<PathDriver>& driver);
  [[nodiscard]] static session::Time now() { return session::Clock::now(); }

  asio::io_context& io_;
  SessionObserver& observer_;
  std::map<session::PathId, std::shared_ptr<PathDriver>> paths_;
  session::PathId next_path_ = 1;
  bool stopped_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once destroyed

 private:
  asio::awaitable<void> read_loop(std::shared_ptr<PathDriver> driver);
  asio::awaitable<void> write_loop(std::shared_ptr<PathDriver> driver);
  asio::awaitable<void> deadline_loop();
  void flush(const std::shared_ptr<PathDriver>& driver);
  void arm_timer();

  asio::steady_timer timer_;
  std::optional<session::Time> armed_;
  std::vector<session::PathId> ready_;  // process()'s scratch: core_ready()
  bool processing_ = false;
  bool again_ = false;
  bool wake_posted_ = false;
};

struct ClientOptions {
  std::string host;
  std::string port;
  std::shared_ptr<asio::ssl::context> tls;  // null: plain TCP (tests only)
  session::SessionConfig session;
  std::chrono::milliseconds connect_timeout{10000};
  // While the session is suspended, one connection attempt waits at most this long (a SYN lost
  // in an outage would otherwise hold the next attempt for the kernel's whole retry schedule).
  std::chrono::milliseconds resume_connect_timeout{2000};
  std::string bind_address;    // empty: the kernel chooses the source address
  std::string bind_interface;  // empty: any interface (SO_BINDTODEVICE otherwise)
  bool watch_network = true;   // move at once when the host's addresses or routes change
};

class ClientRuntime final : public RuntimeBase {
 public:
  ClientRuntime(asio::io_context& io, ClientOptions options, SessionObserver& observer);
  session::Session& session() { return *session_; }
  [[nodiscard]] const ClientOptions& options() const { return options_; }
  // Replaces a closed session with a new one (for example after the server lost the old one); the
  // new one starts connecting at once. Safe to call from an event handler (the swap is posted).
  void start_new_session();
  // The session's attached connections.
  [[nodiscard]] std::vector<session::PathId> connection_ids() const;
  [[nodiscard]] bool finished() const {
    return session_->phase() == session::Phase::kClosed && paths_.empty();
  }
  // Starts connecting and, unless disabled, watching the host's network (rtnetlink).
  void start();
  void stop() override;

 private:
  void core_receive(session::PathId path, std::span<const std::byte> bytes) override;
  std::size_t core_take(session::PathId path, std::vector<std::byte>& out,
                        std::size_t max) override;
  void core_closed(session::PathId path) override;
  bool core_wants_input(session::PathId path) override { return session_->wants_input(path); }
  std::optional<session::Time> core_deadline() override { return session_->next_deadline(); }
  void core_timeout() override { session_->on_timeout(now()); }
  // Every connection (one session has few): a writer with nothing to take stops at once.
  void core_ready(std::vector<session::PathId>& out) override;
  bool drain_events() override;
  asio::awaitable<void> connect();
  // Dials one endpoint, bound as the options say; the error says what failed.
  asio::awaitable<std::error_code> dial(asio::ip::tcp::socket& socket,
                                        const asio::ip::tcp::endpoint& endpoint);
  void on_route_event(const RouteEvent& event);

  ClientOptions options_;
  RouteMonitor route_monitor_;
  SystemRandom random_;
  std::unique_ptr<session::Session> session_;
};

struct ServerOptions {
  asio::ip::tcp::endpoint listen;
  std::shared_ptr<asio::ssl::context> tls;  // null: plain TCP (tests only)
  session::SessionConfig session;
  session::Secret static_key{};
  std::chrono::milliseconds handshake_timeout{10000};
  session::ServerLimits limits;
  AdmissionLimits admission;
  // The pool that verifies PLAIN passwords (PBKDF2) off the event loop: its threads (0:
  // WorkerPool::default_threads()) and how many verifications may wait; past that an attempt is
  // refused at once as transient (server busy).
  std::size_t verification_threads = 0;
  std::size_t verification_queue = 64;
};

class ServerRuntime final : public RuntimeBase {
 public:
  ServerRuntime(asio::io_context& io, ServerOptions options, SessionObserver& observer);
  // Binds and listens; the error says why not (address in use, permission).
  Expected<void, std::string> start();
  session::ServerEndpoint& endpoint() { return endpoint_; }
  [[nodiscard]] const ConnectionAdmission& admission() const { return admission_; }
  // Connections closed at once because an admission limit was reached, since the start.
  [[nodiscard]] std::uint64_t connections_refused() const { return connections_refused_; }
  // Stops accepting, ends every session with Abort(shutdown, transient) so that clients learn why
  // at once, flushes, then calls `done` (after at most `grace`).
  void shut_down(std::chrono::milliseconds grace, std::function<void()> done);
  [[nodiscard]] asio::ip::tcp::endpoint local_endpoint() const {
    return acceptor_.local_endpoint();
  }

 private:
  void core_receive(session::PathId path, std::span<const std::byte> bytes) override;
  std::size_t core_take(session::PathId path, std::vector<std::byte>& out,
                        std::size_t max) override;
  void core_closed(session::PathId path) override;
  bool core_wants_input(session::PathId path) override { return endpoint_.wants_input(path); }
  std::optional<session::Time> core_deadline() override { return endpoint_.next_deadline(); }
  void core_timeout() override { endpoint_.on_timeout(now()); }
  // The endpoint's ready list: the connections of the sessions touched since the last pass.
  void core_ready(std::vector<session::PathId>& out) override {
    endpoint_.take_ready_connections(out);
  }
  bool drain_events() override;
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> handshake(asio::ip::tcp::socket socket);
  // Gives back the admission slot of `path` once it joined a session or closed.
  void release_admission(session::PathId path);
  // Hands the endpoint's deferred verifications to the pool (or refuses them when it is full);
  // each completion is posted back to the event loop.
  void dispatch_deferred_work();
  // The endpoint's refusal observer: one rate-limited log line per refused authentication.
  void log_refusal(const session::ServerEndpoint::AuthenticationRefusal& refusal);

  ServerOptions options_;
  SystemRandom random_;
  session::ServerEndpoint endpoint_;
  asio::ip::tcp::acceptor acceptor_;
  ConnectionAdmission admission_;
  std::map<session::PathId, std::string> admitted_;  // connections holding an admission slot
  // Pending connections whose client certificate gave no identity, and why (for refusal logs).
  std::map<session::PathId, std::string> certificate_problems_;
  std::vector<session::ServerEndpoint::DeferredAuthentication> deferred_scratch_;
  std::uint64_t connections_refused_ = 0;  // admission refusals (logged through log_limited)
  // Last: its workers are joined before anything they could touch is destroyed (they touch only
  // their job's work and post completions to io_).
  WorkerPool verification_pool_;
};

// Logs one line per lifecycle event (established, suspended and why, resumed with downtime and
// bytes replayed, closed and why); returns true if the event was a lifecycle event.
bool log_lifecycle(const char* side, const session::SessionId& id, const session::Event& event);

}  // namespace tether::transport
