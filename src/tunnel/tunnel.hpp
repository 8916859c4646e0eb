// The tunnel layer: StreamBridge joins one local TCP connection to one session stream; ClientTunnel
// listens for -L forwards and ServerTunnel connects streams to allowed targets.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio.hpp>

#include "session/session.hpp"
#include "transport/runtime.hpp"
#include "tunnel/tunnel_protocol.hpp"

namespace tether::tunnel {

// One tunnelled TCP connection. Downstream copies stream bytes to the local socket; upstream copies
// local bytes into the stream and waits (without reading, so TCP's own flow control holds the local
// program) whenever the session refuses more: the "TCP freeze" while a session is suspended.
class StreamBridge : public std::enable_shared_from_this<StreamBridge> {
 public:
  enum class Role : std::uint8_t { kClient, kServer };
  using SessionLookup = std::function<session::Session*()>;

  StreamBridge(asio::io_context& io, transport::RuntimeBase& runtime, SessionLookup session,
               session::StreamId stream, Role role, std::string label);
  // Client: the local connection is accepted; the request naming `target` is written first.
  void start_client(asio::ip::tcp::socket local, const ConnectRequest& target);
  // Server: wait for the request on the stream, check it with `allow`, connect, reply, relay.
  void start_server(const AllowList& allow);

  void on_readable() { readable_signal_.cancel(); }
  void on_writable() { writable_signal_.cancel(); }
  void on_reset();
  void close(const std::string& why);
  [[nodiscard]] bool closed() const { return closed_; }

 private:
  asio::awaitable<void> downstream();
  asio::awaitable<void> upstream();
  asio::awaitable<void> connect_target(ConnectRequest request);
  asio::awaitable<void> wait(asio::steady_timer& signal);
  void maybe_finish();

  asio::io_context& io_;
  transport::RuntimeBase& runtime_;
  SessionLookup session_;
  session::StreamId stream_;
  Role role_;
  std::string label_;
  asio::ip::tcp::socket local_;
  asio::steady_timer readable_signal_;
  asio::steady_timer writable_signal_;
  const AllowList* allow_ = nullptr;
  bool header_done_ = false;
  std::vector<std::byte> header_;
  bool upstream_done_ = false;    // local EOF forwarded as FIN
  bool downstream_done_ = false;  // peer FIN forwarded as local shutdown
  bool closed_ = false;
};

struct LocalForward {
  std::string bind_address = "127.0.0.1";
  std::uint16_t bind_port = 0;
  ConnectRequest target;
};

// Parses -L [BIND:]PORT:HOST:HOSTPORT (HOST may be [IPv6]).
[[nodiscard]] Expected<LocalForward, std::string> parse_local_forward(std::string_view text);

class ClientTunnel final : public transport::SessionObserver {
 public:
  // With `new_session_on_loss`, a session the server lost (restart: stateless reset; linger
  // expired; server shut down) is reported and replaced by a new one; the tunnelled connections of
  // the old one end. Without it, the client exits with kExitSessionLost.
  ClientTunnel(asio::io_context& io, std::vector<LocalForward> forwards,
               bool new_session_on_loss = true);
  void attach(transport::ClientRuntime& runtime) { runtime_ = &runtime; }
  // Opens the local listeners; the error names the address that failed.
  Expected<void, std::string> start();
  void on_event(const session::SessionId& id, session::Session* session,
                const session::Event& event) override;
  void on_fatal(const std::string& message) override;
  // 0 after a graceful end; otherwise a code a script can act on (see the README).
  [[nodiscard]] int exit_code() const { return exit_code_; }
  // Local ports actually bound (useful with port 0).
  [[nodiscard]] std::vector<std::uint16_t> bound_ports() const;

 private:
  asio::awaitable<void> accept_loop(std::size_t index);
  void open_bridge(asio::ip::tcp::socket socket, const LocalForward& forward);
  void shutdown(int code);

  asio::io_context& io_;
  std::vector<LocalForward> forwards_;
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
  transport::ClientRuntime* runtime_ = nullptr;
  std::map<session::StreamId, std::shared_ptr<StreamBridge>> bridges_;
  std::vector<std::pair<asio::ip::tcp::socket, std::size_t>>
      waiting_;  // accepted before establishment
  bool open_ = false;
  bool new_session_on_loss_ = true;
  int exit_code_ = 0;
};

class ServerTunnel final : public transport::SessionObserver {
 public:
  ServerTunnel(asio::io_context& io, AllowList allow);
  void attach(transport::ServerRuntime& runtime) { runtime_ = &runtime; }
  void on_event(const session::SessionId& id, session::Session* session,
                const session::Event& event) override;
  void on_fatal(const std::string& message) override;

 private:
  asio::io_context& io_;
  AllowList allow_;
  transport::ServerRuntime* runtime_ = nullptr;
  std::map<session::SessionId, std::map<session::StreamId, std::shared_ptr<StreamBridge>>> bridges_;
};

// Exit codes of `tether client` and `tether stdio`.
inline constexpr int kExitGraceful = 0;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitFingerprintMismatch = 3;
inline constexpr int kExitSessionLost =
    4;  // unknown-session (server restarted), linger expired, reset
inline constexpr int kExitUnreachable = 5;  // reconnect limit reached
inline constexpr int kExitRefused = 6;      // protocol error, auth failed, refused by the server

}  // namespace tether::tunnel
