#include "transport/status.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio/experimental/as_tuple.hpp>

#include "transport/accept_backoff.hpp"
#include "transport/file_safety.hpp"
#include "transport/log_safety.hpp"
#include "transport/runtime.hpp"

namespace tether::transport {
namespace {

namespace fs = std::filesystem;

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
// About 14,000 sessions of a busy server (a session's entry is about 600 bytes), and a bound all
// the same on what `tether status` holds in memory.
constexpr std::size_t kMaxAnswer = 8u << 20;
// Our documents nest three levels; a deeper answer is refused before parsing (nlohmann's parser is
// iterative, but printing and freeing a deep document recurse).
constexpr std::size_t kMaxNesting = 16;

double milliseconds(session::Duration duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

std::string hex(const session::SessionId& id) {
  std::string text;
  for (const auto byte : id) text += fmt::format("{:02x}", static_cast<unsigned>(byte));
  return text;
}

const char* state_name(const session::Session& session) {
  switch (session.phase()) {
    case session::Phase::kConnecting:
      return "connecting";
    case session::Phase::kOpen:
      return session.suspended() ? "suspended" : "open";
    case session::Phase::kClosed:
      return "closed";
  }
  return "unknown";
}

std::string bytes_text(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < (1u << 20)) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
  if (bytes < (1u << 30)) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1u << 20));
  return fmt::format("{:.2f} GiB", static_cast<double>(bytes) / (1u << 30));
}

// The member `key` of `object`, or null when `object` is not an object or has no such member:
// format_status reads documents from other processes and must not throw on any of them.
const nlohmann::json* member(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  const auto found = object.find(key);
  return found == object.end() ? nullptr : &*found;
}

bool has(const nlohmann::json& object, const char* key) {
  return member(object, key) != nullptr;
}

// A string member escaped for the terminal (a number is shown as it is), else "?".
std::string text_field(const nlohmann::json& object, const char* key) {
  const nlohmann::json* value = member(object, key);
  if (value != nullptr && value->is_string())
    return escape_for_log(value->get_ref<const std::string&>());
  if (value != nullptr && value->is_number()) return value->dump();
  return "?";
}

// A finite number member, else nullopt.
std::optional<double> number_field(const nlohmann::json& object, const char* key) {
  const nlohmann::json* value = member(object, key);
  if (value == nullptr || !value->is_number()) return std::nullopt;
  const double number = value->get<double>();
  return std::isfinite(number) ? std::optional<double>(number) : std::nullopt;
}

// A non-negative integer member (a fraction is cut off), else 0.
std::uint64_t count_field(const nlohmann::json& object, const char* key) {
  const nlohmann::json* value = member(object, key);
  if (value == nullptr) return 0;
  if (value->is_number_unsigned()) return value->get<std::uint64_t>();
  if (value->is_number_integer())
    return static_cast<std::uint64_t>(std::max<std::int64_t>(0, value->get<std::int64_t>()));
  const auto number = number_field(object, key);
  if (!number || *number < 1) return 0;
  return *number >= 1.8e19 ? std::numeric_limits<std::uint64_t>::max()
                           : static_cast<std::uint64_t>(*number);
}

// The endpoint for a socket at `path`, or why there can be none (asio's constructor would throw).
Expected<asio::local::stream_protocol::endpoint, std::string> socket_endpoint(
    const fs::path& path) {
  if (path.native().size() >= sizeof(sockaddr_un::sun_path)) {
    return make_unexpected(
        fmt::format("a socket path is at most {} bytes", sizeof(sockaddr_un::sun_path) - 1));
  }
  return asio::local::stream_protocol::endpoint(path.native());
}

}  // namespace

nlohmann::json describe_session(const session::Session& session, session::Time now,
                                const std::vector<std::chrono::milliseconds>& user_timeouts) {
  const auto stats = session.stats();
  nlohmann::json out;
  out["id"] = hex(session.id());
  out["state"] = state_name(session);
  // Who the session belongs to (a peer string: JSON escapes it; the text view escapes it again).
  if (!session.peer().mechanism.empty()) {
    out["principal"] = session.peer().principal;
    out["mechanism"] = session.peer().mechanism;
    out["reauthentications"] = stats.reauthentications;
    // Milliseconds until the session must re-authenticate (negative: past it; null: no limit).
    if (const auto end = session.lifetime_end()) {
      out["lifetime_left_ms"] =
          std::chrono::duration_cast<std::chrono::milliseconds>(*end - now).count();
    } else {
      out["lifetime_left_ms"] = nullptr;
    }
  }
  out["rtt_ms"] = stats.smoothed_rtt ? nlohmann::json(milliseconds(*stats.smoothed_rtt))
                                     : nlohmann::json(nullptr);
  out["rtt_variation_ms"] = milliseconds(stats.rtt_variation);
  out["heartbeat_interval_ms"] = milliseconds(session.heartbeat().interval);
  out["missing_heartbeats_allowed"] = session.heartbeat().missing_allowed;
  out["kernel_user_timeout_ms"] = nlohmann::json::array();
  for (const auto timeout : user_timeouts) out["kernel_user_timeout_ms"].push_back(timeout.count());
  out["streams"] = stats.open_streams;
  out["paths"] = session.path_count();
  out["bytes_written"] = stats.bytes_written;
  out["bytes_acknowledged"] = stats.bytes_acknowledged;
  out["bytes_buffered"] = stats.unacknowledged_bytes;
  out["bytes_abandoned"] = stats.bytes_abandoned;
  out["bytes_sent"] = stats.bytes_sent;
  out["bytes_replayed"] = stats.bytes_replayed;
  out["bytes_received"] = stats.bytes_received;
  out["resumes"] = stats.resumes;
  out["heartbeats_missed"] = stats.heartbeats_missed;
  out["rejected_resume_attempts"] = stats.rejected_resume_attempts;
  auto downtime = stats.total_downtime;
  if (const auto since = session.suspended_since()) {
    out["current_outage_ms"] = milliseconds(now - *since);
    downtime += now - *since;
  } else {
    out["current_outage_ms"] = nullptr;
  }
  out["downtime_ms"] = milliseconds(downtime);
  return out;
}

nlohmann::json client_status(ClientRuntime& runtime, session::Time now) {
  nlohmann::json out;
  out["role"] = "client";
  out["pid"] = ::getpid();
  out["server"] = runtime.options().host + ":" + runtime.options().port;
  out["sessions"] = nlohmann::json::array(
      {describe_session(runtime.session(), now, runtime.user_timeouts(runtime.connection_ids()))});
  return out;
}

nlohmann::json server_status(ServerRuntime& runtime, session::Time now) {
  nlohmann::json out;
  out["role"] = "server";
  out["pid"] = ::getpid();
  const auto endpoint = runtime.local_endpoint();
  out["listen"] = fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port());
  // The bounds in force and how close the server is to them (ARCHITECTURE.md, "Bounds").
  const session::ServerEndpoint& core = runtime.endpoint();
  const session::ServerLimits& limits = core.limits();
  const session::EndpointStats& stats = core.stats();
  out["limits"] = {
      {"sessions", core.session_count()},
      {"max_sessions", limits.max_sessions},
      {"suspended_sessions", core.suspended_count()},
      {"max_suspended_sessions", limits.max_suspended_sessions},
      {"max_sessions_per_source", limits.max_sessions_per_source},
      {"sessions_refused", stats.sessions_refused},
      {"sessions_evicted", stats.sessions_evicted},
      {"buffered_bytes", core.budget().used()},
      {"max_buffered_bytes", core.budget().limit()},
      {"pending_connections", runtime.admission().pending()},
      {"max_pending_connections", runtime.admission().limits().total},
      {"max_pending_per_source", runtime.admission().limits().per_source},
      {"connections_refused", runtime.connections_refused()},
  };
  out["authentication"] = {
      {"required", core.authenticates()},
      {"succeeded", stats.authentications_succeeded},
      {"failed", stats.authentication_failures},
      {"throttled", stats.authentications_throttled},
      {"pending_refused", stats.pending_connections_refused},
      {"reauthenticated", stats.reauthentications_succeeded},
      {"reauthentication_failed", stats.reauthentication_failures},
      {"without_reauthentication", stats.authentications_without_reauthentication},
      {"expired_sessions_closed", stats.expired_sessions_closed},
      {"frames_on_expired_sessions", stats.frames_on_expired_sessions},
      {"revoked", stats.sessions_revoked},
  };
  out["sessions"] = nlohmann::json::array();
  // Read through the const endpoint: a status request does not make the server re-read sessions.
  for (const auto& id : core.session_ids()) {
    if (const session::Session* session = core.find(id)) {
      out["sessions"].push_back(
          describe_session(*session, now, runtime.user_timeouts(core.connections_of(id))));
    }
  }
  return out;
}

std::filesystem::path default_control_directory() {
  if (const char* runtime_directory = std::getenv("XDG_RUNTIME_DIR");
      runtime_directory != nullptr && *runtime_directory != '\0') {
    return std::filesystem::path(runtime_directory) / "tether";
  }
  return std::filesystem::path("/tmp") / fmt::format("tether-{}", ::getuid());
}

Expected<ControlRequest, std::string> parse_control_request(std::string_view line) {
  if (line.size() > kMaxControlRequest)
    return make_unexpected(fmt::format("request longer than {} bytes", kMaxControlRequest));
  ControlRequest request;
  if (line == "status") return request;
  if (line == "reload") {
    request.kind = ControlRequest::Kind::kReload;
    return request;
  }
  constexpr std::string_view kRevokeUser = "revoke user ";
  constexpr std::string_view kRevokeSession = "revoke session ";
  if (line.starts_with(kRevokeUser)) {
    const std::string_view name = line.substr(kRevokeUser.size());
    const bool control = std::any_of(name.begin(), name.end(), [](char character) {
      const auto byte = static_cast<unsigned char>(character);
      return byte < 0x20 || byte == 0x7f;
    });
    if (name.empty() || name.size() > 256 || control)
      return make_unexpected(
          std::string("revoke user: the name must be 1 to 256 bytes without control characters"));
    request.kind = ControlRequest::Kind::kRevokeUser;
    request.argument = std::string(name);
    return request;
  }
  if (line.starts_with(kRevokeSession)) {
    const std::string_view id = line.substr(kRevokeSession.size());
    const bool hex_digits = std::all_of(id.begin(), id.end(), [](char character) {
      return std::isxdigit(static_cast<unsigned char>(character)) != 0;
    });
    if (id.size() < 8 || id.size() > 2 * std::tuple_size_v<session::SessionId> || !hex_digits)
      return make_unexpected(std::string(
          "revoke session: the id must be 8 to 32 hex digits (a session id or a prefix of one)"));
    request.kind = ControlRequest::Kind::kRevokeSession;
    for (const char character : id)
      request.argument += static_cast<char>(std::tolower(static_cast<unsigned char>(character)));
    return request;
  }
  return make_unexpected("unknown request '" + escape_for_log(line.substr(0, 64)) +
                         "'; known: status, reload, revoke user NAME, revoke session ID");
}

std::string format_control_request(const ControlRequest& request) {
  switch (request.kind) {
    case ControlRequest::Kind::kStatus:
      return "status";
    case ControlRequest::Kind::kReload:
      return "reload";
    case ControlRequest::Kind::kRevokeUser:
      return "revoke user " + request.argument;
    case ControlRequest::Kind::kRevokeSession:
      return "revoke session " + request.argument;
  }
  return "status";
}

std::optional<uid_t> peer_uid(int socket_descriptor) {
  ucred credentials{};
  socklen_t length = sizeof credentials;
  if (::getsockopt(socket_descriptor, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0 ||
      length != sizeof credentials)
    return std::nullopt;
  return credentials.uid;
}

ControlSocket::ControlSocket(asio::io_context& io, std::filesystem::path path, Report report,
                             Administer administer)
    : io_(io),
      path_(std::move(path)),
      report_(std::move(report)),
      administer_(std::move(administer)),
      allowed_uid_(::geteuid()),
      acceptor_(io) {}

ControlSocket::~ControlSocket() {
  std::error_code ignored;
  acceptor_.close(ignored);
  if (bound_) std::filesystem::remove(path_, ignored);
}

Expected<void, std::string> ControlSocket::start() {
  std::error_code error;
  const auto directory = path_.has_parent_path() ? path_.parent_path() : fs::path(".");
  // Never chmod: tether's own directory must already be private, another one merely safe.
  auto usable = directory == default_control_directory() ? ensure_private_directory(directory)
                                                         : ensure_safe_directory(directory);
  if (!usable) return make_unexpected(usable.error());
  struct stat existing {};
  if (::lstat(path_.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      return make_unexpected("cannot create control socket " + path_.string() +
                             ": a file that is not a socket is in the way");
    }
    if (control_socket_alive(path_)) {
      return make_unexpected("control socket " + path_.string() +
                             " is in use by another tether process");
    }
    std::filesystem::remove(path_, error);  // left behind by a process that died
  }
  const auto endpoint = socket_endpoint(path_);
  if (!endpoint) {
    return make_unexpected("cannot create control socket " + path_.string() + ": " +
                           endpoint.error());
  }
  acceptor_.open(endpoint->protocol(), error);
  const mode_t previous = ::umask(0177);
  if (!error) acceptor_.bind(*endpoint, error);
  ::umask(previous);
  if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return make_unexpected("cannot create control socket " + path_.string() + ": " +
                           error.message());
  }
  bound_ = true;
  asio::co_spawn(io_, accept_loop(), asio::detached);
  return {};
}

asio::awaitable<void> ControlSocket::accept_loop() {
  AcceptBackoff backoff("control socket " + path_.string());
  while (acceptor_.is_open()) {
    auto [error, socket] = co_await acceptor_.async_accept(kTuple);
    if (error == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (error) {
      co_await backoff.after_failure(error);
      continue;
    }
    backoff.after_success();
    asio::co_spawn(io_, answer(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> ControlSocket::answer(asio::local::stream_protocol::socket socket) {
  nlohmann::json reply;
  // Only our own user, whatever the socket file's mode lets connect (checked before reading).
  const auto uid = peer_uid(socket.native_handle());
  if (!uid || *uid != allowed_uid_) {
    spdlog::warn("control socket {}: refused a connection from uid {}",
                 escape_for_log(path_.string()), uid ? std::to_string(*uid) : std::string("?"));
    reply["error"] =
        "permission denied: only the user running this tether may use its control socket";
  } else {
    std::string request;
    std::array<char, 64> buffer{};
    // One line, bounded: at most kMaxControlRequest bytes and its newline.
    while (request.find('\n') == std::string::npos && request.size() <= kMaxControlRequest) {
      auto [error, count] = co_await socket.async_read_some(asio::buffer(buffer), kTuple);
      if (error) break;
      request.append(buffer.data(), count);
    }
    const auto end = request.find('\n');
    if (end == std::string::npos) {
      reply["error"] = request.size() > kMaxControlRequest
                           ? fmt::format("request longer than {} bytes", kMaxControlRequest)
                           : std::string("request not ended by a newline");
    } else {
      request.resize(end);
      if (!request.empty() && request.back() == '\r') request.pop_back();
      auto parsed = parse_control_request(request);
      if (!parsed) {
        reply["error"] = parsed.error();
      } else if (parsed->kind == ControlRequest::Kind::kStatus) {
        reply = report_();
      } else if (!administer_) {
        reply["error"] = "this process takes no administrative requests (only a server does)";
      } else {
        reply = administer_(*parsed);
      }
    }
  }
  // Peer strings (principals) need not be UTF-8: replaced, never a throw.
  const std::string text =
      reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  auto [error, written] = co_await asio::async_write(socket, asio::buffer(text), kTuple);
  (void)written;
  if (!error && reply.contains("error")) {
    // A request we did not read (a refused peer's) would make closing reset the connection
    // before the peer reads the answer: end our side, then discard what it sent (bounded) until
    // it closes.
    std::error_code ignored;
    socket.shutdown(asio::socket_base::shutdown_send, ignored);
    std::array<char, 64> discard{};
    for (std::size_t total = 0; total <= kMaxControlRequest;) {
      auto [read_error, count] = co_await socket.async_read_some(asio::buffer(discard), kTuple);
      if (read_error) break;
      total += count;
    }
  }
}

namespace {

struct Exchange {
  asio::local::stream_protocol::socket& socket;
  asio::steady_timer& deadline;
  const std::string& line;
  const std::string& name;  // the socket's path, escaped, for messages
  std::string& answer;
  std::optional<std::string>& failure;
};

// Connects, sends `line` and reads the answer until the peer closes, or fails (reading stops as
// soon as the answer passes kMaxAnswer); then stops the deadline.
asio::awaitable<void> exchange(Exchange state, asio::local::stream_protocol::endpoint endpoint) {
  auto [connect_error] = co_await state.socket.async_connect(endpoint, kTuple);
  if (connect_error) {
    state.failure = "cannot connect to " + state.name + ": " + connect_error.message();
  } else {
    auto [write_error, written] =
        co_await asio::async_write(state.socket, asio::buffer(state.line), kTuple);
    (void)written;
    if (write_error) state.failure = "cannot send to " + state.name + ": " + write_error.message();
  }
  std::array<char, 16384> buffer{};
  while (!state.failure) {
    auto [read_error, count] = co_await state.socket.async_read_some(asio::buffer(buffer), kTuple);
    state.answer.append(buffer.data(), count);
    if (state.answer.size() > kMaxAnswer) {
      state.failure = fmt::format("the answer from {} is larger than {} MiB; refused", state.name,
                                  kMaxAnswer >> 20);
    } else if (read_error == asio::error::eof) {
      break;
    } else if (read_error) {
      state.failure = "no answer from " + state.name + ": " + read_error.message();
    }
  }
  state.deadline.cancel();
}

// The deepest nesting of arrays and objects in `text`, brackets inside strings not counted; stops
// counting past `limit`.
std::size_t nesting_depth(std::string_view text, std::size_t limit) {
  std::size_t depth = 0;
  std::size_t deepest = 0;
  bool in_string = false;
  for (std::size_t index = 0; index < text.size() && deepest <= limit; ++index) {
    const char character = text[index];
    if (in_string) {
      if (character == '\\') {
        ++index;
      } else if (character == '"') {
        in_string = false;
      }
    } else if (character == '"') {
      in_string = true;
    } else if (character == '[' || character == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((character == ']' || character == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

Expected<nlohmann::json, std::string> query_control_socket(const std::filesystem::path& path,
                                                           const std::string& request,
                                                           std::chrono::milliseconds timeout) {
  const std::string name = escape_for_log(path.string());
  auto endpoint = socket_endpoint(path);
  if (!endpoint) return make_unexpected("cannot connect to " + name + ": " + endpoint.error());
  asio::io_context io;
  asio::local::stream_protocol::socket socket(io);
  asio::steady_timer deadline(io);
  const std::string line = request + "\n";
  std::string answer;
  std::optional<std::string> failure;
  bool timed_out = false;
  // One deadline for the whole exchange: a process that answers slowly, byte by byte, or never,
  // must not hang `tether status`.
  deadline.expires_after(timeout);
  deadline.async_wait([&](std::error_code error) {
    if (error) return;
    timed_out = true;
    std::error_code ignored;
    socket.close(ignored);
  });
  asio::co_spawn(io, exchange(Exchange{socket, deadline, line, name, answer, failure}, *endpoint),
                 asio::detached);
  io.run();
  if (timed_out) {
    return make_unexpected(
        fmt::format("no complete answer from {} within {} ms", name, timeout.count()));
  }
  if (failure) return make_unexpected(*failure);
  if (nesting_depth(answer, kMaxNesting) > kMaxNesting) {
    return make_unexpected(
        fmt::format("the answer from {} nests deeper than {} levels; refused", name, kMaxNesting));
  }
  auto parsed = nlohmann::json::parse(answer, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return make_unexpected("the answer from " + name + " is not JSON");
  if (!parsed.is_object())
    return make_unexpected("the answer from " + name + " is not a JSON object");
  return parsed;
}

bool control_socket_alive(const std::filesystem::path& path) {
  // Non-blocking: a listener whose backlog is full (EAGAIN) is alive, and must not block us.
  const int descriptor = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (descriptor < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string text = path.string();
  if (text.size() >= sizeof address.sun_path) {
    ::close(descriptor);
    return false;
  }
  std::copy(text.begin(), text.end(), address.sun_path);
  const int result =
      ::connect(descriptor, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const bool alive = result == 0 || errno == EAGAIN || errno == EINPROGRESS;
  ::close(descriptor);
  return alive;
}

std::string format_status(const nlohmann::json& status) {
  std::ostringstream out;
  if (has(status, "error")) {
    out << "error: " << text_field(status, "error") << "\n";
    return out.str();
  }
  const std::string role = text_field(status, "role");
  out << role << " (pid " << count_field(status, "pid") << ")";
  if (role == "client") out << ", server " << text_field(status, "server");
  if (role == "server") out << ", listening on " << text_field(status, "listen");
  const nlohmann::json* sessions = member(status, "sessions");
  const std::size_t session_count =
      sessions != nullptr && sessions->is_array() ? sessions->size() : 0;
  out << ", " << session_count << (session_count == 1 ? " session\n" : " sessions\n");
  if (const nlohmann::json* limits = member(status, "limits"); limits != nullptr) {
    out << fmt::format(
        "  limits: sessions {}/{} ({} suspended, at most {}), {} refused, {} evicted; buffered "
        "{}/{}; "
        "pending connections {}/{}, {} refused\n",
        count_field(*limits, "sessions"), count_field(*limits, "max_sessions"),
        count_field(*limits, "suspended_sessions"), count_field(*limits, "max_suspended_sessions"),
        count_field(*limits, "sessions_refused"), count_field(*limits, "sessions_evicted"),
        bytes_text(count_field(*limits, "buffered_bytes")),
        bytes_text(count_field(*limits, "max_buffered_bytes")),
        count_field(*limits, "pending_connections"),
        count_field(*limits, "max_pending_connections"),
        count_field(*limits, "connections_refused"));
  }
  for (std::size_t index = 0; index < session_count; ++index) {
    const nlohmann::json& session = (*sessions)[index];
    const nlohmann::json* id = member(session, "id");
    const std::string short_id =
        id != nullptr && id->is_string()
            ? escape_for_log(id->get_ref<const std::string&>().substr(0, 16))
            : std::string("?");
    out << fmt::format("  session {} {}", short_id, text_field(session, "state"));
    if (const auto outage = number_field(session, "current_outage_ms"))
      out << fmt::format(" for {:.0f} ms", *outage);
    const auto rtt = number_field(session, "rtt_ms");
    out << fmt::format(", rtt {}, {} streams, {} paths\n",
                       rtt ? fmt::format("{:.2f} ms", *rtt) : std::string("-"),
                       count_field(session, "streams"), count_field(session, "paths"));
    out << fmt::format("    written {} (acknowledged {}, buffered {}), received {}, replayed {}\n",
                       bytes_text(count_field(session, "bytes_written")),
                       bytes_text(count_field(session, "bytes_acknowledged")),
                       bytes_text(count_field(session, "bytes_buffered")),
                       bytes_text(count_field(session, "bytes_received")),
                       bytes_text(count_field(session, "bytes_replayed")));
    out << fmt::format("    resumes {}, downtime {:.0f} ms, heartbeat {:.0f} ms x {}\n",
                       count_field(session, "resumes"),
                       number_field(session, "downtime_ms").value_or(0.0),
                       number_field(session, "heartbeat_interval_ms").value_or(0.0),
                       count_field(session, "missing_heartbeats_allowed"));
  }
  return out.str();
}

}  // namespace tether::transport
