// `tether admin`: an operator's requests to a running server over its control socket (revoke a
// user's sessions or one session, reload), and ServerAdministration, the server's side of them:
// it answers those requests, re-reads the users file and the token deny list on reload and SIGHUP,
// watches the deny list, and ends at once (reason revoked) the sessions they no longer allow.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "auth/token_deny_list.hpp"
#include "auth/user_store.hpp"
#include "transport/runtime.hpp"
#include "transport/status.hpp"

namespace tether::app {

struct AdminOptions {
  std::string socket;          // --socket; empty: the one server socket in the default directory
  std::string revoke_user;     // revoke --user
  std::string revoke_session;  // revoke --session
};

// Registers `admin` with its `revoke` and `reload` subcommands; returns `admin` (check
// ->parsed()).
CLI::App* add_admin_command(CLI::App& app, AdminOptions& options);

// Runs the parsed subcommand: sends its request, prints what happened (how many sessions ended).
// Returns the exit code: 0 done, 1 refused or failed (no server, an error answer), 2 usage.
int run_admin(CLI::App& admin, const AdminOptions& options);

class ServerAdministration {
 public:
  // `users` and `deny_list` may be null (not configured). Call from the io thread only.
  ServerAdministration(asio::io_context& io, transport::ServerRuntime& runtime,
                       std::shared_ptr<auth::UserDirectory> users,
                       std::shared_ptr<auth::TokenDenyList> deny_list);

  // Starts watching the deny list: about once a second its file's stamp is checked, and when it
  // changed the file is read again and the open sessions of newly denied tokens are revoked.
  void start_watching();
  // The control socket's administrative requests (transport::ControlSocket::Administer).
  [[nodiscard]] nlohmann::json handle(const transport::ControlRequest& request);
  // Re-reads the users file and the deny list, then revokes every session that authenticated
  // with a password mechanism (SCRAM-SHA-256[-PLUS], PLAIN) whose user is now disabled or gone,
  // and every session of a denied token. `why` names the trigger in the log ("SIGHUP").
  nlohmann::json reload(const char* why);

 private:
  std::size_t revoke_denied_tokens();
  std::size_t revoke_disabled_users();
  void watch();

  transport::ServerRuntime& runtime_;
  std::shared_ptr<auth::UserDirectory> users_;
  std::shared_ptr<auth::TokenDenyList> deny_list_;
  asio::steady_timer timer_;
};

}  // namespace tether::app
