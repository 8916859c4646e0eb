#include "transport/status.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include <fmt/format.h>
#include <asio/experimental/as_tuple.hpp>

#include "transport/accept_backoff.hpp"
#include "transport/runtime.hpp"

namespace tether::transport {
namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxRequest = 256;
constexpr std::size_t kMaxReply = 16u << 20;  // a server with many sessions; bounded all the same

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

}  // namespace

nlohmann::json describe_session(const session::Session& session, session::Time now) {
  const auto stats = session.stats();
  nlohmann::json out;
  out["id"] = hex(session.id());
  out["state"] = state_name(session);
  out["rtt_ms"] = stats.smoothed_rtt ? nlohmann::json(milliseconds(*stats.smoothed_rtt))
                                     : nlohmann::json(nullptr);
  out["rtt_variation_ms"] = milliseconds(stats.rtt_variation);
  out["heartbeat_interval_ms"] = milliseconds(session.heartbeat().interval);
  out["missing_heartbeats_allowed"] = session.heartbeat().missing_allowed;
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
  out["sessions"] = nlohmann::json::array({describe_session(runtime.session(), now)});
  return out;
}

nlohmann::json server_status(ServerRuntime& runtime, session::Time now) {
  nlohmann::json out;
  out["role"] = "server";
  out["pid"] = ::getpid();
  const auto endpoint = runtime.local_endpoint();
  out["listen"] = fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port());
  out["sessions"] = nlohmann::json::array();
  for (const auto& id : runtime.endpoint().session_ids()) {
    if (const session::Session* session = runtime.endpoint().find(id))
      out["sessions"].push_back(describe_session(*session, now));
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

ControlSocket::ControlSocket(asio::io_context& io, std::filesystem::path path, Report report)
    : io_(io), path_(std::move(path)), report_(std::move(report)), acceptor_(io) {}

ControlSocket::~ControlSocket() {
  std::error_code ignored;
  acceptor_.close(ignored);
  if (bound_) std::filesystem::remove(path_, ignored);
}

Expected<void, std::string> ControlSocket::start() {
  std::error_code error;
  const auto directory = path_.parent_path();
  if (!directory.empty()) {
    std::filesystem::create_directories(directory, error);
    if (error) {
      return make_unexpected("cannot create " + directory.string() + ": " + error.message());
    }
    ::chmod(directory.c_str(), 0700);
  }
  if (std::filesystem::exists(path_, error)) {
    if (control_socket_alive(path_)) {
      return make_unexpected("control socket " + path_.string() +
                             " is in use by another tether process");
    }
    std::filesystem::remove(path_, error);  // left behind by a process that died
  }
  const asio::local::stream_protocol::endpoint endpoint(path_.string());
  acceptor_.open(endpoint.protocol(), error);
  const mode_t previous = ::umask(0177);
  if (!error) acceptor_.bind(endpoint, error);
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
  std::string request;
  std::array<char, 64> buffer{};
  while (request.find('\n') == std::string::npos && request.size() < kMaxRequest) {
    auto [error, count] = co_await socket.async_read_some(asio::buffer(buffer), kTuple);
    if (error) break;
    request.append(buffer.data(), count);
  }
  if (const auto end = request.find_first_of("\r\n"); end != std::string::npos) request.resize(end);
  nlohmann::json reply;
  if (request == "status") {
    reply = report_();
  } else {
    reply["error"] = "unknown request '" + request.substr(0, 64) + "'; known: status";
  }
  const std::string text = reply.dump() + "\n";
  auto [error, written] = co_await asio::async_write(socket, asio::buffer(text), kTuple);
  (void)error;
  (void)written;
}

Expected<nlohmann::json, std::string> query_control_socket(const std::filesystem::path& path,
                                                           const std::string& request) {
  asio::io_context io;
  asio::local::stream_protocol::socket socket(io);
  std::error_code error;
  socket.connect(asio::local::stream_protocol::endpoint(path.string()), error);
  if (error) return make_unexpected("cannot connect to " + path.string() + ": " + error.message());
  // A hung process must not hang `tether status`.
  const timeval timeout{2, 0};
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  const std::string line = request + "\n";
  asio::write(socket, asio::buffer(line), error);
  if (error) return make_unexpected("cannot send to " + path.string() + ": " + error.message());
  std::string reply;
  std::array<char, 4096> buffer{};
  while (reply.size() < kMaxReply) {
    const std::size_t count = socket.read_some(asio::buffer(buffer), error);
    if (error) break;
    reply.append(buffer.data(), count);
  }
  if (error && error != asio::error::eof)
    return make_unexpected("no answer from " + path.string() + ": " + error.message());
  auto parsed = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded())
    return make_unexpected("the answer from " + path.string() + " is not JSON");
  return parsed;
}

bool control_socket_alive(const std::filesystem::path& path) {
  asio::io_context io;
  asio::local::stream_protocol::socket socket(io);
  std::error_code error;
  socket.connect(asio::local::stream_protocol::endpoint(path.string()), error);
  return !error;
}

std::string format_status(const nlohmann::json& status) {
  std::ostringstream out;
  if (status.contains("error")) {
    out << "error: " << status["error"].get<std::string>() << "\n";
    return out.str();
  }
  const std::string role = status.value("role", "?");
  out << role << " (pid " << status.value("pid", 0) << ")";
  if (role == "client") out << ", server " << status.value("server", "?");
  if (role == "server") out << ", listening on " << status.value("listen", "?");
  const auto& sessions = status["sessions"];
  out << ", " << sessions.size() << (sessions.size() == 1 ? " session\n" : " sessions\n");
  for (const auto& session : sessions) {
    const auto rtt = session["rtt_ms"];
    out << fmt::format("  session {} {}", session.value("id", "").substr(0, 16),
                       session.value("state", "?"));
    if (!session["current_outage_ms"].is_null())
      out << fmt::format(" for {:.0f} ms", session["current_outage_ms"].get<double>());
    out << fmt::format(
        ", rtt {}, {} streams, {} paths\n",
        rtt.is_null() ? std::string("-") : fmt::format("{:.2f} ms", rtt.get<double>()),
        session.value("streams", 0), session.value("paths", 0));
    out << fmt::format("    written {} (acknowledged {}, buffered {}), received {}, replayed {}\n",
                       bytes_text(session.value("bytes_written", std::uint64_t{0})),
                       bytes_text(session.value("bytes_acknowledged", std::uint64_t{0})),
                       bytes_text(session.value("bytes_buffered", std::uint64_t{0})),
                       bytes_text(session.value("bytes_received", std::uint64_t{0})),
                       bytes_text(session.value("bytes_replayed", std::uint64_t{0})));
    out << fmt::format("    resumes {}, downtime {:.0f} ms, heartbeat {:.0f} ms x {}\n",
                       session.value("resumes", 0), session.value("downtime_ms", 0.0),
                       session.value("heartbeat_interval_ms", 0.0),
                       session.value("missing_heartbeats_allowed", 0));
  }
  return out.str();
}

}  // namespace tether::transport
