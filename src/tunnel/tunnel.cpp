#include "tunnel/tunnel.hpp"

#include <spdlog/spdlog.h>

#include <asio/experimental/as_tuple.hpp>

namespace tether::tunnel {
namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::size_t kChunk = 64u << 10;
namespace events = session::events;
using BridgeMap = std::map<session::StreamId, std::shared_ptr<StreamBridge>>;

// Hands a stream event to its bridge; returns false for events that are not about streams. Bridges
// that are done in both directions are dropped.
bool dispatch_stream_event(BridgeMap& bridges, const session::Event& event) {
  auto with_bridge = [&](session::StreamId stream, auto&& action) {
    if (auto it = bridges.find(stream); it != bridges.end()) action(it);
  };
  if (const auto* readable = std::get_if<events::StreamReadable>(&event)) {
    with_bridge(readable->stream, [](auto it) { it->second->on_readable(); });
  } else if (const auto* finished = std::get_if<events::StreamFinished>(&event)) {
    with_bridge(finished->stream, [](auto it) { it->second->on_readable(); });
  } else if (const auto* reset = std::get_if<events::StreamReset>(&event)) {
    with_bridge(reset->stream, [&](auto it) {
      it->second->on_reset();
      bridges.erase(it);
    });
  } else if (std::holds_alternative<events::Writable>(event)) {
    for (auto& [id, bridge] : bridges) bridge->on_writable();
  } else {
    return false;
  }
  for (auto it = bridges.begin(); it != bridges.end();)
    it = it->second->closed() ? bridges.erase(it) : std::next(it);
  return true;
}

}  // namespace

// ---- StreamBridge
// ---------------------------------------------------------------------------------

StreamBridge::StreamBridge(asio::io_context& io, transport::RuntimeBase& runtime,
                           SessionLookup session, session::StreamId stream, Role role,
                           std::string label)
    : io_(io),
      runtime_(runtime),
      session_(std::move(session)),
      stream_(stream),
      role_(role),
      label_(std::move(label)),
      local_(io),
      readable_signal_(io),
      writable_signal_(io) {}

void StreamBridge::start_client(asio::ip::tcp::socket local, const ConnectRequest& target) {
  local_ = std::move(local);
  std::error_code ignored;
  local_.set_option(asio::ip::tcp::no_delay(true), ignored);
  session::Session* session = session_();
  const auto request = encode(target);
  if (session == nullptr || !session->write(stream_, request, session::Clock::now())) {
    close("session not writable");
    return;
  }
  runtime_.wake();
  asio::co_spawn(io_, downstream(), asio::detached);
  asio::co_spawn(io_, upstream(), asio::detached);
}

void StreamBridge::start_server(const AllowList& allow) {
  allow_ = &allow;
  asio::co_spawn(io_, downstream(), asio::detached);
}

void StreamBridge::on_reset() {
  if (closed_) return;
  spdlog::info("{}: reset by the peer", label_);
  // The peer abandoned the stream: abort the local connection too (RST, not FIN).
  std::error_code ignored;
  local_.set_option(asio::socket_base::linger(true, 0), ignored);
  closed_ = true;
  local_.close(ignored);
  readable_signal_.cancel();
  writable_signal_.cancel();
}

void StreamBridge::close(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  spdlog::debug("{}: closed ({})", label_, why);
  if (session::Session* session = session_()) {
    session->reset_stream(stream_, 1, session::Clock::now());
    runtime_.wake();
  }
  std::error_code ignored;
  local_.close(ignored);
  readable_signal_.cancel();
  writable_signal_.cancel();
}

void StreamBridge::maybe_finish() {
  if (upstream_done_ && downstream_done_ && !closed_) {
    closed_ = true;
    std::error_code ignored;
    local_.close(ignored);
  }
}

asio::awaitable<void> StreamBridge::wait(asio::steady_timer& signal) {
  signal.expires_at(asio::steady_timer::time_point::max());
  auto [error] = co_await signal.async_wait(kTuple);
  (void)error;
}

asio::awaitable<void> StreamBridge::downstream() {
  auto self = shared_from_this();
  std::vector<std::byte> buffer;
  while (!closed_) {
    session::Session* session = session_();
    if (session == nullptr) {
      close("session gone");
      co_return;
    }
    const auto view = session->peek(stream_);
    if (view.empty()) {
      auto end = session->read(stream_, {}, session::Clock::now());
      if (!end) {
        if (!closed_) close("stream gone");
        co_return;
      }
      if (end->finished) {
        if (!header_done_) {
          close("stream ended before its header");
          co_return;
        }
        std::error_code ignored;
        local_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        downstream_done_ = true;
        maybe_finish();
        co_return;
      }
      co_await wait(readable_signal_);
      continue;
    }
    const std::size_t count = std::min(view.size(), kChunk);
    buffer.assign(view.begin(), view.begin() + static_cast<std::ptrdiff_t>(count));
    session->consume(stream_, count, session::Clock::now());
    runtime_.wake();
    if (!header_done_) {
      header_.insert(header_.end(), buffer.begin(), buffer.end());
      std::size_t consumed = 0;
      if (role_ == Role::kServer) {
        auto parsed = parse_request(header_, consumed);
        if (!parsed) {
          close("bad request: " + parsed.error());
          co_return;
        }
        if (!parsed->has_value()) continue;
        header_done_ = true;
        buffer.assign(header_.begin() + static_cast<std::ptrdiff_t>(consumed), header_.end());
        header_.clear();
        co_await connect_target(**parsed);
        if (closed_) co_return;
      } else {
        auto parsed = parse_reply(header_, consumed);
        if (!parsed) {
          close("bad reply: " + parsed.error());
          co_return;
        }
        if (!parsed->has_value()) continue;
        if ((*parsed)->status != ReplyStatus::kConnected) {
          spdlog::error("{}: {}: {}", label_, to_string((*parsed)->status), (*parsed)->message);
          close(to_string((*parsed)->status));
          co_return;
        }
        header_done_ = true;
        buffer.assign(header_.begin() + static_cast<std::ptrdiff_t>(consumed), header_.end());
        header_.clear();
      }
      if (buffer.empty()) continue;
    }
    auto [error, written] =
        co_await asio::async_write(local_, asio::buffer(buffer.data(), buffer.size()), kTuple);
    (void)written;
    if (error) {
      if (!closed_) close("local write failed: " + error.message());
      co_return;
    }
  }
}

asio::awaitable<void> StreamBridge::connect_target(ConnectRequest request) {
  const std::string target = request.host + ":" + std::to_string(request.port);
  auto reply = [&](ReplyStatus status, const std::string& message) {
    if (session::Session* session = session_()) {
      (void)session->write(stream_, encode(Reply{status, message}), session::Clock::now());
      runtime_.wake();
    }
  };
  if (allow_ == nullptr || !allow_->allows(request.host, request.port)) {
    spdlog::warn("{}: refused {}: not on the allow list", label_, target);
    reply(ReplyStatus::kNotAllowed, target + " is not on the server's allow list");
    if (session::Session* session = session_()) session->finish(stream_, session::Clock::now());
    closed_ = true;
    co_return;
  }
  asio::ip::tcp::resolver resolver(io_);
  auto [resolve_error, results] =
      co_await resolver.async_resolve(request.host, std::to_string(request.port), kTuple);
  if (resolve_error) {
    reply(ReplyStatus::kUnreachable,
          "cannot resolve " + request.host + ": " + resolve_error.message());
    if (session::Session* session = session_()) session->finish(stream_, session::Clock::now());
    closed_ = true;
    co_return;
  }
  asio::ip::tcp::socket socket(io_);
  auto [connect_error, endpoint] = co_await asio::async_connect(socket, results, kTuple);
  (void)endpoint;
  if (connect_error) {
    const bool refused = connect_error == asio::error::connection_refused;
    spdlog::warn("{}: cannot connect to {}: {}", label_, target, connect_error.message());
    reply(refused ? ReplyStatus::kRefused : ReplyStatus::kUnreachable,
          "cannot connect to " + target + ": " + connect_error.message());
    if (session::Session* session = session_()) session->finish(stream_, session::Clock::now());
    closed_ = true;
    co_return;
  }
  if (closed_) co_return;
  std::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  local_ = std::move(socket);
  spdlog::debug("{}: connected to {}", label_, target);
  reply(ReplyStatus::kConnected, {});
  asio::co_spawn(io_, upstream(), asio::detached);
}

asio::awaitable<void> StreamBridge::upstream() {
  auto self = shared_from_this();
  std::vector<std::byte> buffer(kChunk);
  while (!closed_) {
    auto [error, count] =
        co_await local_.async_read_some(asio::buffer(buffer.data(), buffer.size()), kTuple);
    if (closed_) co_return;
    session::Session* session = session_();
    if (session == nullptr) {
      close("session gone");
      co_return;
    }
    if (error) {
      if (error == asio::error::eof) {
        (void)session->finish(stream_, session::Clock::now());
        runtime_.wake();
        upstream_done_ = true;
        maybe_finish();
      } else {
        close("local read failed: " + error.message());
      }
      co_return;
    }
    std::span<const std::byte> pending(buffer.data(), count);
    while (!pending.empty() && !closed_) {
      session = session_();
      if (session == nullptr) {
        close("session gone");
        co_return;
      }
      auto accepted = session->write(stream_, pending, session::Clock::now());
      if (accepted) {
        pending = pending.subspan(*accepted);
        runtime_.wake();
      } else if (accepted.error() == session::StreamError::kWouldBlock) {
        co_await wait(writable_signal_);  // TCP freeze: stop reading until the session has room
      } else {
        close(std::string("stream not writable: ") + session::to_string(accepted.error()));
        co_return;
      }
    }
  }
}

// ---- Forward parsing
// ------------------------------------------------------------------------------

Expected<LocalForward, std::string> parse_local_forward(std::string_view text) {
  // [BIND:]PORT:HOST:HOSTPORT; split from the right so that HOST may be [v6].
  LocalForward forward;
  auto target_at = text.rfind(':');
  if (target_at == std::string_view::npos)
    return make_unexpected("-L expects [BIND:]PORT:HOST:HOSTPORT, got '" + std::string(text) + "'");
  std::string_view rest = text.substr(0, target_at);
  std::size_t host_at = rest.rfind(':');
  if (!rest.empty() && rest.back() == ']') {
    const auto open = rest.rfind('[');
    host_at = open == std::string_view::npos || open == 0 ? std::string_view::npos : open - 1;
  }
  if (host_at == std::string_view::npos)
    return make_unexpected("-L expects [BIND:]PORT:HOST:HOSTPORT, got '" + std::string(text) + "'");
  auto target = split_host_port(text.substr(host_at + 1));
  if (!target) return make_unexpected("-L " + std::string(text) + ": " + target.error());
  forward.target = ConnectRequest{target->first, target->second};
  const std::string_view local = text.substr(0, host_at);
  auto bind = local.find(':') == std::string_view::npos
                  ? split_host_port("127.0.0.1:" + std::string(local))
                  : split_host_port(local);
  if (!bind) return make_unexpected("-L " + std::string(text) + ": " + bind.error());
  forward.bind_address = bind->first;
  forward.bind_port = bind->second;
  return forward;
}

// ---- ClientTunnel
// ---------------------------------------------------------------------------------

ClientTunnel::ClientTunnel(asio::io_context& io, std::vector<LocalForward> forwards,
                           bool new_session_on_loss)
    : io_(io), forwards_(std::move(forwards)), new_session_on_loss_(new_session_on_loss) {}

Expected<void, std::string> ClientTunnel::start() {
  for (std::size_t index = 0; index < forwards_.size(); ++index) {
    const auto& forward = forwards_[index];
    std::error_code error;
    const auto address = asio::ip::make_address(forward.bind_address, error);
    auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(io_);
    const asio::ip::tcp::endpoint endpoint(address, forward.bind_port);
    if (!error) acceptor->open(endpoint.protocol(), error);
    if (!error) acceptor->set_option(asio::ip::tcp::acceptor::reuse_address(true), error);
    if (!error) acceptor->bind(endpoint, error);
    if (!error) acceptor->listen(asio::socket_base::max_listen_connections, error);
    if (error) {
      return make_unexpected("cannot listen on " + forward.bind_address + ":" +
                             std::to_string(forward.bind_port) + ": " + error.message());
    }
    spdlog::info("client forwarding {}:{} to {}:{}", forward.bind_address,
                 acceptor->local_endpoint().port(), forward.target.host, forward.target.port);
    acceptors_.push_back(std::move(acceptor));
    asio::co_spawn(io_, accept_loop(index), asio::detached);
  }
  return {};
}

std::vector<std::uint16_t> ClientTunnel::bound_ports() const {
  std::vector<std::uint16_t> ports;
  for (const auto& acceptor : acceptors_) ports.push_back(acceptor->local_endpoint().port());
  return ports;
}

asio::awaitable<void> ClientTunnel::accept_loop(std::size_t index) {
  while (true) {
    auto [error, socket] = co_await acceptors_[index]->async_accept(kTuple);
    if (error == asio::error::operation_aborted) co_return;
    if (error) continue;
    if (open_) {
      open_bridge(std::move(socket), forwards_[index]);
    } else {
      waiting_.emplace_back(std::move(socket),
                            index);  // held (paused) until the session is established
    }
  }
}

void ClientTunnel::open_bridge(asio::ip::tcp::socket socket, const LocalForward& forward) {
  auto stream = runtime_->session().open_stream(0, session::Clock::now());
  if (!stream) {
    spdlog::warn("client cannot open a stream: {}", session::to_string(stream.error()));
    return;
  }
  auto lookup = [runtime = runtime_]() -> session::Session* {
    return runtime->session().phase() == session::Phase::kOpen ? &runtime->session() : nullptr;
  };
  auto bridge = std::make_shared<StreamBridge>(
      io_, *runtime_, lookup, *stream, StreamBridge::Role::kClient,
      "stream " + std::to_string(*stream) + " to " + forward.target.host + ":" +
          std::to_string(forward.target.port));
  bridges_[*stream] = bridge;
  bridge->start_client(std::move(socket), forward.target);
}

void ClientTunnel::on_event(const session::SessionId&, session::Session*,
                            const session::Event& event) {
  if (dispatch_stream_event(bridges_, event)) return;
  if (std::holds_alternative<events::Established>(event)) {
    open_ = true;
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& [socket, index] : waiting) open_bridge(std::move(socket), forwards_[index]);
  } else if (const auto* closed = std::get_if<events::Closed>(&event)) {
    using wire::Reason;
    int code = kExitRefused;
    switch (closed->reason) {
      case Reason::kShutdown:
        code = kExitGraceful;
        break;
      case Reason::kUnknownSession:
      case Reason::kLingerExpired:
        code = kExitSessionLost;
        break;
      case Reason::kReconnectExhausted:
        code = kExitUnreachable;
        break;
      default:
        break;
    }
    if (closed->unacknowledged_bytes > 0) {
      spdlog::warn(
          "client: {} bytes written by local programs were never acknowledged by the server",
          closed->unacknowledged_bytes);
    }
    if (code == kExitSessionLost && new_session_on_loss_ && runtime_ != nullptr) {
      spdlog::info(
          "client: the server no longer has the session; {} tunnelled connections end; starting a "
          "new session",
          bridges_.size());
      for (auto& [id, bridge] : bridges_) bridge->close("session lost");
      bridges_.clear();
      open_ = false;  // connections accepted from now on wait for the new session
      runtime_->start_new_session();
      return;
    }
    shutdown(code);
  }
}

void ClientTunnel::on_fatal(const std::string& message) {
  spdlog::error("client: {}", message);
  if (runtime_ != nullptr)
    (void)runtime_->session().abort(wire::Reason::kAuthFailed, session::Clock::now());
  shutdown(kExitFingerprintMismatch);
}

void ClientTunnel::shutdown(int code) {
  exit_code_ = code;
  for (auto& [id, bridge] : bridges_) bridge->close("session ended");
  bridges_.clear();
  for (auto& acceptor : acceptors_) {
    std::error_code ignored;
    acceptor->close(ignored);
  }
  for (auto& [socket, index] : waiting_) {
    std::error_code ignored;
    socket.close(ignored);
  }
  waiting_.clear();
  if (runtime_ != nullptr) runtime_->stop();
  io_.stop();
}

// ---- ServerTunnel
// ---------------------------------------------------------------------------------

ServerTunnel::ServerTunnel(asio::io_context& io, AllowList allow)
    : io_(io), allow_(std::move(allow)) {}

void ServerTunnel::on_event(const session::SessionId& id, session::Session*,
                            const session::Event& event) {
  auto& bridges = bridges_[id];
  if (dispatch_stream_event(bridges, event)) return;
  if (const auto* opened = std::get_if<events::StreamOpened>(&event)) {
    auto lookup = [runtime = runtime_, id]() -> session::Session* {
      session::Session* session = runtime->endpoint().find(id);
      return session != nullptr && session->phase() == session::Phase::kOpen ? session : nullptr;
    };
    auto bridge = std::make_shared<StreamBridge>(
        io_, *runtime_, lookup, opened->stream, StreamBridge::Role::kServer,
        "session " + transport::short_id(id) + " stream " + std::to_string(opened->stream));
    bridges[opened->stream] = bridge;
    bridge->start_server(allow_);
  } else if (const auto* closed = std::get_if<events::Closed>(&event)) {
    if (!bridges.empty()) {
      spdlog::info("server session {}: closing {} tunnelled connections ({})",
                   transport::short_id(id), bridges.size(), wire::to_string(closed->reason));
    }
    for (auto& [stream, bridge] : bridges) bridge->close("session closed");
    bridges_.erase(id);
  }
}

void ServerTunnel::on_fatal(const std::string& message) {
  spdlog::error("server: {}", message);
}

}  // namespace tether::tunnel
