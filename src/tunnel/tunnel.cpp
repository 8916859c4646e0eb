#include "tunnel/tunnel.hpp"

#include "transport/accept_backoff.hpp"
#include "transport/event_log.hpp"
#include "tunnel/socks5.hpp"

#include "transport/log_safety.hpp"

#include <spdlog/spdlog.h>

#include <asio/experimental/as_tuple.hpp>

namespace tether::tunnel {
namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
// The most one read from a local connection carries.
constexpr std::size_t kReadChunk = 64u << 10;
// The most one downstream read from the session (and so one socket write) carries.
constexpr std::size_t kDownstreamBatch = 256u << 10;
// Read from the session when the local side reports writable but cannot tell its room.
constexpr std::size_t kLeastDownstreamRead = 4u << 10;
// The longest stream header: a reply with the longest message (a request is shorter).
constexpr std::size_t kMaxHeaderLength = 3 + kMaxMessageLength;
static_assert(kMaxHeaderLength >= 6 + kMaxHostLength);

// One buffer for every bridge of the thread, for the copy between the session and a local
// connection: a bridge fills it and empties it without suspending in between, and keeps only what
// the other side did not take. So memory grows with the bytes in flight, not with the streams.
std::span<std::byte> shared_scratch() {
  constexpr std::size_t kSize = std::max(kReadChunk, kDownstreamBatch);
  thread_local const std::unique_ptr<std::byte[]> buffer =
      std::make_unique_for_overwrite<std::byte[]>(kSize);
  return {buffer.get(), kSize};
}
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
      it->second->on_reset(reset->error_code);
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
                           SessionLookup session, session::StreamId stream, std::string label,
                           ReleaseAfterLoad* release)
    : io_(io),
      runtime_(runtime),
      session_(std::move(session)),
      stream_(stream),
      label_(transport::escape_for_log(label)),  // labels name hosts: logged escaped
      release_(release),
      readable_signal_(io),
      writable_signal_(io) {}

void StreamBridge::start_initiator(std::unique_ptr<LocalConnection> local,
                                   const StreamRequest& request, ReplyHook on_reply,
                                   std::vector<std::byte> first_bytes) {
  initiator_ = true;
  local_ = std::move(local);
  holding_listener_ = local_ == nullptr;
  on_reply_ = std::move(on_reply);
  // The request goes first, through upstream(): like any byte it may have to wait for room in
  // the session (a bulk transfer can hold the session's whole send window for a moment).
  first_bytes_ = encode(request);
  first_bytes_.insert(first_bytes_.end(), first_bytes.begin(), first_bytes.end());
  asio::co_spawn(io_, downstream(), asio::detached);
  asio::co_spawn(io_, upstream(), asio::detached);
}

void StreamBridge::start_acceptor(ConnectPolicy policy, ListenHandler on_listen) {
  policy_ = std::move(policy);
  on_listen_ = std::move(on_listen);
  asio::co_spawn(io_, downstream(), asio::detached);
}

void StreamBridge::on_reset(std::uint64_t error_code) {
  if (closed_) return;
  // The reason is this side's text for a number: nothing of the peer's reaches the log.
  spdlog::log(error_code == kResetNotGranted ? spdlog::level::warn : spdlog::level::info,
              "{}: reset by the peer ({})", label_, reset_reason(error_code));
  if (local_ != nullptr) local_->abort();
  end(false);
}

void StreamBridge::close(const std::string& why, std::uint64_t reset_code) {
  if (closed_) return;
  spdlog::debug("{}: closed ({})", label_, why);
  if (session::Session* session = session_()) {
    session->reset_stream(stream_, reset_code, session::Clock::now());
    runtime_.wake();
  }
  end(false);
}

void StreamBridge::drop(const std::string& why) {
  if (closed_) return;
  spdlog::debug("{}: dropped ({})", label_, why);
  end(false);
}

void StreamBridge::end(bool graceful) {
  if (closed_) return;
  closed_ = true;
  if (local_ != nullptr) local_->close();
  readable_signal_.cancel();
  writable_signal_.cancel();
  if (release_ != nullptr) release_->ended();
  if (auto hook = std::move(on_closed_)) hook(graceful);
}

void StreamBridge::finish_local_if_done() {
  if (upstream_done_ && downstream_done_) end(true);
}

bool StreamBridge::send_reply(const Reply& reply) {
  session::Session* session = session_();
  if (session == nullptr) return true;  // nobody to tell
  std::vector<std::byte> bytes = encode(reply);
  std::size_t taken = 0;
  if (auto accepted = session->write(stream_, bytes, session::Clock::now())) taken = *accepted;
  runtime_.wake();
  if (taken == bytes.size()) return true;
  // The session took only part of the reply (its send bounds: WouldBlock): the rest goes first on
  // the upstream path, which waits for room, so that no data overtakes the reply on the stream.
  first_bytes_.insert(first_bytes_.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(taken),
                      bytes.end());
  return false;
}

void StreamBridge::refuse(const Reply& reply) {
  send_reply(reply);
  if (session::Session* session = session_()) {
    (void)session->finish(stream_, session::Clock::now());
    runtime_.wake();
  }
  end(false);
}

asio::awaitable<void> StreamBridge::wait(asio::steady_timer& signal) {
  signal.expires_at(asio::steady_timer::time_point::max());
  auto [error] = co_await signal.async_wait(kTuple);
  (void)error;
}

asio::awaitable<std::optional<std::vector<std::byte>>> StreamBridge::take_header() {
  using Rest = std::optional<std::vector<std::byte>>;
  std::size_t consumed = 0;
  auto rest = [&] {
    std::vector<std::byte> after(header_.begin() + static_cast<std::ptrdiff_t>(consumed),
                                 header_.end());
    header_.clear();
    header_.shrink_to_fit();
    header_done_ = true;
    return after;
  };
  if (initiator_) {
    auto parsed = parse_reply(header_, consumed);
    if (!parsed) {
      close("bad reply: " + parsed.error());
      co_return Rest{};
    }
    if (!parsed->has_value()) co_return Rest{};
    const Reply reply = std::move(**parsed);
    auto after = rest();
    const std::vector<std::byte> local_bytes =
        on_reply_ ? on_reply_(reply) : std::vector<std::byte>{};
    if (reply.status != ReplyStatus::kConnected && !on_reply_)
      spdlog::error("{}: {}: {}", label_, to_string(reply.status),
                    transport::escape_for_log(reply.message));
    if (!local_bytes.empty() && local_ != nullptr) {
      std::error_code error;
      co_await local_->write_all(local_bytes, error);
      if (error && !closed_) {
        close("local write failed: " + error.message());
        co_return Rest{};
      }
    }
    if (reply.status != ReplyStatus::kConnected) {
      close(to_string(reply.status));
      co_return Rest{};
    }
    co_return Rest{std::move(after)};
  }
  auto parsed = parse_request(header_, consumed);
  if (!parsed) {
    transport::log_limited(spdlog::level::warn, "bad stream request", "{}: bad request: {}", label_,
                           parsed.error());
    refuse(Reply{ReplyStatus::kBadRequest, parsed.error()});
    co_return Rest{};
  }
  if (!parsed->has_value()) co_return Rest{};
  const StreamRequest request = std::move(**parsed);
  request_ = request;
  auto after = rest();
  if (request.kind == RequestKind::kListen) {
    if (!on_listen_) {
      refuse(Reply{ReplyStatus::kBadRequest, "this side does not accept listen requests"});
      co_return Rest{};
    }
    const Reply reply = on_listen_(request, stream_);
    if (reply.status != ReplyStatus::kConnected) {
      refuse(reply);
      co_return Rest{};
    }
    holding_listener_ = true;
    // A listen stream sends nothing after its reply: only a reply the session could not take at
    // once needs the upstream path (which ends once it is written).
    if (!send_reply(reply)) asio::co_spawn(io_, upstream(), asio::detached);
    co_return Rest{std::move(after)};
  }
  auto target = policy_(request);
  if (!target) {
    refuse(target.error());
    co_return Rest{};
  }
  co_await connect_target(std::move(*target));
  if (closed_) co_return Rest{};
  co_return Rest{std::move(after)};
}

asio::awaitable<void> StreamBridge::downstream() {
  auto self = shared_from_this();
  // The peer's FIN was reached (or the header never completed): pass it on or end the bridge.
  auto peer_finished = [this](session::Session& session) {
    if (!header_done_) {
      close("stream ended before its header");
      return;
    }
    if (holding_listener_) {
      // The peer no longer wants the listener: end the stream both ways.
      (void)session.finish(stream_, session::Clock::now());
      runtime_.wake();
      end(true);
      return;
    }
    local_->shutdown_send();
    downstream_done_ = true;
    // Reading the FIN released the stream and queued its final acknowledgement, which arms no
    // timer: a processing pass sends it now rather than with the next heartbeat.
    runtime_.wake();
    finish_local_if_done();
  };
  while (!closed_) {
    if (!downstream_pending_.empty()) {
      // What the local side did not take last time: the only bytes the bridge holds, and nothing
      // more is taken from the session until they are written.
      std::error_code error;
      co_await local_->wait_writable(error);
      if (closed_) co_return;
      const std::size_t written = error ? 0 : local_->write_now(downstream_pending_, error);
      if (error && error != asio::error::would_block) {
        close("local write failed: " + error.message());
        co_return;
      }
      downstream_pending_.erase(downstream_pending_.begin(),
                                downstream_pending_.begin() + static_cast<std::ptrdiff_t>(written));
      if (!downstream_pending_.empty()) continue;
      std::vector<std::byte>().swap(downstream_pending_);
    }
    session::Session* session = session_();
    if (session == nullptr) {
      drop("session gone");
      co_return;
    }
    if (peer_fin_reached_) {
      peer_finished(*session);
      co_return;
    }
    if (session->peek(stream_).empty()) {
      auto state = session->read(stream_, {}, session::Clock::now());
      if (!state) {
        if (!closed_) close("stream gone");
        co_return;
      }
      if (state->finished) {
        peer_finished(*session);
        co_return;
      }
      co_await wait(readable_signal_);
      continue;
    }
    if (!header_done_) {
      co_await read_header(*session);
      continue;
    }
    // Take from the session only what the local side can take now: bytes not yet read stay in the
    // session, within the stream's receive window, and the peer waits for credit.
    std::size_t room = holding_listener_ ? kDownstreamBatch : local_->write_room();
    if (room == 0) {
      std::error_code error;
      co_await local_->wait_writable(error);
      if (closed_) co_return;
      room = std::max(local_->write_room(), kLeastDownstreamRead);
      session = session_();
      if (session == nullptr) {
        drop("session gone");
        co_return;
      }
    }
    // The shared scratch buffer is used and done with before the next suspension.
    const auto scratch = shared_scratch().first(std::min(room, kDownstreamBatch));
    auto received = session->read(stream_, scratch, session::Clock::now());
    if (!received) {
      if (!closed_) close("stream gone");
      co_return;
    }
    runtime_.wake();
    // These may be the last bytes before the peer's FIN (reading them may have released the
    // stream, with our own side already acknowledged): that is its end, not an error.
    peer_fin_reached_ = received->finished;
    if (holding_listener_ || received->bytes == 0) continue;
    const auto bytes = scratch.first(received->bytes);
    std::error_code error;
    const std::size_t written = local_->write_now(bytes, error);
    if (error && error != asio::error::would_block) {
      close("local write failed: " + error.message());
      co_return;
    }
    downstream_pending_.assign(bytes.begin() + static_cast<std::ptrdiff_t>(written), bytes.end());
  }
}

asio::awaitable<void> StreamBridge::read_header(session::Session& session) {
  // Only as many bytes as a header can have: the rest stays in the session until the header is
  // handled, so a bridge waiting for its header holds nothing but the header's own bytes.
  const std::size_t before = header_.size();
  if (before >= kMaxHeaderLength) {
    close("stream header too long");
    co_return;
  }
  header_.resize(std::min(before + session.peek(stream_).size(), kMaxHeaderLength));
  auto received = session.read(stream_, std::span(header_).subspan(before), session::Clock::now());
  if (!received) {
    header_.resize(before);
    if (!closed_) close("stream gone");
    co_return;
  }
  header_.resize(before + received->bytes);
  runtime_.wake();
  auto after = co_await take_header();
  if (closed_) co_return;
  if (after && !after->empty() && !holding_listener_) downstream_pending_ = std::move(*after);
  if (received->finished && !header_done_) {
    close("stream ended before its header");
  } else if (received->finished) {
    // The FIN came with the header: pass it on once the bytes after the header are written.
    peer_fin_reached_ = true;
  }
}

namespace {

// One target connect in progress. The callbacks of its resolve and connect operations record the
// outcome and wake the coroutine, which otherwise wakes at the deadline: it never waits for an
// operation past the deadline (a lookup cannot be interrupted; it finishes unobserved).
struct ConnectAttempt {
  explicit ConnectAttempt(asio::io_context& io) : resolver(io), socket(io), wake(io) {}
  asio::ip::tcp::resolver resolver;
  asio::ip::tcp::socket socket;
  asio::steady_timer wake;
  bool done = false;
  std::error_code error;
  asio::ip::tcp::resolver::results_type results;

  // The completion handler of one step (resolve or connect): records the outcome and wakes the
  // waiting coroutine, unless the attempt was abandoned (the bridge ended) meanwhile.
  static void finish(const std::weak_ptr<ConnectAttempt>& weak, std::error_code outcome) {
    if (auto state = weak.lock()) {
      state->error = outcome;
      state->done = true;
      state->wake.cancel();
    }
  }
};

std::string target_text(const StreamRequest& request) {
  const std::string host = transport::escape_for_log(request.host);
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(request.port);
}

std::string seconds_text(std::chrono::milliseconds duration) {
  const auto count = duration.count();
  return std::to_string(count / 1000) +
         (count % 1000 == 0 ? std::string() : "." + std::to_string(count % 1000 / 100)) + " s";
}

}  // namespace

asio::awaitable<void> StreamBridge::connect_target(ConnectPlan plan) {
  const StreamRequest& request = plan.target;
  const std::string target = target_text(request);
  const auto deadline = std::chrono::steady_clock::now() + plan.timeout;
  const std::string timeout = seconds_text(plan.timeout);
  std::optional<ConnectSlots::Slot> slot;
  if (plan.slots != nullptr) {
    slot = co_await plan.slots->acquire(deadline);
    if (closed_) co_return;
    if (!slot) {
      transport::log_limited(
          spdlog::level::warn, "unreachable target",
          "{}: {} not attempted: the session's {} connect slots stayed busy for {}", label_, target,
          plan.slots->capacity(), timeout);
      refuse(Reply{ReplyStatus::kUnreachable,
                   "the server already had " + std::to_string(plan.slots->capacity()) +
                       " connects in progress for this session for the whole connect timeout (" +
                       timeout + "); " + target + " was not attempted"});
      co_return;
    }
  }
  auto attempt = std::make_shared<ConnectAttempt>(io_);
  attempt->wake.expires_at(deadline);
  const std::weak_ptr<ConnectAttempt> weak = attempt;
  attempt->resolver.async_resolve(
      request.host, std::to_string(request.port),
      [weak](std::error_code error, asio::ip::tcp::resolver::results_type results) {
        if (auto state = weak.lock()) state->results = std::move(results);
        ConnectAttempt::finish(weak, error);
      });
  co_await attempt->wake.async_wait(kTuple);
  if (closed_) co_return;
  // One step ran out of the attempt's time: the client is told which.
  const auto time_out = [&](const std::string& step) {
    transport::log_limited(spdlog::level::warn, "unreachable target", "{}: {} timed out after {}",
                           label_, step, timeout);
    refuse(Reply{ReplyStatus::kUnreachable, step + " timed out after " + timeout});
  };
  if (!attempt->done) {
    time_out("resolving " + transport::escape_for_log(request.host));
    co_return;
  }
  if (attempt->error) {
    transport::log_limited(spdlog::level::warn, "unreachable target", "{}: cannot resolve {}: {}",
                           label_, transport::escape_for_log(request.host),
                           attempt->error.message());
    refuse(Reply{ReplyStatus::kUnreachable, "cannot resolve " +
                                                transport::escape_for_log(request.host) + ": " +
                                                attempt->error.message()});
    co_return;
  }
  std::vector<asio::ip::address> addresses;
  for (const auto& entry : attempt->results) addresses.push_back(entry.endpoint().address());
  if (plan.filter) {
    auto allowed = plan.filter(addresses);
    if (!allowed) {
      refuse(allowed.error());
      co_return;
    }
    addresses = std::move(*allowed);
  }
  // Exactly the addresses that passed, one by one: nothing else is ever dialled.
  std::error_code last_error = asio::error::host_not_found;
  for (const asio::ip::address& address : addresses) {
    const asio::ip::tcp::endpoint endpoint(address, request.port);
    std::error_code ignored;
    attempt->socket.close(ignored);
    attempt->done = false;
    attempt->socket.async_connect(
        endpoint, [weak](std::error_code error) { ConnectAttempt::finish(weak, error); });
    co_await attempt->wake.async_wait(kTuple);
    if (closed_) co_return;
    if (!attempt->done) {
      time_out("connecting to " + target);
      co_return;
    }
    if (!attempt->error) {
      local_ = make_tcp_connection(std::move(attempt->socket));
      spdlog::debug("{}: connected to {} ({})", label_, target, endpoint.address().to_string());
      send_reply(Reply{ReplyStatus::kConnected, {}});
      asio::co_spawn(io_, upstream(), asio::detached);
      co_return;
    }
    last_error = attempt->error;
  }
  const bool refused = last_error == asio::error::connection_refused;
  transport::log_limited(spdlog::level::warn, "unreachable target", "{}: cannot connect to {}: {}",
                         label_, target, last_error.message());
  refuse(Reply{refused ? ReplyStatus::kRefused : ReplyStatus::kUnreachable,
               "cannot connect to " + target + ": " + last_error.message()});
}

asio::awaitable<void> StreamBridge::upstream() {
  auto self = shared_from_this();
  upstream_pending_ = std::move(first_bytes_);
  while (!closed_) {
    // What the session did not take last time (or the request): nothing more is read from the
    // local side until the session has taken it, so TCP's own flow control holds the program.
    std::size_t offset = 0;
    while (offset < upstream_pending_.size() && !closed_) {
      session::Session* session = session_();
      if (session == nullptr) {
        drop("session gone");
        co_return;
      }
      auto accepted = session->write(stream_, std::span(upstream_pending_).subspan(offset),
                                     session::Clock::now());
      if (accepted) {
        offset += *accepted;
        runtime_.wake();
      } else if (accepted.error() == session::StreamError::kWouldBlock) {
        co_await wait(writable_signal_);  // TCP freeze: stop reading until the session has room
      } else {
        close(std::string("stream not writable: ") + session::to_string(accepted.error()));
        co_return;
      }
    }
    std::vector<std::byte>().swap(upstream_pending_);
    if (closed_ || local_ == nullptr) co_return;  // a listen stream has nothing more to send
    // Wait for the local program's bytes holding no buffer: a quiet connection costs nothing.
    std::error_code error;
    co_await local_->wait_readable(error);
    if (closed_) co_return;
    // The bytes are peeked into the shared scratch buffer (used and done with before the next
    // suspension) and taken from the kernel only as far as the session accepts them: the rest
    // stays in the socket, and the local program is held by TCP's flow control, not by us.
    const auto scratch = shared_scratch().first(kReadChunk);
    const std::size_t count = error ? 0 : local_->peek_now(scratch, error);
    if (error == asio::error::would_block) continue;
    session::Session* session = session_();
    if (session == nullptr) {
      drop("session gone");
      co_return;
    }
    if (error) {
      if (error == asio::error::eof) {
        (void)session->finish(stream_, session::Clock::now());
        runtime_.wake();
        upstream_done_ = true;
        finish_local_if_done();
      } else {
        close("local read failed: " + error.message());
      }
      co_return;
    }
    auto accepted = session->write(stream_, scratch.first(count), session::Clock::now());
    if (accepted) {
      local_->discard(*accepted);
      runtime_.wake();
    } else if (accepted.error() == session::StreamError::kWouldBlock) {
      co_await wait(writable_signal_);  // TCP freeze: stop reading until the session has room
    } else {
      close(std::string("stream not writable: ") + session::to_string(accepted.error()));
      co_return;
    }
  }
}

// ---- Forward parsing
// ------------------------------------------------------------------------------

Expected<Forward, std::string> parse_forward(Forward::Kind kind, std::string_view text) {
  const char* flag = kind == Forward::Kind::kLocal    ? "-L"
                     : kind == Forward::Kind::kRemote ? "-R"
                                                      : "-D";
  const std::string spec(text);
  Forward forward;
  forward.kind = kind;
  std::string_view local = text;
  if (kind != Forward::Kind::kDynamic) {
    // [BIND:]PORT:HOST:HOSTPORT; split from the right so that HOST may be [v6].
    const auto usage = [&] {
      return make_unexpected(std::string(flag) + " expects [BIND:]PORT:HOST:HOSTPORT, got '" +
                             spec + "'");
    };
    const auto target_at = text.rfind(':');
    if (target_at == std::string_view::npos) return usage();
    const std::string_view before = text.substr(0, target_at);
    std::size_t host_at = before.rfind(':');
    if (!before.empty() && before.back() == ']') {
      const auto open = before.rfind('[');
      host_at = open == std::string_view::npos || open == 0 ? std::string_view::npos : open - 1;
    }
    if (host_at == std::string_view::npos) return usage();
    auto target = split_host_port(text.substr(host_at + 1));
    if (!target) return make_unexpected(std::string(flag) + " " + spec + ": " + target.error());
    forward.target = StreamRequest{RequestKind::kConnect, target->first, target->second};
    local = text.substr(0, host_at);
  }
  // -R may ask the server for any free port (0), which the server's reply names.
  const bool any_port = kind == Forward::Kind::kRemote;
  auto bind = local.find(':') == std::string_view::npos
                  ? split_host_port("127.0.0.1:" + std::string(local), any_port)
                  : split_host_port(local, any_port);
  if (!bind) return make_unexpected(std::string(flag) + " " + spec + ": " + bind.error());
  forward.bind_address = bind->first;
  forward.bind_port = bind->second;
  return forward;
}

namespace {

Expected<std::unique_ptr<asio::ip::tcp::acceptor>, std::string> listen_on(asio::io_context& io,
                                                                          const std::string& host,
                                                                          std::uint16_t port) {
  std::error_code error;
  const auto address = asio::ip::make_address(host, error);
  if (error) return make_unexpected("cannot listen on " + host + ": not an IP address");
  auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(io);
  const asio::ip::tcp::endpoint endpoint(address, port);
  acceptor->open(endpoint.protocol(), error);
  if (!error) acceptor->set_option(asio::ip::tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor->bind(endpoint, error);
  if (!error) acceptor->listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return make_unexpected("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                           error.message());
  }
  return acceptor;
}

// A new stream on `session`, or kNotOpen when there is no open session.
Expected<session::StreamId, session::StreamError> open_stream_on(session::Session* session) {
  if (session == nullptr) return make_unexpected(session::StreamError::kNotOpen);
  return session->open_stream(0, session::Clock::now());
}

std::string describe(const std::string& host, std::uint16_t port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
}

}  // namespace

// ---- ClientTunnel
// ---------------------------------------------------------------------------------

ClientTunnel::ClientTunnel(asio::io_context& io, ClientTunnelOptions options)
    : io_(io), options_(std::move(options)), release_(io) {
  if (options_.stdio_target) options_.new_session_on_loss = false;
}

Expected<void, std::string> ClientTunnel::start() {
  listeners_.reserve(options_.forwards.size());
  for (const auto& forward : options_.forwards) {
    if (forward.kind == Forward::Kind::kRemote) continue;  // asked of the server once established
    auto acceptor = listen_on(io_, forward.bind_address, forward.bind_port);
    if (!acceptor) return make_unexpected(acceptor.error());
    const auto bound = describe(forward.bind_address, (*acceptor)->local_endpoint().port());
    if (forward.kind == Forward::Kind::kLocal) {
      spdlog::info("client forwarding {} to {}", bound,
                   transport::escape_for_log(describe(forward.target.host, forward.target.port)));
    } else {
      spdlog::info("client SOCKS5 proxy on {}", bound);
    }
    listeners_.push_back(Listener{&forward, std::move(*acceptor)});
  }
  for (auto& listener : listeners_) asio::co_spawn(io_, accept_loop(listener), asio::detached);
  if (options_.stdio_target) {
    auto stdio = make_stdio_connection(io_, 0, 1);
    if (!stdio) return make_unexpected(stdio.error());
    stdio_ = std::move(*stdio);
  }
  return {};
}

std::vector<std::uint16_t> ClientTunnel::bound_ports() const {
  std::vector<std::uint16_t> ports;
  for (const auto& listener : listeners_)
    ports.push_back(listener.acceptor->local_endpoint().port());
  return ports;
}

session::Session* ClientTunnel::open_session() const {
  if (runtime_ == nullptr) return nullptr;
  return runtime_->session().phase() == session::Phase::kOpen ? &runtime_->session() : nullptr;
}

void ClientTunnel::when_open(std::function<void()> action) {
  if (open_) {
    action();
  } else {
    waiting_.push_back(std::move(action));  // held (paused) until the session is established
  }
}

asio::awaitable<void> ClientTunnel::accept_loop(Listener& listener) {
  std::error_code ignored;
  transport::AcceptBackoff backoff(
      std::string("client ") + (listener.forward->kind == Forward::Kind::kDynamic ? "-D " : "-L ") +
      describe(listener.forward->bind_address, listener.acceptor->local_endpoint(ignored).port()));
  while (true) {
    auto [error, socket] = co_await listener.acceptor->async_accept(kTuple);
    if (error == asio::error::operation_aborted || !listener.acceptor->is_open()) co_return;
    if (error) {
      co_await backoff.after_failure(error);  // out of descriptors: pause instead of spinning
      continue;
    }
    backoff.after_success();
    if (listener.forward->kind == Forward::Kind::kDynamic) {
      asio::co_spawn(io_, socks_handshake(std::move(socket)), asio::detached);
      continue;
    }
    auto held = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
    when_open(
        [this, held, target = listener.forward->target] { open_local(std::move(*held), target); });
  }
}

std::shared_ptr<StreamBridge> ClientTunnel::new_bridge(session::StreamId stream,
                                                       std::string label) {
  auto lookup = [this]() { return open_session(); };
  auto bridge =
      std::make_shared<StreamBridge>(io_, *runtime_, lookup, stream, std::move(label), &release_);
  bridges_[stream] = bridge;
  return bridge;
}

void ClientTunnel::open_local(asio::ip::tcp::socket socket, const StreamRequest& target) {
  auto stream = open_stream_on(open_session());
  if (!stream) {
    spdlog::warn("client cannot open a stream: {}", session::to_string(stream.error()));
    return;
  }
  auto bridge = new_bridge(
      *stream, "stream " + std::to_string(*stream) + " to " + describe(target.host, target.port));
  bridge->start_initiator(make_tcp_connection(std::move(socket)), target);
}

asio::awaitable<void> ClientTunnel::socks_handshake(asio::ip::tcp::socket socket) {
  Socks5Handshake handshake;
  std::array<std::byte, 1024> buffer{};
  std::vector<std::byte> first_bytes;
  std::optional<Socks5Target> request;
  while (!request) {
    auto [read_error, count] = co_await socket.async_read_some(asio::buffer(buffer), kTuple);
    if (read_error) co_return;  // the SOCKS client gave up
    const std::span<const std::byte> input(buffer.data(), count);
    auto progress = handshake.feed(input);
    const auto& reply = progress ? progress->to_send : progress.error().to_send;
    if (!reply.empty()) {
      auto [write_error, written] =
          co_await asio::async_write(socket, asio::buffer(reply.data(), reply.size()), kTuple);
      (void)written;
      if (write_error) co_return;
    }
    if (!progress) {
      transport::log_limited(spdlog::level::warn, "bad SOCKS5 request", "client SOCKS5: {}",
                             transport::escape_for_log(progress.error().reason));
      co_return;
    }
    if (progress->request) {
      request = std::move(progress->request);
      first_bytes.assign(input.begin() + static_cast<std::ptrdiff_t>(progress->consumed),
                         input.end());
    }
  }
  auto held = std::make_shared<asio::ip::tcp::socket>(std::move(socket));
  when_open([this, held,
             target = StreamRequest{RequestKind::kConnect, request->host, request->port},
             first_bytes = std::move(first_bytes)]() mutable {
    open_socks(std::move(*held), target, std::move(first_bytes));
  });
}

void ClientTunnel::open_socks(asio::ip::tcp::socket socket, const StreamRequest& target,
                              std::vector<std::byte> first_bytes) {
  auto stream = open_stream_on(open_session());
  if (!stream) {
    spdlog::warn("client cannot open a stream: {}", session::to_string(stream.error()));
    std::error_code ignored;
    const auto failure = encode_socks5_reply(Socks5Reply::kGeneralFailure);
    asio::write(socket, asio::buffer(failure.data(), failure.size()), ignored);
    return;
  }
  const auto name = describe(target.host, target.port);
  auto bridge = new_bridge(*stream, "SOCKS stream " + std::to_string(*stream) + " to " + name);
  auto on_reply = [name](const Reply& reply) {
    if (reply.status != ReplyStatus::kConnected)
      transport::log_limited(spdlog::level::warn, "refused target", "client SOCKS5 {}: {}: {}",
                             transport::escape_for_log(name), to_string(reply.status),
                             transport::escape_for_log(reply.message));
    return encode_socks5_reply(to_socks5_reply(reply.status));
  };
  bridge->start_initiator(make_tcp_connection(std::move(socket)), target, on_reply,
                          std::move(first_bytes));
}

void ClientTunnel::open_stdio() {
  auto stream = open_stream_on(open_session());
  if (!stream || stdio_ == nullptr) {
    spdlog::error("client cannot open the stdio stream");
    shutdown(kExitRefused);
    return;
  }
  const auto& target = *options_.stdio_target;
  auto bridge = new_bridge(*stream, "stdio to " + describe(target.host, target.port));
  auto on_reply = [this](const Reply& reply) {
    if (reply.status != ReplyStatus::kConnected) {
      spdlog::error("client: {}: {}", to_string(reply.status),
                    transport::escape_for_log(reply.message));
      stdio_exit_code_ = kExitTargetFailed;
    }
    return std::vector<std::byte>{};
  };
  bridge->set_closed_hook([this](bool graceful) {
    if (!graceful && stdio_exit_code_ == kExitGraceful) stdio_exit_code_ = kExitStreamReset;
    // The one stream is over: end the session (gracefully, so the server frees it at once).
    asio::post(io_, [this] {
      if (runtime_ == nullptr) return;
      if (runtime_->session().phase() == session::Phase::kClosed) {
        shutdown(stdio_exit_code_);
        return;
      }
      runtime_->session().close(session::Clock::now());
      runtime_->wake();
    });
  });
  bridge->start_initiator(std::move(stdio_), target, on_reply);
}

void ClientTunnel::request_listeners() {
  session::Session* session = open_session();
  for (const auto& forward : options_.forwards) {
    if (forward.kind != Forward::Kind::kRemote || session == nullptr) continue;
    auto stream = session->open_stream(0, session::Clock::now());
    const auto bind = describe(forward.bind_address, forward.bind_port);
    if (!stream) {
      spdlog::error("client cannot ask for -R {}: {}", bind, session::to_string(stream.error()));
      continue;
    }
    const auto target = describe(forward.target.host, forward.target.port);
    auto bridge = new_bridge(*stream, "-R " + bind);
    auto on_reply = [this, bind, target](const Reply& reply) {
      if (reply.status == ReplyStatus::kConnected) {
        spdlog::info("client remote forward: server {}, to {}",
                     transport::escape_for_log(reply.message), transport::escape_for_log(target));
      } else {
        spdlog::error("client remote forward {} refused by the server: {}{}",
                      transport::escape_for_log(bind), transport::escape_for_log(reply.message),
                      options_.exit_on_forward_failure ? "; exiting (--keep-going runs on)" : "");
        if (options_.exit_on_forward_failure) {
          // Not from inside the bridge's own callback: shutdown() destroys the bridges.
          asio::post(io_, [this] {
            if (runtime_ != nullptr)
              (void)runtime_->session().abort(wire::Reason::kApplicationAbort,
                                              session::Clock::now());
            shutdown(kExitForwardFailed);
          });
        }
      }
      return std::vector<std::byte>{};
    };
    bridge->start_initiator(
        nullptr, StreamRequest{RequestKind::kListen, forward.bind_address, forward.bind_port},
        on_reply);
  }
}

void ClientTunnel::accept_remote(session::StreamId stream) {
  auto bridge = new_bridge(stream, "remote stream " + std::to_string(stream));
  auto policy = [this](const StreamRequest& request) -> Expected<ConnectPlan, Reply> {
    for (const auto& forward : options_.forwards) {
      if (forward.kind == Forward::Kind::kRemote && forward.bind_address == request.host &&
          forward.bind_port == request.port) {
        return ConnectPlan{forward.target, {}, kDefaultConnectTimeout, nullptr};
      }
    }
    transport::log_limited(
        spdlog::level::warn, "refused target",
        "client: the server opened a stream for {}, which is no -R forward of ours",
        transport::escape_for_log(describe(request.host, request.port)));
    return make_unexpected(
        Reply{ReplyStatus::kNotAllowed,
              "the client has no -R forward for " + describe(request.host, request.port)});
  };
  bridge->start_acceptor(policy);
}

void ClientTunnel::on_event(const session::SessionId& id, session::Session*,
                            const session::Event& event) {
  if (dispatch_stream_event(bridges_, event)) return;
  if (const auto* opened = std::get_if<events::StreamOpened>(&event)) {
    accept_remote(opened->stream);
  } else if (std::holds_alternative<events::Established>(event)) {
    open_ = true;
    request_listeners();
    if (stdio_ != nullptr) open_stdio();
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& action : waiting) action();
  } else if (const auto* closed = std::get_if<events::Closed>(&event)) {
    if (closed->unacknowledged_bytes > 0) {
      spdlog::warn(
          "client: {} bytes written by local programs were never acknowledged by the server",
          closed->unacknowledged_bytes);
    }
    const ClientOutcome outcome = client_outcome(
        *closed,
        OutcomePolicy{options_.new_session_on_loss && runtime_ != nullptr && !stop_requested_,
                      options_.stdio_target ? stdio_exit_code_ : kExitGraceful});
    nlohmann::ordered_json logged{{"event", "outcome"},
                                  {"side", "client"},
                                  {"session", transport::session_hex(id)},
                                  {"new_session", outcome.new_session}};
    if (!outcome.new_session) logged["exit_code"] = outcome.exit_code;
    transport::json_event(spdlog::level::info, logged);
    if (outcome.new_session) {
      spdlog::info(
          "client: session lost ({}{}); {} tunnelled connections end; starting a new session",
          wire::to_string(closed->reason), closed->transient ? ", transient" : "", bridges_.size());
      auto bridges = std::move(bridges_);
      bridges_.clear();
      for (auto& [stream, bridge] : bridges) bridge->drop("session lost");
      open_ = false;  // connections accepted from now on wait for the new session
      runtime_->start_new_session();
      return;
    }
    shutdown(outcome.exit_code);
  }
}

void ClientTunnel::on_fatal(const transport::TransportError& error) {
  spdlog::error("client: {}", error.message);
  const int code = fatal_exit_code(error.kind);
  transport::json_event(spdlog::level::err,
                        {{"event", "outcome"},
                         {"side", "client"},
                         {"error", std::string(transport::to_string(error.kind))},
                         {"new_session", false},
                         {"exit_code", code}});
  if (runtime_ != nullptr)
    (void)runtime_->session().abort(wire::Reason::kAuthFailed, session::Clock::now());
  shutdown(code);
}

void ClientTunnel::request_stop() {
  stop_requested_ = true;
  if (runtime_ == nullptr || runtime_->session().phase() == session::Phase::kClosed) {
    // Lost, and the new session not started yet (or never attached): nothing to close.
    shutdown(kExitGraceful);
    return;
  }
  runtime_->session().close(session::Clock::now());
  runtime_->wake();
}

void ClientTunnel::shutdown(int code) {
  if (!shut_down_) exit_code_ = code;
  shut_down_ = true;
  auto bridges = std::move(bridges_);
  bridges_.clear();
  for (auto& [id, bridge] : bridges) bridge->close("session ended");
  for (auto& listener : listeners_) {
    std::error_code ignored;
    listener.acceptor->close(ignored);
  }
  waiting_.clear();
  if (stdio_ != nullptr) stdio_->close();
  if (runtime_ != nullptr) runtime_->stop();
  io_.stop();
}

// ---- ServerTunnel
// ---------------------------------------------------------------------------------

ServerTunnel::ServerTunnel(asio::io_context& io, ServerTunnelOptions options)
    : io_(io), options_(std::move(options)), release_(io) {}

session::Session* ServerTunnel::find_open(const session::SessionId& id) const {
  if (runtime_ == nullptr) return nullptr;
  session::Session* session = runtime_->endpoint().find(id);
  return session != nullptr && session->phase() == session::Phase::kOpen ? session : nullptr;
}

void ServerTunnel::on_event(const session::SessionId& id, session::Session* session,
                            const session::Event& event) {
  auto& bridges = bridges_[id];
  if (dispatch_stream_event(bridges, event)) return;
  const std::string name = "session " + transport::short_id(id);
  if (std::holds_alternative<events::Established>(event) && session != nullptr) {
    update_grant(id, *session, name);
  }
  if (std::holds_alternative<events::Reauthenticated>(event) && session != nullptr) {
    update_grant(id, *session, name);
    enforce_grants(id, name);
  }
  if (std::holds_alternative<events::Closed>(event)) grants_.erase(id);
  if (const auto* opened = std::get_if<events::StreamOpened>(&event)) {
    auto lookup = [this, id]() { return find_open(id); };
    auto bridge = std::make_shared<StreamBridge>(io_, *runtime_, lookup, opened->stream,
                                                 name + " stream " + std::to_string(opened->stream),
                                                 &release_);
    bridges[opened->stream] = bridge;
    auto policy = [this, id, name](const StreamRequest& request) -> Expected<ConnectPlan, Reply> {
      return connect_plan(id, name, request);
    };
    auto on_listen = [this, id](const StreamRequest& request, session::StreamId stream) {
      return open_listener(id, request, stream);
    };
    bridge->start_acceptor(policy, on_listen);
  } else if (const auto* closed = std::get_if<events::Closed>(&event)) {
    if (!bridges.empty()) {
      spdlog::info("server {}: closing {} tunnelled connections ({})", name, bridges.size(),
                   wire::to_string(closed->reason));
    }
    auto ending = std::move(bridges);
    bridges_.erase(id);
    connect_slots_.erase(id);  // connects still in progress keep it until they end
    for (auto& [stream, bridge] : ending) bridge->drop("session closed");
    if (auto found = listeners_.find(id); found != listeners_.end()) {
      for (auto& [stream, listener] : found->second) {
        std::error_code ignored;
        listener->acceptor->close(ignored);
      }
      listeners_.erase(found);
    }
  }
}

void ServerTunnel::update_grant(const session::SessionId& id, const session::Session& session,
                                const std::string& name) {
  std::vector<std::string> ignored;
  if (auto grant = options_.grants.for_peer(session.peer(), &ignored)) {
    for (const std::string& scope : ignored) {
      spdlog::warn("{}: ignoring the malformed scope {}", name, transport::escape_for_log(scope));
    }
    grants_[id] = SessionGrant{session.peer().principal, std::move(*grant)};
  } else {
    grants_.erase(id);
  }
}

void ServerTunnel::enforce_grants(const session::SessionId& id, const std::string& name) {
  if (!options_.grants.enforced()) return;
  auto bridges = bridges_.find(id);
  if (bridges == bridges_.end()) return;
  auto session_listeners = listeners_.find(id);
  std::vector<std::shared_ptr<StreamBridge>> revoked;
  for (auto& [stream, bridge] : bridges->second) {
    const std::optional<StreamRequest>& request = bridge->request();
    if (!request || bridge->closed()) continue;
    const bool listen = request->kind == RequestKind::kListen;
    auto refusal = grant_refusal(id, *request, listen);
    if (!refusal) continue;
    spdlog::warn("{}: {} {} after re-authentication: {}", name,
                 listen ? "closing the -R listener of stream" : "resetting stream", stream,
                 *refusal);
    revoked.push_back(bridge);
    if (!listen || session_listeners == listeners_.end()) continue;
    // What the listener accepted reached the client only through the grant withdrawn.
    if (auto listener = session_listeners->second.find(stream);
        listener != session_listeners->second.end()) {
      for (const auto& weak : listener->second->connections) {
        auto connection = weak.lock();
        if (connection == nullptr || connection->closed()) continue;
        spdlog::warn("{}: resetting it too: its -R listener is no longer granted",
                     connection->label());
        revoked.push_back(std::move(connection));
      }
    }
  }
  // Closed outside the loop: closing a bridge may run hooks that edit the maps.
  for (auto& bridge : revoked)
    bridge->close("no longer granted after re-authentication", kResetNotGranted);
  if (auto found = listeners_.find(id); found != listeners_.end()) {
    for (auto it = found->second.begin(); it != found->second.end();) {
      if (grant_refusal(id, it->second->requested, true)) {
        std::error_code ignored;
        it->second->acceptor->close(ignored);
        it = found->second.erase(it);
      } else {
        ++it;
      }
    }
  }
}

std::optional<std::string> ServerTunnel::grant_refusal(const session::SessionId& id,
                                                       const StreamRequest& request,
                                                       bool listen) const {
  if (!options_.grants.enforced()) return std::nullopt;
  auto found = grants_.find(id);
  const std::string who = found == grants_.end() || found->second.principal.empty()
                              ? std::string("this session (not authenticated)")
                              : transport::escape_for_log(found->second.principal);
  const std::string refusal = target_text(request) + " is not granted to " + who;
  if (found == grants_.end()) return refusal;
  const PrincipalGrant& grant = found->second.grant;
  if (listen) {
    if (!grant.any_listen || !grant.listen.check(request.host, request.port)) return refusal;
    return std::nullopt;
  }
  if (!grant.any_connect || !grant.connect.may_allow(request.host, request.port)) return refusal;
  return std::nullopt;
}

Expected<ConnectPlan, Reply> ServerTunnel::connect_plan(const session::SessionId& id,
                                                        const std::string& name,
                                                        const StreamRequest& request) {
  // Refused before any lookup when nothing could allow it: a client does not get to make the
  // server resolve names nobody allowed.
  if (auto possible = options_.allow.may_allow(request.host, request.port); !possible) {
    transport::log_limited(spdlog::level::warn, "refused target", "{}: refused {}: {}", name,
                           target_text(request), possible.error());
    return make_unexpected(Reply{ReplyStatus::kNotAllowed, possible.error()});
  }
  if (auto refusal = grant_refusal(id, request, false)) {
    transport::log_limited(spdlog::level::warn, "refused target", "{}: refused {}", name, *refusal);
    return make_unexpected(Reply{ReplyStatus::kNotAllowed, *refusal});
  }
  auto& slots = connect_slots_[id];
  if (slots == nullptr) slots = std::make_shared<ConnectSlots>(options_.max_pending_connects);
  ConnectPlan plan{request, {}, options_.connect_timeout, slots};
  plan.filter = [this, id, name, request](std::span<const asio::ip::address> resolved)
      -> Expected<std::vector<asio::ip::address>, Reply> {
    // The server's own addresses are read at each connect: they change (DHCP, new interfaces).
    const std::vector<asio::ip::address> own = host_addresses();
    auto allowed = options_.allow.check(request.host, request.port, resolved, own);
    if (!allowed) {
      transport::log_limited(spdlog::level::warn, "refused target", "{}: refused {}: {}", name,
                             target_text(request), allowed.error());
      return make_unexpected(Reply{ReplyStatus::kNotAllowed, allowed.error()});
    }
    // Under grants, the principal's own patterns must allow the same addresses too.
    if (auto found = grants_.find(id); options_.grants.enforced() && found != grants_.end()) {
      auto granted = found->second.grant.connect.check(request.host, request.port, *allowed, own);
      if (!granted) {
        const std::string refusal = target_text(request) + " is not granted to " +
                                    transport::escape_for_log(found->second.principal);
        transport::log_limited(spdlog::level::warn, "refused target", "{}: refused {}", name,
                               refusal);
        return make_unexpected(Reply{ReplyStatus::kNotAllowed, refusal});
      }
      return std::move(*granted);
    }
    return std::move(*allowed);
  };
  return plan;
}

Reply ServerTunnel::open_listener(const session::SessionId& id, const StreamRequest& request,
                                  session::StreamId stream) {
  const std::string name = "session " + transport::short_id(id);
  // Bound exactly to the address that was checked.
  auto address = options_.allow_listen.check(request.host, request.port);
  if (!address) {
    transport::log_limited(spdlog::level::warn, "refused target",
                           "{}: refused -R listener on {}: {}", name, target_text(request),
                           address.error());
    return Reply{ReplyStatus::kNotAllowed, address.error()};
  }
  if (auto refusal = grant_refusal(id, request, true)) {
    transport::log_limited(spdlog::level::warn, "refused target", "{}: refused -R listener: {}",
                           name, *refusal);
    return Reply{ReplyStatus::kNotAllowed, *refusal};
  }
  auto acceptor = listen_on(io_, address->to_string(), request.port);
  if (!acceptor) {
    transport::log_limited(spdlog::level::warn, "failed -R listener", "{}: -R: {}", name,
                           transport::escape_for_log(acceptor.error()));
    return Reply{ReplyStatus::kUnreachable, acceptor.error()};
  }
  auto listener =
      std::make_shared<RemoteListener>(RemoteListener{request, std::move(*acceptor), {}});
  const auto bound = describe(address->to_string(), listener->acceptor->local_endpoint().port());
  listeners_[id][stream] = listener;
  if (auto found = bridges_[id].find(stream); found != bridges_[id].end()) {
    found->second->set_closed_hook([this, id, stream, name, bound](bool) {
      auto session_listeners = listeners_.find(id);
      if (session_listeners == listeners_.end()) return;
      if (auto entry = session_listeners->second.find(stream);
          entry != session_listeners->second.end()) {
        std::error_code ignored;
        entry->second->acceptor->close(ignored);
        session_listeners->second.erase(entry);
        spdlog::info("{}: stopped listening on {} (-R)", name, bound);
      }
    });
  }
  asio::co_spawn(io_, accept_loop(id, stream, listener), asio::detached);
  spdlog::info("{}: listening on {} for the client (-R)", name, bound);
  return Reply{ReplyStatus::kConnected, "listening on " + bound};
}

asio::awaitable<void> ServerTunnel::accept_loop(session::SessionId id, session::StreamId,
                                                std::shared_ptr<RemoteListener> listener) {
  const std::string name = "session " + transport::short_id(id);
  std::error_code ignored;
  transport::AcceptBackoff backoff(
      name + " -R " +
      describe(listener->requested.host, listener->acceptor->local_endpoint(ignored).port()));
  while (listener->acceptor->is_open()) {
    auto [error, socket] = co_await listener->acceptor->async_accept(kTuple);
    if (error == asio::error::operation_aborted || !listener->acceptor->is_open()) co_return;
    if (error) {
      co_await backoff.after_failure(error);  // out of descriptors: pause instead of spinning
      continue;
    }
    backoff.after_success();
    auto stream = open_stream_on(find_open(id));
    if (!stream) {
      transport::log_limited(spdlog::level::warn, "dropped -R connection",
                             "{}: -R connection dropped: {}", name,
                             session::to_string(stream.error()));
      continue;
    }
    auto lookup = [this, id]() { return find_open(id); };
    auto bridge = std::make_shared<StreamBridge>(
        io_, *runtime_, lookup, *stream, name + " -R stream " + std::to_string(*stream), &release_);
    bridges_[id][*stream] = bridge;
    std::erase_if(listener->connections, [](const std::weak_ptr<StreamBridge>& connection) {
      auto alive = connection.lock();
      return alive == nullptr || alive->closed();
    });
    listener->connections.push_back(bridge);
    bridge->start_initiator(
        make_tcp_connection(std::move(socket)),
        StreamRequest{RequestKind::kConnect, listener->requested.host, listener->requested.port});
  }
}

void ServerTunnel::on_fatal(const transport::TransportError& error) {
  spdlog::error("server: {}", error.message);
}

}  // namespace tether::tunnel
