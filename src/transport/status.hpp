// ControlSocket is a running tether's Unix-domain control socket: `tether status` and `tether
// admin` connect, send one request line and read one JSON document back. The helpers below build
// that document from the runtimes and fetch it from another process.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "session/session.hpp"
#include "tether/expected.hpp"

namespace tether::transport {

class ClientRuntime;
class ServerRuntime;

// One session as `tether status` shows it: state, RTT, streams, byte counters, buffered
// (unacknowledged) bytes, resumes and downtime (total, and the current outage if suspended).
// `user_timeouts` are the kernel's TCP_USER_TIMEOUT of the session's connections, as read back
// from the sockets (they follow the negotiated heartbeat once the session is established).
[[nodiscard]] nlohmann::json describe_session(
    const session::Session& session, session::Time now,
    const std::vector<std::chrono::milliseconds>& user_timeouts = {});
// {"role": "client", "pid": ..., "server": "host:port", "sessions": [...]}
[[nodiscard]] nlohmann::json client_status(ClientRuntime& runtime, session::Time now);
// {"role": "server", "pid": ..., "listen": "addr:port", "sessions": [...]}
[[nodiscard]] nlohmann::json server_status(ServerRuntime& runtime, session::Time now);

// $XDG_RUNTIME_DIR/tether when that is set, else /tmp/tether-UID: where control sockets are made.
// It is tether's own directory (see ensure_private_directory in file_safety.hpp): created with mode
// 0700, and refused if it exists but is not the user's, or group or others may use it.
[[nodiscard]] std::filesystem::path default_control_directory();

// One request line, parsed strictly by parse_control_request: exactly one of
//   status | reload | revoke user NAME | revoke session HEXID
// words separated by single spaces, the line at most kMaxControlRequest bytes. NAME is the rest of
// the line (1 to 256 bytes, no control characters: a certificate's CN may hold spaces); HEXID is 8
// to 32 hex digits, a session id or a prefix of one (stored in lower case).
struct ControlRequest {
  enum class Kind : unsigned char { kStatus, kReload, kRevokeUser, kRevokeSession };
  Kind kind = Kind::kStatus;
  std::string argument;  // the user name or the session id's hex digits
};
inline constexpr std::size_t kMaxControlRequest = 512;
[[nodiscard]] Expected<ControlRequest, std::string> parse_control_request(std::string_view line);
// The line that parse_control_request reads back as `request` (what `tether admin` sends).
[[nodiscard]] std::string format_control_request(const ControlRequest& request);

// The uid of the process at the other end of a connected Unix-domain socket (SO_PEERCRED), or
// nullopt when the kernel does not say.
[[nodiscard]] std::optional<uid_t> peer_uid(int socket_descriptor);

class ControlSocket {
 public:
  // Answers the request "status" with report(), the administrative requests (reload, revoke)
  // with administer() (without one they get {"error": "..."}), and anything else with an error.
  // Only the process's own user (its effective uid, as SO_PEERCRED reports the peer's) is
  // answered, whatever the socket file's mode; others get {"error": "permission denied ..."}.
  using Report = std::function<nlohmann::json()>;
  using Administer = std::function<nlohmann::json(const ControlRequest&)>;
  ControlSocket(asio::io_context& io, std::filesystem::path path, Report report,
                Administer administer = {});
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  // Creates the socket (0600, owner only). Its directory is never chmodded: when it is
  // default_control_directory() it must be tether's own (ensure_private_directory: created 0700,
  // else owned by the user with no access for group or others); any other directory is created
  // (0700) when missing and must otherwise pass check_path_safety (not writable by others unless
  // sticky, like /tmp). A socket left by a dead process is replaced; one that answers is an error
  // (another tether uses that path), and so is a file at the path that is not a socket.
  Expected<void, std::string> start();
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  // The one uid answered (default: the effective uid); for tests of the refusal.
  void set_allowed_uid(uid_t uid) { allowed_uid_ = uid; }

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> answer(asio::local::stream_protocol::socket socket);

  asio::io_context& io_;
  std::filesystem::path path_;
  Report report_;
  Administer administer_;
  uid_t allowed_uid_;
  asio::local::stream_protocol::acceptor acceptor_;
  bool bound_ = false;
};

// Sends `request` to the control socket at `path` and returns the parsed reply, or why not. The
// other end may be anything: the whole exchange must end within `timeout`, an answer over 8 MiB or
// nested deeper than 16 levels is refused, and the answer must be a JSON object. Never throws.
// Errors name the socket's path, escaped (escape_for_log).
[[nodiscard]] Expected<nlohmann::json, std::string> query_control_socket(
    const std::filesystem::path& path, const std::string& request = "status",
    std::chrono::milliseconds timeout = std::chrono::seconds(3));

// False when nothing listens on `path` (a socket file left by a process that was killed).
[[nodiscard]] bool control_socket_alive(const std::filesystem::path& path);

// A human-readable rendering of one status document (what `tether status` prints). Accepts any
// JSON value without throwing: missing or mistyped fields show as "?" or 0, and every string is
// escaped (escape_for_log), so that an answer cannot put control characters on the terminal.
[[nodiscard]] std::string format_status(const nlohmann::json& status);

}  // namespace tether::transport
