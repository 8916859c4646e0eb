// The tunnel layer: StreamBridge joins one local connection to one session stream; ClientTunnel
// serves -L, -R, -D and stdio forwards over the client's session and ServerTunnel connects
// streams to allowed targets and runs -R listeners.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <asio.hpp>

#include "session/session.hpp"
#include "transport/runtime.hpp"
#include "tunnel/allow_list.hpp"
#include "tunnel/connect_slots.hpp"
#include "tunnel/grants.hpp"
#include "tunnel/local_connection.hpp"
#include "tunnel/outcome.hpp"
#include "tunnel/release_after_load.hpp"
#include "tunnel/tunnel_protocol.hpp"

namespace tether::tunnel {

// How long a target connect may take, from its request to its reply: waiting for a connect slot,
// resolving and connecting (the server's --connect-timeout).
inline constexpr std::chrono::milliseconds kDefaultConnectTimeout{10'000};
// How many target connects one session may have in progress on the server; more wait their turn
// (within their connect timeout).
inline constexpr std::size_t kDefaultMaxPendingConnects = 16;

// The acceptor's plan for a connect request: the target to resolve, which of its resolved
// addresses may be dialled, and the bounds of the attempt.
struct ConnectPlan {
  StreamRequest target;
  // Of the resolved addresses, those to dial, one by one in this order, or the refusal to send.
  // Null: every resolved address.
  std::function<Expected<std::vector<asio::ip::address>, Reply>(std::span<const asio::ip::address>)>
      filter;
  // The whole attempt ends with a reply within this time (kUnreachable when it runs out).
  std::chrono::milliseconds timeout = kDefaultConnectTimeout;
  // Null: no cap on concurrent attempts.
  std::shared_ptr<ConnectSlots> slots;
};

// One tunnelled connection. Downstream copies stream bytes to the local connection; upstream
// copies local bytes into the stream and waits (without reading, so TCP's own flow control holds
// the local program) whenever the session refuses more: the "TCP freeze" while a session is
// suspended. The side that accepted the local connection is the initiator: it writes the request
// and reads the reply. The other side is the acceptor: it reads the request, decides, connects
// and replies. A listen stream (-R) carries no local connection: it holds a server listener open.
class StreamBridge : public std::enable_shared_from_this<StreamBridge> {
 public:
  using SessionLookup = std::function<session::Session*()>;
  // Initiator: given the peer's reply, the bytes to write to the local connection before any
  // relayed byte (for example the SOCKS reply). A reply other than kConnected closes the bridge
  // after those bytes are written.
  using ReplyHook = std::function<std::vector<std::byte>(const Reply&)>;
  // Acceptor: what a connect request reaches: the plan to dial, or the refusal to send back.
  using ConnectPolicy = std::function<Expected<ConnectPlan, Reply>(const StreamRequest&)>;
  // Acceptor: handles a listen request and returns the reply; kConnected keeps the stream open.
  using ListenHandler = std::function<Reply(const StreamRequest&, session::StreamId)>;
  // Called once when the bridge ends; `graceful` is true when both directions ended with FIN.
  using ClosedHook = std::function<void(bool graceful)>;

  // `release`, when given, is told when the bridge ends.
  StreamBridge(asio::io_context& io, transport::RuntimeBase& runtime, SessionLookup session,
               session::StreamId stream, std::string label, ReleaseAfterLoad* release = nullptr);
  // Initiator: writes `request`, then `first_bytes` (bytes the local program already sent), then
  // relays. `local` is null for a listen request.
  void start_initiator(std::unique_ptr<LocalConnection> local, const StreamRequest& request,
                       ReplyHook on_reply = {}, std::vector<std::byte> first_bytes = {});
  // Acceptor: waits for the request, then connects (policy) or listens (handler; null refuses).
  void start_acceptor(ConnectPolicy policy, ListenHandler on_listen = {});
  void set_closed_hook(ClosedHook hook) { on_closed_ = std::move(hook); }

  void on_readable() { readable_signal_.cancel(); }
  void on_writable() { writable_signal_.cancel(); }
  // The peer reset the stream with `error_code`: the local connection is aborted (RST, not FIN)
  // and the log says why (reset_reason).
  void on_reset(std::uint64_t error_code);
  // Ends the bridge; the stream is reset with `reset_code` (kResetClosed, kResetNotGranted) so
  // that the peer ends its side too and can tell why.
  void close(const std::string& why, std::uint64_t reset_code = kResetClosed);
  // Ends the bridge without touching the stream (the session is gone).
  void drop(const std::string& why);
  [[nodiscard]] bool closed() const { return closed_; }
  // Bytes the bridge holds itself (capacity of its buffers): a partial header, what one side has
  // not taken yet. At most a few hundred bytes before the header; never more than one read.
  [[nodiscard]] std::size_t held_bytes() const {
    return header_.capacity() + downstream_pending_.capacity() + upstream_pending_.capacity() +
           first_bytes_.capacity();
  }
  [[nodiscard]] const std::string& label() const { return label_; }
  // Acceptor: the request the peer made, once its header was read (nullopt before).
  [[nodiscard]] const std::optional<StreamRequest>& request() const { return request_; }

 private:
  asio::awaitable<void> downstream();
  asio::awaitable<void> upstream();
  asio::awaitable<void> connect_target(ConnectPlan plan);
  asio::awaitable<void> wait(asio::steady_timer& signal);
  // Reads what there is of the stream header (at most its longest length) and handles it.
  asio::awaitable<void> read_header(session::Session& session);
  // Parses the header in `header_`; returns the relayed bytes that followed it, or nullopt while
  // the header is incomplete or when the bridge ended.
  asio::awaitable<std::optional<std::vector<std::byte>>> take_header();
  // Writes the reply on the stream; false when the session took only part of it, the rest then
  // waiting at the front of first_bytes_ for the upstream path (so nothing overtakes it).
  bool send_reply(const Reply& reply);
  void refuse(const Reply& reply);
  void finish_local_if_done();
  void end(bool graceful);

  asio::io_context& io_;
  transport::RuntimeBase& runtime_;
  SessionLookup session_;
  session::StreamId stream_;
  std::string label_;
  ReleaseAfterLoad* release_;
  std::unique_ptr<LocalConnection> local_;
  asio::steady_timer readable_signal_;
  asio::steady_timer writable_signal_;
  bool initiator_ = false;
  ReplyHook on_reply_;
  ConnectPolicy policy_;
  ListenHandler on_listen_;
  ClosedHook on_closed_;
  std::vector<std::byte> first_bytes_;
  std::optional<StreamRequest> request_;
  bool header_done_ = false;
  bool holding_listener_ = false;  // a listen stream: no local connection, data is ignored
  std::vector<std::byte> header_;
  std::vector<std::byte> downstream_pending_;  // read from the stream, not yet taken locally
  std::vector<std::byte> upstream_pending_;    // read locally, not yet taken by the session
  bool peer_fin_reached_ = false;              // the FIN came; pass it on after the pending bytes
  bool upstream_done_ = false;                 // local EOF forwarded as FIN
  bool downstream_done_ = false;               // peer FIN forwarded as local shutdown
  bool closed_ = false;
};

// One forward of the client. -L and -R: [BIND:]PORT:HOST:HOSTPORT; -D: [BIND:]PORT. BIND defaults
// to 127.0.0.1 (for -R on the server's side).
struct Forward {
  enum class Kind : std::uint8_t { kLocal, kRemote, kDynamic };
  Kind kind = Kind::kLocal;
  std::string bind_address = "127.0.0.1";
  std::uint16_t bind_port = 0;
  StreamRequest target;  // unused for kDynamic (each SOCKS request names its own)
};

// Parses a forward spec of the given kind; the error names the flag and what is wrong.
[[nodiscard]] Expected<Forward, std::string> parse_forward(Forward::Kind kind,
                                                           std::string_view text);

struct ClientTunnelOptions {
  std::vector<Forward> forwards;
  // `tether stdio`: one stream from standard input/output to this target; the program ends when
  // the stream has ended both ways.
  std::optional<StreamRequest> stdio_target;
  // A session the server lost (restart: stateless reset; linger expired; server shut down) is
  // reported and replaced by a new one; the tunnelled connections of the old one end. Without
  // it, or with a stdio stream (which cannot continue elsewhere), the client exits with
  // kExitSessionLost. client_outcome() says which ends are losses.
  bool new_session_on_loss = true;
  // A -R the server refuses ends the client with kExitForwardFailed (--keep-going: it is logged
  // and the client runs on without it). Local listeners that cannot be opened fail start().
  bool exit_on_forward_failure = true;
};

class ClientTunnel final : public transport::SessionObserver {
 public:
  ClientTunnel(asio::io_context& io, ClientTunnelOptions options);
  void attach(transport::ClientRuntime& runtime) { runtime_ = &runtime; }
  // Opens the local listeners (and standard input/output); the error names what failed.
  Expected<void, std::string> start();
  void on_event(const session::SessionId& id, session::Session* session,
                const session::Event& event) override;
  void on_fatal(const transport::TransportError& error) override;
  // 0 after a graceful end; otherwise a code a script can act on (see the README).
  [[nodiscard]] int exit_code() const { return exit_code_; }
  // A stop was asked for (SIGTERM, SIGINT): closes the session gracefully, and never starts a new
  // one; when the session is already over (lost, a new one not yet started) it ends at once.
  void request_stop();
  // Local ports actually bound, in the order of the local and dynamic forwards (useful with 0).
  [[nodiscard]] std::vector<std::uint16_t> bound_ports() const;

 private:
  struct Listener {
    const Forward* forward = nullptr;
    std::unique_ptr<asio::ip::tcp::acceptor> acceptor;
  };
  asio::awaitable<void> accept_loop(Listener& listener);
  asio::awaitable<void> socks_handshake(asio::ip::tcp::socket socket);
  void when_open(std::function<void()> action);
  session::Session* open_session() const;
  std::shared_ptr<StreamBridge> new_bridge(session::StreamId stream, std::string label);
  void open_local(asio::ip::tcp::socket socket, const StreamRequest& target);
  void open_socks(asio::ip::tcp::socket socket, const StreamRequest& target,
                  std::vector<std::byte> first_bytes);
  void open_stdio();
  void request_listeners();
  void accept_remote(session::StreamId stream);
  // Ends the client with `code` (the first call decides; later ones only repeat the cleanup).
  void shutdown(int code);

  asio::io_context& io_;
  ClientTunnelOptions options_;
  std::vector<Listener> listeners_;
  std::unique_ptr<LocalConnection> stdio_;
  transport::ClientRuntime* runtime_ = nullptr;
  std::map<session::StreamId, std::shared_ptr<StreamBridge>> bridges_;
  std::vector<std::function<void()>> waiting_;  // local connections held until establishment
  bool open_ = false;
  ReleaseAfterLoad release_;
  int exit_code_ = 0;
  bool shut_down_ = false;
  bool stop_requested_ = false;  // request_stop(): no new session from now on
  int stdio_exit_code_ = 0;      // how the stdio stream ended; the exit code after a graceful close
};

struct ServerTunnelOptions {
  ConnectAllowList allow;        // --allow: targets streams may reach
  ListenAllowList allow_listen;  // --allow-listen: where -R listeners may bind
  Grants grants;                 // --grant, --grant-listen, --group: per principal, under the two
  std::chrono::milliseconds connect_timeout = kDefaultConnectTimeout;
  std::size_t max_pending_connects = kDefaultMaxPendingConnects;  // per session
};

class ServerTunnel final : public transport::SessionObserver {
 public:
  ServerTunnel(asio::io_context& io, ServerTunnelOptions options);
  void attach(transport::ServerRuntime& runtime) { runtime_ = &runtime; }
  void on_event(const session::SessionId& id, session::Session* session,
                const session::Event& event) override;
  void on_fatal(const transport::TransportError& error) override;

 private:
  // A -R listener: lives as long as its listen stream.
  struct RemoteListener {
    StreamRequest requested;  // as the client named it: identifies the forward to the client
    std::unique_ptr<asio::ip::tcp::acceptor> acceptor;
    // The connections it accepted that may still be open (ended ones are pruned at each accept):
    // reset with the listener when its grant is withdrawn.
    std::vector<std::weak_ptr<StreamBridge>> connections;
  };
  // The plan for a connect request of session `id` (called `name` in logs), or its refusal.
  Expected<ConnectPlan, Reply> connect_plan(const session::SessionId& id, const std::string& name,
                                            const StreamRequest& request);
  Reply open_listener(const session::SessionId& id, const StreamRequest& request,
                      session::StreamId stream);
  asio::awaitable<void> accept_loop(session::SessionId id, session::StreamId stream,
                                    std::shared_ptr<RemoteListener> listener);
  session::Session* find_open(const session::SessionId& id) const;

  asio::io_context& io_;
  ServerTunnelOptions options_;
  transport::ServerRuntime* runtime_ = nullptr;
  std::map<session::SessionId, std::shared_ptr<ConnectSlots>> connect_slots_;
  // What each session's principal may use, while grants are enforced (set at Established).
  struct SessionGrant {
    std::string principal;
    PrincipalGrant grant;
  };
  std::map<session::SessionId, SessionGrant> grants_;
  // Computes the grants of session `id` from its peer (at establishment and after each
  // re-authentication, whose credential may grant other scopes).
  void update_grant(const session::SessionId& id, const session::Session& session,
                    const std::string& name);
  // After a re-authentication: resets the streams and closes the -R listeners of session `id` whose
  // targets its new grants no longer allow, with the connections those listeners accepted, saying
  // why in the log and to the client (kResetNotGranted).
  void enforce_grants(const session::SessionId& id, const std::string& name);
  // The refusal when the session's principal is not granted `request` (checked by `allows`).
  [[nodiscard]] std::optional<std::string> grant_refusal(const session::SessionId& id,
                                                         const StreamRequest& request,
                                                         bool listen) const;
  std::map<session::SessionId, std::map<session::StreamId, std::shared_ptr<StreamBridge>>> bridges_;
  std::map<session::SessionId, std::map<session::StreamId, std::shared_ptr<RemoteListener>>>
      listeners_;
  ReleaseAfterLoad release_;
};

}  // namespace tether::tunnel
