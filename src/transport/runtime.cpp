#include "transport/runtime.hpp"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <asio/experimental/as_tuple.hpp>
#include <cstdlib>

#include "transport/accept_backoff.hpp"
#include "transport/event_log.hpp"
#include "transport/log_safety.hpp"
#include "wire/codec.hpp"

namespace tether::transport {
namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadChunk = 64u << 10;
// Bytes taken from the core per socket write: large enough for throughput, small enough that a
// newly written interactive byte waits behind at most this much of our own queue.
constexpr std::size_t kWriteChunk = 128u << 10;
constexpr int kUnsentBytesLimit = 32 << 10;

// Keeps the kernel's queue of not-yet-sent bytes short (TCP_NOTSENT_LOWAT): the socket reports
// writable, and accepts writes, only while less than this is waiting to be sent. Bytes then wait in
// the session, where the scheduler interleaves streams, instead of in one FIFO behind a bulk
// transfer: an interactive stream's bytes are never queued behind megabytes of another's.
void limit_unsent_bytes(asio::ip::tcp::socket& socket) {
  const int bytes = kUnsentBytesLimit;
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &bytes, sizeof bytes);
}

// The user timeout of a connection before its session has negotiated the heartbeat: from this
// side's configuration (a client's proposal; a server's own values). Replaced by the negotiated one
// once the session is established (apply_negotiated_user_timeout).
std::chrono::milliseconds user_timeout_for(const session::SessionConfig& config) {
  return session::kernel_user_timeout(
      session::HeartbeatParameters{config.heartbeat_interval, config.missing_heartbeats_allowed});
}

bool negotiates_heartbeat(const session::Event& event) {
  return std::holds_alternative<session::events::Established>(event) ||
         std::holds_alternative<session::events::Resumed>(event);
}

}  // namespace

void SystemRandom::fill(std::span<std::byte> out) {
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size())) != 1) {
    spdlog::critical("the system random number generator failed");
    std::abort();
  }
}

std::string short_id(const session::SessionId& id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  for (std::size_t index = 0; index < 8; ++index) {
    const auto value = static_cast<unsigned>(id[index]);
    text += kHex[value >> 4];
    text += kHex[value & 15];
  }
  return text;
}

bool log_lifecycle(const char* side, const session::SessionId& id, const session::Event& event) {
  if (log_format() == LogFormat::kJson) return log_lifecycle_json(side, id, event);
  namespace events = session::events;
  const std::string name = short_id(id);
  if (const auto* established = std::get_if<events::Established>(&event)) {
    (void)established;
    spdlog::info("{} session {} established", side, name);
  } else if (const auto* suspended = std::get_if<events::Suspended>(&event)) {
    spdlog::warn("{} session {} suspended: {}", side, name, session::to_string(suspended->cause));
  } else if (const auto* resumed = std::get_if<events::Resumed>(&event)) {
    spdlog::info("{} session {} resumed after {} ms, {} bytes replayed", side, name,
                 std::chrono::duration_cast<std::chrono::milliseconds>(resumed->downtime).count(),
                 resumed->bytes_replayed);
  } else if (const auto* closed = std::get_if<events::Closed>(&event)) {
    const bool refused = closed->reason == wire::Reason::kAuthFailed ||
                         closed->reason == wire::Reason::kCredentialsExpired;
    spdlog::log(refused ? spdlog::level::err : spdlog::level::info,
                "{} session {} closed {}: {}{}{}{}, {} bytes never acknowledged", side, name,
                closed->by_peer ? "by peer" : "locally", wire::to_string(closed->reason),
                closed->transient ? " (transient)" : "", closed->message.empty() ? "" : ": ",
                escape_for_log(closed->message), closed->unacknowledged_bytes);
  } else if (const auto* reauthenticated = std::get_if<events::Reauthenticated>(&event)) {
    const std::string lifetime =
        reauthenticated->lifetime ? std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                       *reauthenticated->lifetime)
                                                       .count()) +
                                        " s"
                                  : std::string("no limit");
    spdlog::info(
        "{} session {} re-authenticated {} with {} in {} ms; lifetime {}", side, name,
        escape_for_log(reauthenticated->principal), escape_for_log(reauthenticated->mechanism),
        std::chrono::duration_cast<std::chrono::milliseconds>(reauthenticated->latency).count(),
        lifetime);
  } else if (const auto* passed = std::get_if<events::LifetimePassed>(&event)) {
    if (passed->audit_only) {
      spdlog::warn(
          "{} session {} is past its lifetime without re-authenticating; audit mode keeps it "
          "(a positive --max-reauth would end it)",
          side, name);
    } else {
      spdlog::info("{} session {} is past its lifetime; it ends unless it re-authenticates", side,
                   name);
    }
  } else {
    return false;
  }
  return true;
}

// ---- RuntimeBase
// ----------------------------------------------------------------------------------

RuntimeBase::RuntimeBase(asio::io_context& io, SessionObserver& observer)
    : io_(io), observer_(observer), timer_(io, session::Time::max()) {
  asio::co_spawn(io_, deadline_loop(), asio::detached);
}

RuntimeBase::~RuntimeBase() {
  *alive_ = false;
}

void RuntimeBase::wake() {
  if (wake_posted_) return;
  wake_posted_ = true;
  asio::post(io_, [this, alive = alive_] {
    if (!*alive) return;
    wake_posted_ = false;
    process();
  });
}

void RuntimeBase::stop() {
  stopped_ = true;
  timer_.cancel();
  for (auto& [id, driver] : paths_) driver->stream->close();
}

void RuntimeBase::process() {
  if (processing_) {
    again_ = true;
    return;
  }
  processing_ = true;
  do {
    again_ = false;
    while (drain_events()) {
    }
    // Only the connections the core names: with many idle connections a pass costs what changed.
    core_ready(ready_);
    for (const session::PathId id : ready_) {
      if (auto it = paths_.find(id); it != paths_.end()) flush(it->second);
    }
  } while (again_);
  processing_ = false;
  arm_timer();
}

void RuntimeBase::attach(session::PathId id, std::unique_ptr<ByteStream> stream) {
  auto driver = std::make_shared<PathDriver>();
  driver->id = id;
  driver->stream = std::move(stream);
  driver->input_ready = std::make_unique<asio::steady_timer>(io_, session::Time::max());
  paths_[id] = driver;
  asio::co_spawn(io_, read_loop(driver), asio::detached);
}

void RuntimeBase::apply_negotiated_user_timeout(std::span<const session::PathId> connections,
                                                const session::HeartbeatParameters& heartbeat) {
  const auto timeout = session::kernel_user_timeout(heartbeat);
  for (const session::PathId id : connections) {
    if (auto it = paths_.find(id); it != paths_.end() && !it->second->closed)
      set_user_timeout(it->second->stream->socket(), timeout);
  }
}

std::vector<std::chrono::milliseconds> RuntimeBase::user_timeouts(
    std::span<const session::PathId> connections) {
  std::vector<std::chrono::milliseconds> out;
  for (const session::PathId id : connections) {
    if (auto it = paths_.find(id); it != paths_.end() && !it->second->closed) {
      if (const auto timeout = user_timeout(it->second->stream->socket())) out.push_back(*timeout);
    }
  }
  return out;
}

void RuntimeBase::path_done(session::PathId id) {
  auto it = paths_.find(id);
  if (it == paths_.end()) {
    core_closed(id);  // never attached (or already gone): tell the core at once
    return;
  }
  it->second->done_requested = true;
  flush(it->second);
}

void RuntimeBase::finish_path(const std::shared_ptr<PathDriver>& driver) {
  if (driver->closed) return;
  driver->closed = true;
  driver->stream->close();
  driver->input_ready->cancel();
  paths_.erase(driver->id);
  core_closed(driver->id);
  process();
}

void RuntimeBase::flush(const std::shared_ptr<PathDriver>& driver) {
  if (driver->writing || driver->closed) return;
  driver->writing = true;
  asio::co_spawn(io_, write_loop(driver), asio::detached);
}

asio::awaitable<void> RuntimeBase::read_loop(std::shared_ptr<PathDriver> driver) {
  // One read buffer per thread, not per connection: a connection waits until it is readable, then
  // reads into this buffer and hands the bytes to the core before anything else runs, so an idle
  // connection holds no read buffer.
  thread_local std::vector<std::byte> buffer(kReadChunk);
  while (!driver->closed) {
    // Backpressure: a peer that sends and never reads what we answer does not grow our queue; its
    // bytes wait in its own socket buffers until the writer has drained ours.
    while (!core_wants_input(driver->id)) {
      driver->input_ready->expires_at(session::Time::max());
      co_await driver->input_ready->async_wait(kTuple);
      if (driver->closed) co_return;
    }
    std::error_code error;
    co_await driver->stream->wait_readable(error);
    if (driver->closed) co_return;
    std::size_t count = 0;
    if (!error) {
      if (!core_wants_input(driver->id)) continue;  // became full meanwhile
      count = driver->stream->read_available(buffer, error);
    }
    if (error) {
      finish_path(driver);
      co_return;
    }
    if (count == 0) continue;  // nothing complete yet (a partial record)
    core_receive(driver->id, std::span(buffer).first(count));
    process();
  }
}

asio::awaitable<void> RuntimeBase::write_loop(std::shared_ptr<PathDriver> driver) {
  // Grows with what the core hands over (up to kWriteChunk per write, kept between the writes of
  // one burst): reserving the whole chunk up front cost a heartbeat's 30-byte Pong a 132 KiB
  // allocation, which malloc took from the top of the heap and gave back (brk) every time.
  std::vector<std::byte> buffer;
  while (!driver->closed) {
    buffer.clear();
    if (core_take(driver->id, buffer, kWriteChunk) == 0) break;
    std::error_code error;
    co_await driver->stream->write_all(buffer, error);
    if (error) {
      driver->writing = false;
      finish_path(driver);
      co_return;
    }
    driver->input_ready->cancel();  // a reader waiting for room may read again
  }
  driver->writing = false;
  if (driver->done_requested) finish_path(driver);
}

asio::awaitable<void> RuntimeBase::deadline_loop() {
  auto alive = alive_;
  while (*alive && !stopped_) {
    auto [error] = co_await timer_.async_wait(kTuple);
    if (!*alive || stopped_) co_return;
    if (error == asio::error::operation_aborted) continue;  // re-armed
    armed_.reset();
    core_timeout();
    process();
  }
}

void RuntimeBase::arm_timer() {
  // Only ever move the timer earlier: a deadline that moved later (a delayed acknowledgement that
  // left with a data frame, a heartbeat pushed back) lets the armed timer fire early, which costs
  // one harmless on_timeout() instead of re-arming the timer on every pass.
  // With no deadline the timer is parked at the end of time. armed_ is empty once it fired.
  const session::Time target = core_deadline().value_or(session::Time::max());
  if (armed_ && *armed_ <= target) return;
  armed_ = target;
  timer_.expires_at(target);
}

// ---- ClientRuntime
// --------------------------------------------------------------------------------

ClientRuntime::ClientRuntime(asio::io_context& io, ClientOptions options, SessionObserver& observer)
    : RuntimeBase(io, observer),
      options_(std::move(options)),
      route_monitor_(io),
      session_(std::make_unique<session::Session>(options_.session, random_, now())) {}

void ClientRuntime::start() {
  if (options_.watch_network) {
    auto started = route_monitor_.start([this, alive = alive_](const RouteEvent& event) {
      if (*alive) on_route_event(event);
    });
    if (!started) spdlog::warn("client not watching network changes: {}", started.error());
  }
  process();
}

void ClientRuntime::stop() {
  route_monitor_.stop();  // its pending read would keep io_context::run() from returning
  RuntimeBase::stop();
}

namespace {

// The source address the kernel would choose now for a connection to `remote` (a UDP connect
// sends nothing); nullopt when there is no route.
std::optional<asio::ip::address> preferred_source(asio::io_context& io,
                                                  const asio::ip::tcp::endpoint& remote) {
  asio::ip::udp::socket probe(io);
  std::error_code error;
  probe.open(remote.address().is_v4() ? asio::ip::udp::v4() : asio::ip::udp::v6(), error);
  if (!error) probe.connect(asio::ip::udp::endpoint(remote.address(), remote.port()), error);
  if (error) return std::nullopt;
  auto local = probe.local_endpoint(error);
  if (error) return std::nullopt;
  return local.address();
}

std::string describe_event(const RouteEvent& event) {
  if (const auto* removed = std::get_if<route_events::AddressRemoved>(&event))
    return "address " + removed->address.to_string() + " removed";
  if (const auto* added = std::get_if<route_events::AddressAdded>(&event))
    return "address " + added->address.to_string() + " added";
  if (const auto* route = std::get_if<route_events::DefaultRouteChanged>(&event))
    return route->removed ? "default route removed" : "default route changed";
  if (const auto* lost = std::get_if<route_events::Resynchronise>(&event))
    return "network changes lost (" + lost->reason + ")";
  return "network monitor failed";
}

}  // namespace

void ClientRuntime::on_route_event(const RouteEvent& event) {
  if (stopped_) return;
  if (const auto* failed = std::get_if<route_events::Failed>(&event)) {
    spdlog::warn("client stopped watching network changes: {}", failed->reason);
    return;
  }
  spdlog::debug("client network event: {}", describe_event(event));
  const bool removal = std::holds_alternative<route_events::AddressRemoved>(event);
  for (const auto& [id, driver] : paths_) {
    if (!driver->local || !driver->remote) continue;
    if (!may_break_connection(event, driver->local->address())) continue;
    // A default route that moved (or lost events) matters only if this connection would now
    // leave from another address; a removed address always does.
    if (!removal && options_.bind_address.empty()) {
      const auto source = preferred_source(io_, *driver->remote);
      if (source && *source == driver->local->address()) continue;
    }
    spdlog::info("client {}: connection {} from {} is affected; moving now", describe_event(event),
                 id, driver->local->address().to_string());
    session_->on_path_network_change(id, now());
  }
  if (std::holds_alternative<route_events::AddressAdded>(event) ||
      std::holds_alternative<route_events::DefaultRouteChanged>(event)) {
    session_->on_network_available(now());
  }
  process();
}

void ClientRuntime::start_new_session() {
  asio::post(io_, [this, alive = alive_] {
    if (!*alive || stopped_ || session_->phase() != session::Phase::kClosed) return;
    // The old session's connections were told PathDone; their drivers finish on their own and
    // report to the new session, which ignores path ids it does not know.
    session_ = std::make_unique<session::Session>(options_.session, random_, now());
    process();
  });
}

void ClientRuntime::core_receive(session::PathId path, std::span<const std::byte> bytes) {
  session_->receive(path, bytes, now());
}
std::size_t ClientRuntime::core_take(session::PathId path, std::vector<std::byte>& out,
                                     std::size_t max) {
  return session_->take_outgoing(path, out, max, now());
}
void ClientRuntime::core_closed(session::PathId path) {
  session_->on_path_closed(path, now());
}
std::vector<session::PathId> ClientRuntime::connection_ids() const {
  std::vector<session::PathId> out;
  for (const auto& [id, driver] : paths_) out.push_back(id);
  return out;
}

void ClientRuntime::core_ready(std::vector<session::PathId>& out) {
  out.clear();
  for (const auto& [id, driver] : paths_) out.push_back(id);
}

bool ClientRuntime::drain_events() {
  bool any = false;
  while (auto event = session_->poll_event()) {
    any = true;
    if (std::holds_alternative<session::events::PathWanted>(*event)) {
      asio::co_spawn(io_, connect(), asio::detached);
      continue;
    }
    if (const auto* done = std::get_if<session::events::PathDone>(&*event)) {
      path_done(done->path);
      continue;
    }
    log_lifecycle("client", session_->id(), *event);
    if (negotiates_heartbeat(*event))
      apply_negotiated_user_timeout(connection_ids(), session_->heartbeat());
    observer_.on_event(session_->id(), session_.get(), *event);
  }
  return any;
}

asio::awaitable<void> ClientRuntime::connect() {
  // Resolve again on every attempt: the server's address may have changed.
  asio::ip::tcp::resolver resolver(io_);
  auto [resolve_error, results] =
      co_await resolver.async_resolve(options_.host, options_.port, kTuple);
  TransportError failure;
  std::unique_ptr<ByteStream> stream;
  if (resolve_error) {
    failure = {TransportErrorKind::kResolve,
               "cannot resolve " + options_.host + ": " + resolve_error.message()};
  } else {
    asio::ip::tcp::socket socket(io_);
    asio::steady_timer deadline(io_);
    deadline.expires_after(session_->suspended()
                               ? std::min(options_.connect_timeout, options_.resume_connect_timeout)
                               : options_.connect_timeout);
    // The handler may run after this frame is gone: it owns what it touches.
    auto timed_out = std::make_shared<bool>(false);
    deadline.async_wait([timed_out, &socket, alive = alive_](std::error_code error) {
      if (error || !*alive) return;
      *timed_out = true;
      std::error_code ignored;
      socket.cancel(ignored);
    });
    std::error_code connect_error = asio::error::host_not_found;
    for (const auto& entry : results) {
      connect_error = co_await dial(socket, entry.endpoint());
      if (!connect_error || *timed_out) break;
    }
    if (connect_error) {
      failure = {*timed_out ? TransportErrorKind::kTimedOut : connect_error_kind(connect_error),
                 "cannot connect to " + options_.host + ":" + options_.port + ": " +
                     (*timed_out ? std::string("timed out") : connect_error.message())};
    } else {
      tune_socket(socket, user_timeout_for(options_.session));
      limit_unsent_bytes(socket);
      deadline.cancel();
      asio::steady_timer handshake_deadline(io_);
      handshake_deadline.expires_after(options_.connect_timeout);
      handshake_deadline.async_wait([descriptor = socket.native_handle()](std::error_code error) {
        if (!error) ::shutdown(descriptor, SHUT_RDWR);
      });
      auto opened = co_await open_byte_stream(std::move(socket), options_.tls.get(), Side::kClient);
      handshake_deadline.cancel();
      if (!opened) {
        failure = opened.error();
        if (is_fatal(failure.kind)) {
          observer_.on_fatal(failure);
          session_->on_path_failed(now());
          co_return;
        }
      } else {
        stream = std::move(*opened);
      }
    }
    deadline.cancel();
  }
  if (!stream) {
    log_connect_failure(failure);
    session_->on_path_failed(now());
    process();
    co_return;
  }
  const session::PathId id = next_path_++;
  const session::ConnectionSecurity security = stream->security();
  std::error_code ignored;
  const auto local = stream->socket().local_endpoint(ignored);
  const auto remote = stream->socket().remote_endpoint(ignored);
  attach(id, std::move(stream));
  if (auto driver = paths_.find(id); driver != paths_.end()) {
    driver->second->local = local;
    driver->second->remote = remote;
  }
  session_->add_path(id, security, now());
  spdlog::debug("client connection {} to {}:{} up", id, options_.host, options_.port);
  process();
}

asio::awaitable<std::error_code> ClientRuntime::dial(asio::ip::tcp::socket& socket,
                                                     const asio::ip::tcp::endpoint& endpoint) {
  std::error_code error;
  if (socket.is_open()) socket.close(error);
  socket.open(endpoint.protocol(), error);
  if (error) co_return error;
  if (!options_.bind_interface.empty()) {
    if (::setsockopt(socket.native_handle(), SOL_SOCKET, SO_BINDTODEVICE,
                     options_.bind_interface.data(),
                     static_cast<socklen_t>(options_.bind_interface.size())) != 0) {
      co_return std::error_code(errno, std::system_category());
    }
  }
  if (!options_.bind_address.empty()) {
    const auto address = asio::ip::make_address(options_.bind_address, error);
    if (error) co_return error;
    if (address.is_v4() != endpoint.address().is_v4())
      co_return asio::error::address_family_not_supported;
    socket.bind(asio::ip::tcp::endpoint(address, 0), error);
    if (error) co_return error;
  }
  auto [connect_error] = co_await socket.async_connect(endpoint, kTuple);
  co_return connect_error;
}

// ---- ServerRuntime
// --------------------------------------------------------------------------------

ServerRuntime::ServerRuntime(asio::io_context& io, ServerOptions options, SessionObserver& observer)
    : RuntimeBase(io, observer),
      options_(std::move(options)),
      endpoint_(options_.session, options_.static_key, random_, options_.limits),
      acceptor_(io),
      admission_(options_.admission),
      verification_pool_(options_.verification_threads != 0 ? options_.verification_threads
                                                            : WorkerPool::default_threads(),
                         options_.verification_queue) {
  endpoint_.set_deferred_work(true);
  endpoint_.set_refusal_observer(
      [this](const session::ServerEndpoint::AuthenticationRefusal& refusal) {
        log_refusal(refusal);
      });
}

void ServerRuntime::dispatch_deferred_work() {
  endpoint_.take_deferred_work(deferred_scratch_);
  for (const auto& entry : deferred_scratch_) {
    std::shared_ptr<session::DeferredWork> work = entry.work.lock();
    if (work == nullptr) continue;
    const session::PathId connection = entry.connection;
    // The queue holds only a weak pointer: a connection that goes away (closed, timed out) while
    // its job waits frees the exchange, and the job is then skipped unrun.
    const bool queued =
        verification_pool_.try_submit([this, connection, weak = entry.work, alive = alive_] {
          std::shared_ptr<session::DeferredWork> job = weak.lock();
          if (job == nullptr) return;
          job->run();
          // Back on the event loop; the shared pointer keeps the work's identity until then.
          asio::post(io_, [this, connection, job = std::move(job), alive] {
            if (!*alive) return;
            endpoint_.complete_deferred(connection, *job, now());
            if (admitted_.contains(connection) && !endpoint_.is_pending(connection))
              release_admission(connection);
            process();
          });
        });
    if (queued) {
      spdlog::debug("server connection {} verifying credentials on the worker pool", connection);
    } else {
      endpoint_.refuse_deferred(connection, *work);
    }
  }
}

void ServerRuntime::log_refusal(const session::ServerEndpoint::AuthenticationRefusal& refusal) {
  // Its own limiter: 10 lines a second, then one line saying how many were held back.
  static LogRateLimiter limiter(10, std::chrono::seconds(1));
  if (!spdlog::should_log(spdlog::level::warn)) return;
  const auto decision = limiter.admit("refused authentication", LogRateLimiter::Clock::now());
  if (!decision.log) return;
  if (decision.suppressed > 0) {
    spdlog::warn("{} similar lines (refused authentication) suppressed", decision.suppressed);
  }
  std::string certificate;
  if (auto it = certificate_problems_.find(refusal.connection); it != certificate_problems_.end())
    certificate = "; client certificate: " + it->second;  // OpenSSL's text and ours: no peer bytes
  spdlog::warn(
      "server refused authentication from {} (connection {}): mechanism {}, user {}, {}{}: {}{}",
      refusal.source, refusal.connection,
      refusal.mechanism.empty() ? std::string("none") : escape_for_log(refusal.mechanism),
      refusal.claimed_identity.empty() ? std::string("unknown")
                                       : escape_for_log(refusal.claimed_identity),
      wire::to_string(refusal.reason), refusal.transient ? " (transient)" : "",
      escape_for_log(refusal.message), certificate);
}

Expected<void, std::string> ServerRuntime::start() {
  std::error_code error;
  acceptor_.open(options_.listen.protocol(), error);
  if (!error) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor_.bind(options_.listen, error);
  if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return make_unexpected("cannot listen on " + options_.listen.address().to_string() + ":" +
                           std::to_string(options_.listen.port()) + ": " + error.message());
  }
  asio::co_spawn(io_, accept_loop(), asio::detached);
  return {};
}

void ServerRuntime::shut_down(std::chrono::milliseconds grace, std::function<void()> done) {
  std::error_code ignored;
  acceptor_.close(ignored);
  for (const auto& id : endpoint_.session_ids()) {
    if (session::Session* session = endpoint_.find(id);
        session != nullptr && session->phase() != session::Phase::kClosed) {
      session->abort(wire::Reason::kShutdown, now(), /*transient=*/true);
    }
  }
  process();
  auto timer = std::make_shared<asio::steady_timer>(io_);
  auto poll = std::make_shared<std::function<void()>>();
  const auto give_up = now() + grace;
  *poll = [this, timer, poll, give_up, done = std::move(done), alive = alive_]() mutable {
    if (!*alive) return;
    if (paths_.empty() || now() >= give_up) {
      done();
      *poll = nullptr;  // break the cycle
      return;
    }
    timer->expires_after(std::chrono::milliseconds(20));
    timer->async_wait([poll](std::error_code) {
      if (*poll) (*poll)();
    });
  };
  (*poll)();
}

void ServerRuntime::core_receive(session::PathId path, std::span<const std::byte> bytes) {
  endpoint_.receive(path, bytes, now());
  if (admitted_.contains(path) && !endpoint_.is_pending(path)) release_admission(path);
}

void ServerRuntime::release_admission(session::PathId path) {
  certificate_problems_.erase(path);
  auto it = admitted_.find(path);
  if (it == admitted_.end()) return;
  admission_.release(it->second);
  admitted_.erase(it);
}
std::size_t ServerRuntime::core_take(session::PathId path, std::vector<std::byte>& out,
                                     std::size_t max) {
  return endpoint_.take_outgoing(path, out, max, now());
}
void ServerRuntime::core_closed(session::PathId path) {
  release_admission(path);
  endpoint_.on_connection_closed(path, now());
}

bool ServerRuntime::drain_events() {
  dispatch_deferred_work();
  bool any = false;
  while (auto tagged = endpoint_.poll_event()) {
    any = true;
    if (const auto* done = std::get_if<session::events::PathDone>(&tagged->event)) {
      path_done(done->path);
      continue;
    }
    log_lifecycle("server", tagged->session, tagged->event);
    const session::ServerEndpoint& core = endpoint_;
    if (std::holds_alternative<session::events::Established>(tagged->event)) {
      const session::Session* session = core.find(tagged->session);
      if (session != nullptr && !session->peer().mechanism.empty()) {
        spdlog::info("server session {} authenticated {} with {}", short_id(tagged->session),
                     escape_for_log(session->peer().principal), session->peer().mechanism);
      }
    }
    if (negotiates_heartbeat(tagged->event)) {
      if (const session::Session* session = core.find(tagged->session))
        apply_negotiated_user_timeout(core.connections_of(tagged->session), session->heartbeat());
    }
    observer_.on_event(tagged->session, endpoint_.find(tagged->session), tagged->event);
  }
  return any;
}

asio::awaitable<void> ServerRuntime::accept_loop() {
  AcceptBackoff backoff("server");
  while (!stopped_) {
    auto [error, socket] = co_await acceptor_.async_accept(kTuple);
    if (error == asio::error::operation_aborted || stopped_) co_return;
    if (error) {
      co_await backoff.after_failure(error);  // out of descriptors: pause instead of spinning
      continue;
    }
    backoff.after_success();
    asio::co_spawn(io_, handshake(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> ServerRuntime::handshake(asio::ip::tcp::socket socket) {
  std::error_code ignored;
  const auto remote = socket.remote_endpoint(ignored);
  // Admission before any work: connections that have not yet joined a session are bounded in
  // total and per source; past the bounds a connection is closed at once (costing one accept).
  const std::string source = source_key(remote.address());
  if (!admission_.try_admit(source)) {
    ++connections_refused_;
    log_limited(spdlog::level::warn, "refused connection",
                "server refused a connection before its first frame: {} pending (limit {}), {} "
                "from {} (limit {})",
                admission_.pending(), admission_.limits().total, admission_.pending_from(source),
                source, admission_.limits().per_source);
    socket.close(ignored);
    co_return;
  }
  tune_socket(socket, user_timeout_for(options_.session));
  limit_unsent_bytes(socket);
  // The socket moves into the stream during the handshake; the descriptor stays open until the
  // deadline is cancelled below, so shutting it down is how the timeout interrupts the handshake.
  asio::steady_timer deadline(io_);
  deadline.expires_after(options_.handshake_timeout);
  deadline.async_wait([descriptor = socket.native_handle()](std::error_code error) {
    if (!error) ::shutdown(descriptor, SHUT_RDWR);
  });
  auto opened = co_await open_byte_stream(std::move(socket), options_.tls.get(), Side::kServer);
  deadline.cancel();
  if (!opened) {
    admission_.release(source);
    log_limited(spdlog::level::debug, "failed handshake", "server handshake with {} failed: {}",
                remote.address().to_string(), escape_for_log(opened.error().message));
    co_return;
  }
  const session::PathId id = next_path_++;
  session::ConnectionSecurity security = (*opened)->security();
  admitted_.emplace(id, source);
  if (std::string problem = (*opened)->peer_certificate_problem(); !problem.empty())
    certificate_problems_.emplace(id, std::move(problem));
  attach(id, std::move(*opened));
  endpoint_.accept(id, std::move(security), now(), source);
  spdlog::debug("server connection {} from {}:{}", id, remote.address().to_string(), remote.port());
  process();
}

}  // namespace tether::transport
