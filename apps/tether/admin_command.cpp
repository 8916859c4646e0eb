#include "admin_command.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "transport/file_safety.hpp"
#include "transport/log_safety.hpp"

namespace tether::app {
namespace {

namespace fs = std::filesystem;

std::string hex(const session::SessionId& id) {
  std::string text;
  for (const auto byte : id) text += fmt::format("{:02x}", static_cast<unsigned>(byte));
  return text;
}

std::string sessions_text(std::size_t count) {
  return fmt::format("{} session{}", count, count == 1 ? "" : "s");
}

bool password_mechanism(const std::string& mechanism) {
  return mechanism.starts_with("SCRAM-") || mechanism == "PLAIN";
}

// The control socket of the one server running as this user, or why there is none to choose.
Expected<fs::path, std::string> find_server_socket() {
  const fs::path directory = transport::default_control_directory();
  if (auto own = transport::ensure_private_directory(directory, /*create=*/false); !own)
    return make_unexpected(own.error());
  std::vector<fs::path> found;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(directory, error)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("server-") && entry.path().extension() == ".sock" &&
        transport::control_socket_alive(entry.path()))
      found.push_back(entry.path());
  }
  if (found.size() == 1) return found.front();
  return make_unexpected(
      found.empty() ? "no running tether server found in " + directory.string()
                    : fmt::format("{} running tether servers in {}: choose one with --socket PATH",
                                  found.size(), directory.string()));
}

}  // namespace

CLI::App* add_admin_command(CLI::App& app, AdminOptions& options) {
  auto* admin = app.add_subcommand(
      "admin", "Administer a running tether server over its control socket (same user only)");
  admin->require_subcommand(1);
  admin->add_option("--socket", options.socket,
                    "The server's control socket (default: the one server-PID.sock in the "
                    "default directory)");
  auto* revoke = admin->add_subcommand(
      "revoke", "End sessions at once with reason revoked (their clients exit with status 9)");
  auto* user = revoke->add_option("--user", options.revoke_user,
                                  "Every session of this principal (user name, token subject, "
                                  "certificate identity)");
  auto* session = revoke->add_option("--session", options.revoke_session,
                                     "One session: its id as `tether status --json` shows it, or "
                                     "a unique prefix of at least 8 hex digits");
  user->excludes(session);
  revoke->require_option(1);
  auto* reload = admin->add_subcommand(
      "reload",
      "Re-read the users file and the token deny list (as SIGHUP does) and end the sessions of "
      "users now disabled or deleted and of denied tokens");
  // --socket may come after the subcommand too (tether admin revoke --user x --socket PATH).
  revoke->fallthrough();
  reload->fallthrough();
  return admin;
}

int run_admin(CLI::App& admin, const AdminOptions& options) {
  transport::ControlRequest request;
  if (admin.got_subcommand("revoke")) {
    if (!options.revoke_user.empty()) {
      request.kind = transport::ControlRequest::Kind::kRevokeUser;
      request.argument = options.revoke_user;
    } else {
      request.kind = transport::ControlRequest::Kind::kRevokeSession;
      request.argument = options.revoke_session;
    }
  } else {
    request.kind = transport::ControlRequest::Kind::kReload;
  }
  // The same strict check as the server's, so that a mistake is a usage error here.
  const std::string line = transport::format_control_request(request);
  if (auto checked = transport::parse_control_request(line); !checked) {
    std::fprintf(stderr, "tether admin: %s\n", transport::escape_for_log(checked.error()).c_str());
    return 2;
  }
  fs::path socket = options.socket;
  if (socket.empty()) {
    auto found = find_server_socket();
    if (!found) {
      std::fprintf(stderr, "tether admin: %s\n", transport::escape_for_log(found.error()).c_str());
      return 1;
    }
    socket = *found;
  }
  auto answer = transport::query_control_socket(socket, line);
  if (!answer) {
    std::fprintf(stderr, "tether admin: %s\n", answer.error().c_str());
    return 1;
  }
  if (const auto error = answer->find("error"); error != answer->end()) {
    std::fprintf(
        stderr, "tether admin: %s\n",
        transport::escape_for_log(error->is_string() ? error->get<std::string>() : error->dump())
            .c_str());
    return 1;
  }
  // The answer comes from another process: read without trusting its types (never a throw).
  const auto field = answer->find("revoked");
  const std::uint64_t revoked =
      field != answer->end() && field->is_number_unsigned() ? field->get<std::uint64_t>() : 0;
  const auto session_field = answer->find("session");
  const std::string session_id = session_field != answer->end() && session_field->is_string()
                                     ? session_field->get<std::string>()
                                     : request.argument;
  switch (request.kind) {
    case transport::ControlRequest::Kind::kRevokeUser:
      std::printf("revoked %s of user %s\n", sessions_text(revoked).c_str(),
                  transport::escape_for_log(request.argument).c_str());
      break;
    case transport::ControlRequest::Kind::kRevokeSession:
      std::printf("revoked session %s\n", transport::escape_for_log(session_id).c_str());
      break;
    default: {
      std::string warnings;
      for (const char* key : {"users", "token_deny_list"}) {
        const auto value = answer->find(key);
        if (value != answer->end() && value->is_string() &&
            value->get<std::string>() != "reloaded" &&
            value->get<std::string>() != "not configured")
          warnings +=
              fmt::format("  {}: {}\n", key, transport::escape_for_log(value->get<std::string>()));
      }
      std::printf("reloaded; revoked %s\n%s", sessions_text(revoked).c_str(), warnings.c_str());
      if (!warnings.empty()) return 1;
    }
  }
  return 0;
}

ServerAdministration::ServerAdministration(asio::io_context& io, transport::ServerRuntime& runtime,
                                           std::shared_ptr<auth::UserDirectory> users,
                                           std::shared_ptr<auth::TokenDenyList> deny_list)
    : runtime_(runtime), users_(std::move(users)), deny_list_(std::move(deny_list)), timer_(io) {}

void ServerAdministration::start_watching() {
  if (deny_list_ != nullptr) watch();
}

void ServerAdministration::watch() {
  timer_.expires_after(std::chrono::seconds(1));
  timer_.async_wait([this](std::error_code error) {
    if (error) return;
    auto changed = deny_list_->refresh();
    if (!changed) {
      spdlog::warn("{} (the list in force stays)", transport::escape_for_log(changed.error()));
    } else if (*changed) {
      spdlog::info("token deny list changed: {} ids", deny_list_->size());
      revoke_denied_tokens();
    }
    watch();
  });
}

std::size_t ServerAdministration::revoke_denied_tokens() {
  if (deny_list_ == nullptr) return 0;
  const auto denied = deny_list_->ids();
  const std::size_t count = runtime_.endpoint().revoke_matching(
      [&](const session::AuthenticatedPeer& peer) {
        return !peer.credential_id.empty() && denied->contains(peer.credential_id);
      },
      session::Clock::now(), "its token is on the token deny list");
  if (count > 0) {
    spdlog::info("token deny list: revoked {}", sessions_text(count));
    runtime_.wake();
  }
  return count;
}

std::size_t ServerAdministration::revoke_disabled_users() {
  if (users_ == nullptr) return 0;
  const std::size_t count = runtime_.endpoint().revoke_matching(
      [&](const session::AuthenticatedPeer& peer) {
        return password_mechanism(peer.mechanism) &&
               users_->lookup(peer.principal).kind != auth::UserLookup::Kind::kFound;
      },
      session::Clock::now(), "its user is disabled or no longer in the users file");
  if (count > 0) {
    spdlog::info("users file: revoked {} of disabled or deleted users", sessions_text(count));
    runtime_.wake();
  }
  return count;
}

nlohmann::json ServerAdministration::reload(const char* why) {
  nlohmann::json reply;
  reply["users"] = "not configured";
  reply["token_deny_list"] = "not configured";
  if (users_ != nullptr) {
    auto reloaded = users_->reload();
    reply["users"] = reloaded ? std::string("reloaded") : reloaded.error();
    if (!reloaded)
      spdlog::warn("{}: {} (the users in force stay)", why,
                   transport::escape_for_log(reloaded.error()));
  }
  if (deny_list_ != nullptr) {
    auto refreshed = deny_list_->refresh(/*force=*/true);
    reply["token_deny_list"] = refreshed ? std::string("reloaded") : refreshed.error();
    if (!refreshed)
      spdlog::warn("{}: {} (the list in force stays)", why,
                   transport::escape_for_log(refreshed.error()));
  }
  const std::size_t revoked = revoke_disabled_users() + revoke_denied_tokens();
  spdlog::info("{}: reloaded; revoked {}", why, sessions_text(revoked));
  reply["revoked"] = revoked;
  return reply;
}

nlohmann::json ServerAdministration::handle(const transport::ControlRequest& request) {
  nlohmann::json reply;
  session::ServerEndpoint& endpoint = runtime_.endpoint();
  switch (request.kind) {
    case transport::ControlRequest::Kind::kReload:
      return reload("tether admin reload");
    case transport::ControlRequest::Kind::kRevokeUser: {
      const std::size_t count = endpoint.revoke_principal(
          request.argument, session::Clock::now(), "revoked by the operator (tether admin revoke)");
      runtime_.wake();
      spdlog::info("tether admin revoke: revoked {} of user {}", sessions_text(count),
                   transport::escape_for_log(request.argument));
      reply["revoked"] = count;
      reply["user"] = request.argument;
      return reply;
    }
    case transport::ControlRequest::Kind::kRevokeSession: {
      std::vector<session::SessionId> matches;
      for (const auto& id : endpoint.session_ids()) {
        const session::Session* session = std::as_const(endpoint).find(id);
        if (session != nullptr && session->phase() != session::Phase::kClosed &&
            hex(id).starts_with(request.argument))
          matches.push_back(id);
      }
      if (matches.size() != 1) {
        reply["error"] = matches.empty()
                             ? "no open session " + request.argument
                             : fmt::format("{} sessions start with {}: give more digits",
                                           matches.size(), request.argument);
        return reply;
      }
      endpoint.revoke_session(matches.front(), session::Clock::now(),
                              "revoked by the operator (tether admin revoke)");
      runtime_.wake();
      spdlog::info("tether admin revoke: revoked session {}", hex(matches.front()));
      reply["revoked"] = 1;
      reply["session"] = hex(matches.front());
      return reply;
    }
    case transport::ControlRequest::Kind::kStatus:
      break;
  }
  reply["error"] = "not an administrative request";
  return reply;
}

}  // namespace tether::app
