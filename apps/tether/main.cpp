// tether: the command-line tool. `tether keygen` makes a server identity, `tether server` accepts
// sessions and connects their streams to allowed targets, `tether client` forwards ports (-L, -R,
// -D) and `tether stdio` one connection through a session that survives network changes.
#include <openssl/rand.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>

#include "admin_command.hpp"
#include "auth/credential_sources.hpp"
#include "auth/credentials.hpp"
#include "auth/mechanism.hpp"
#include "config_file.hpp"
#include "crypto/primitives.hpp"
#include "known_servers_command.hpp"
#include "passwd_command.hpp"
#include "transport/event_log.hpp"
#include "transport/file_safety.hpp"
#include "transport/known_servers.hpp"
#include "transport/log_safety.hpp"
#include "transport/metrics.hpp"
#include "transport/runtime.hpp"
#include "transport/status.hpp"
#include "transport/tls.hpp"
#include "tunnel/tunnel.hpp"

namespace {

using namespace tether;
namespace fs = std::filesystem;

// The defaults are the library's (session/heartbeat_policy.hpp holds the heartbeat rule).
struct LivenessOptions {
  unsigned heartbeat_interval_ms =
      static_cast<unsigned>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                session::heartbeat_policy::kDefault.interval)
                                .count());
  unsigned missing_heartbeats =
      static_cast<unsigned>(session::heartbeat_policy::kDefault.missing_allowed);
  unsigned linger_s = 600;
};

void add_liveness_options(CLI::App& command, LivenessOptions& options) {
  command
      .add_option(
          "--heartbeat-interval", options.heartbeat_interval_ms,
          "Milliseconds between heartbeats (DOTS heartbeat-interval; the server may clamp it)")
      ->capture_default_str();
  command
      .add_option(
          "--missing-heartbeats", options.missing_heartbeats,
          "Heartbeats that may go missing before the path is suspect (DOTS missing-hb-allowed)")
      ->capture_default_str();
}

session::SessionConfig session_config(const LivenessOptions& options) {
  session::SessionConfig config;
  config.heartbeat_interval = std::chrono::milliseconds(options.heartbeat_interval_ms);
  config.missing_heartbeats_allowed = options.missing_heartbeats;
  config.linger = std::chrono::seconds(options.linger_s);
  return config;
}

// The server's stateless-reset key must survive restarts: kept in a file, created on first use.
// The file is a secret of tether's own making: a symbolic link there is refused, never followed,
// and so is a file that another user could write or that group or others may read.
Expected<session::Secret, std::string> load_or_create_static_key(const fs::path& path) {
  session::Secret key{};
  const transport::TrustedFileOptions options{
      .max_bytes = 64, .secret = true, .follow_symlinks = false};
  auto existing = transport::read_trusted_file(path, options);
  if (!existing) return make_unexpected("reset key: " + existing.error());
  if (existing->has_value()) {
    const std::string& bytes = **existing;
    if (bytes.size() != key.size()) {
      return make_unexpected("reset key file " + path.string() + " is not 32 bytes");
    }
    std::memcpy(key.data(), bytes.data(), key.size());
    return key;
  }
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1) {
    return make_unexpected(std::string("no randomness for the reset key"));
  }
  auto created = transport::create_secret_file(
      path, std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
  if (!created) return make_unexpected("reset key: " + created.error());
  return key;
}

void install_signal_stop(asio::io_context& io, std::function<void()> on_stop,
                         bool hangup_stops = true) {
  // SIGHUP too: ssh sends it to its ProxyCommand (`tether stdio`) when it exits. Not for the
  // server, where SIGHUP means reload.
  auto signals = std::make_shared<asio::signal_set>(io, SIGINT, SIGTERM);
  if (hangup_stops) signals->add(SIGHUP);
  signals->async_wait([signals, on_stop = std::move(on_stop)](std::error_code error, int) {
    if (!error) on_stop();
  });
}

// The control socket `tether status` reads: --control-socket, or ROLE-PID.sock in the default
// directory. Failing to create it is logged, not fatal: the tunnel matters more than its status.
std::unique_ptr<transport::ControlSocket> open_control_socket(
    asio::io_context& io, const std::string& role, std::string path,
    transport::ControlSocket::Report report, transport::ControlSocket::Administer administer = {}) {
  if (path == "none") return nullptr;
  if (path.empty())
    path = (transport::default_control_directory() /
            (role + "-" + std::to_string(::getpid()) + ".sock"))
               .string();
  auto control = std::make_unique<transport::ControlSocket>(io, path, std::move(report),
                                                            std::move(administer));
  if (auto started = control->start(); !started) {
    spdlog::warn("{} (tether status will not see this process)", started.error());
    return nullptr;
  }
  spdlog::debug("control socket {}", path);
  return control;
}

// --metrics-listen: the Prometheus exporter (none when `listen` is empty). Unlike the control
// socket, failing to start it is fatal: an operator who asked for metrics expects them.
Expected<std::unique_ptr<transport::MetricsExporter>, std::string> start_metrics(
    asio::io_context& io, const std::string& listen, std::string role,
    transport::MetricsExporter::Snapshot snapshot) {
  if (listen.empty()) return std::unique_ptr<transport::MetricsExporter>{};
  auto exporter =
      transport::MetricsExporter::start(io, listen, std::move(role), std::move(snapshot));
  if (!exporter) return make_unexpected(exporter.error());
  const auto& endpoint = (*exporter)->endpoint();
  spdlog::info("metrics on http://{}{}{}:{}/metrics (unauthenticated)",
               endpoint.address().is_v6() ? "[" : "", endpoint.address().to_string(),
               endpoint.address().is_v6() ? "]" : "", endpoint.port());
  return exporter;
}

void add_metrics_option(CLI::App& command, std::string& listen) {
  command
      .add_option("--metrics-listen", listen,
                  "Serve Prometheus metrics at http://ADDR:PORT/metrics (ADDR an IPv4 address; "
                  "unauthenticated: prefer 127.0.0.1)")
      ->check(CLI::Validator(
          [](std::string& text) {
            auto parsed = transport::parse_metrics_listen(text);
            return parsed ? std::string() : parsed.error();
          },
          "ADDR:PORT"));
}

int run_status(const std::string& socket_path, bool json) {
  std::vector<fs::path> sockets;
  const fs::path directory = transport::default_control_directory();
  if (!socket_path.empty()) {
    sockets.emplace_back(socket_path);
  } else if (std::error_code error; fs::exists(fs::symlink_status(directory, error))) {
    // Only a directory of our own: another user could have made it and put sockets there.
    if (auto own = transport::ensure_private_directory(directory, /*create=*/false); !own) {
      std::fprintf(stderr, "tether status: %s\n", transport::escape_for_log(own.error()).c_str());
      return 1;
    }
    for (const auto& entry : fs::directory_iterator(directory, error)) {
      if (entry.path().extension() == ".sock") sockets.push_back(entry.path());
    }
    std::sort(sockets.begin(), sockets.end());
  }
  if (sockets.empty()) {
    if (json) std::printf("[]\n");  // always a JSON document; the exit code says none was found
    std::fprintf(stderr, "tether status: no running tether found in %s\n",
                 transport::escape_for_log(directory.string()).c_str());
    return 1;
  }
  int failures = 0;
  nlohmann::json all = nlohmann::json::array();
  for (const auto& path : sockets) {
    auto status = transport::query_control_socket(path);
    if (!status && socket_path.empty() && !transport::control_socket_alive(path)) {
      continue;  // left behind by a process that was killed
    }
    if (!status) {
      std::fprintf(stderr, "tether status: %s\n", status.error().c_str());
      ++failures;
      continue;
    }
    (*status)["control_socket"] = path.string();
    if (json) {
      all.push_back(std::move(*status));
    } else {
      std::printf("%s", transport::format_status(*status).c_str());
    }
  }
  // ASCII only (\uXXXX escapes): valid JSON, and nothing a terminal would interpret; a file name
  // that is not UTF-8 gets U+FFFD instead of an exception.
  if (json) {
    std::printf(
        "%s\n",
        all.dump(2, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace).c_str());
  }
  return failures == 0 ? 0 : 1;
}

int run_keygen(const std::string& directory, bool force) {
  auto fingerprint = transport::generate_identity(directory, force);
  if (!fingerprint) {
    std::fprintf(stderr, "tether keygen: %s\n", fingerprint.error().c_str());
    return 1;
  }
  std::printf("wrote %s/certificate.pem and %s/key.pem\nfingerprint %s\n", directory.c_str(),
              directory.c_str(), fingerprint->c_str());
  return 0;
}

// What `tether server` lets streams reach: --allow, --allow-listen, --connect-timeout.
struct TargetArguments {
  std::vector<std::string> allow;
  std::vector<std::string> allow_listen;
  std::vector<std::string> grants;
  std::vector<std::string> listen_grants;
  std::vector<std::string> groups;
  double connect_timeout_s = 10;
};

// The tunnel options the arguments describe; the error names the bad option and what is wrong.
Expected<tunnel::ServerTunnelOptions, std::string> server_tunnel_options(
    const TargetArguments& arguments) {
  tunnel::ServerTunnelOptions options;
  for (const auto& pattern : arguments.allow) {
    if (auto added = options.allow.add(pattern); !added)
      return make_unexpected("--allow: " + added.error());
  }
  for (const auto& pattern : arguments.allow_listen) {
    if (auto added = options.allow_listen.add(pattern); !added)
      return make_unexpected("--allow-listen: " + added.error());
  }
  for (const auto& group : arguments.groups) {
    if (auto added = options.grants.add_group(group); !added) return make_unexpected(added.error());
  }
  for (const auto& grant : arguments.grants) {
    if (auto added = options.grants.add_connect(grant); !added)
      return make_unexpected(added.error());
  }
  for (const auto& grant : arguments.listen_grants) {
    if (auto added = options.grants.add_listen(grant); !added)
      return make_unexpected(added.error());
  }
  // At least 0.1 s; at most a day (beyond that the kernel's own SYN retries end it anyway).
  if (!(arguments.connect_timeout_s >= 0.1 && arguments.connect_timeout_s <= 86400)) {
    return make_unexpected(fmt::format("--connect-timeout: seconds from 0.1 to 86400, not {}",
                                       arguments.connect_timeout_s));
  }
  options.connect_timeout =
      std::chrono::milliseconds(static_cast<long long>(arguments.connect_timeout_s * 1000));
  return options;
}

// What strangers and peers may make `tether server` hold (ARCHITECTURE.md, "Bounds").
struct ServerLimitArguments {
  session::ServerLimits sessions;
  transport::AdmissionLimits admission;
  std::uint64_t max_buffered_mib = session::ServerLimits{}.max_buffered_bytes >> 20;
};

void add_server_limit_options(CLI::App& command, ServerLimitArguments& limits) {
  command
      .add_option("--max-sessions", limits.sessions.max_sessions,
                  "Sessions at once; past it the oldest suspended session is freed, else a new "
                  "session is refused (lack-of-resources, transient)")
      ->capture_default_str();
  command
      .add_option("--max-sessions-per-source", limits.sessions.max_sessions_per_source,
                  "Sessions from one IPv4 address or IPv6 /64")
      ->capture_default_str();
  command
      .add_option("--max-suspended-sessions", limits.sessions.max_suspended_sessions,
                  "Suspended (disconnected) sessions kept; past it the oldest is freed")
      ->capture_default_str();
  command
      .add_option("--max-pending-connections", limits.admission.total,
                  "Connections that have not yet sent their first frame (TLS included)")
      ->capture_default_str();
  command
      .add_option("--max-pending-per-source", limits.admission.per_source,
                  "Such connections from one IPv4 address or IPv6 /64")
      ->capture_default_str();
  command
      .add_option("--max-buffered-mib", limits.max_buffered_mib,
                  "MiB of stream data all sessions together may hold (replay and unread bytes)")
      ->capture_default_str();
}

// Raises the soft descriptor limit to the hard one: the session and connection limits, not the
// descriptor limit, should be what bounds a server. Logs the figure.
void raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  spdlog::info("server file-descriptor limit {}", static_cast<std::uint64_t>(limit.rlim_cur));
}

// How `tether server` authenticates clients: --auth, --users, --jwks and the token policy.
struct ServerAuthArguments {
  std::string auth;  // "none", or a comma-separated list of mechanisms; empty: all configured
  std::string users_file;
  std::string jwks_file;
  std::string issuer;
  std::string audience;
  std::string required_scope;
  std::string client_ca;        // mTLS: verify client certificates against this CA file
  std::string client_identity;  // which certificate field names the client; empty: cn
  // Lifetime (Kafka's connections.max.reauth.ms): milliseconds; 0 unset, negative audit only.
  std::int64_t max_reauth_ms = 0;
  std::string expiry_enforcement = "immediate";
  std::string token_deny_list;  // OAUTHBEARER: token ids (jti) refused, watched for changes
};

// What the server keeps of its authentication to act on reloads (null when not configured).
struct ServerCredentialSources {
  std::shared_ptr<auth::UserDirectory> users;
  std::shared_ptr<auth::TokenDenyList> deny_list;
};

// "90s", "15m", "1h", "500ms", "-1h" (a bare number is milliseconds), as milliseconds.
CLI::Validator duration_in_milliseconds() {
  return CLI::AsNumberWithUnit(
      std::map<std::string, std::int64_t>{
          {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 24 * 3600 * 1000}},
      // Case-sensitive ("m" is minutes, never "M"); the unit optional.
      CLI::AsNumberWithUnit::CASE_SENSITIVE, "DURATION");
}

// The lifetime policy of a server's sessions from its arguments.
void apply_lifetime_options(const ServerAuthArguments& arguments, session::SessionConfig& config) {
  if (arguments.max_reauth_ms != 0) {
    const auto magnitude =
        arguments.max_reauth_ms < 0 ? -arguments.max_reauth_ms : arguments.max_reauth_ms;
    config.max_reauthentication = std::chrono::milliseconds(magnitude);
    config.lifetime_audit_only = arguments.max_reauth_ms < 0;
  }
  config.expiry_enforcement = arguments.expiry_enforcement == "on-use"
                                  ? session::ExpiryEnforcement::kOnUse
                                  : session::ExpiryEnforcement::kImmediate;
}

void add_server_auth_options(CLI::App& command, ServerAuthArguments& arguments) {
  command.add_option("--auth", arguments.auth,
                     "Mechanisms offered, in order, comma-separated (SCRAM-SHA-256-PLUS, "
                     "SCRAM-SHA-256, PLAIN, OAUTHBEARER, EXTERNAL); default: every mechanism whose "
                     "configuration is given, SCRAM-SHA-256-PLUS first; 'none' for no "
                     "authentication (development only)");
  command.add_option("--users", arguments.users_file,
                     "Users file of SCRAM verifiers, made with `tether passwd` (must not be group- "
                     "or world-readable)");
  command.add_option("--jwks", arguments.jwks_file,
                     "JSON Web Key Set file for OAUTHBEARER tokens (reloaded when it changes)");
  command.add_option("--issuer", arguments.issuer, "Required token issuer (iss)");
  command.add_option("--audience", arguments.audience,
                     "This server's token audience (aud); required with --jwks");
  command.add_option("--required-scope", arguments.required_scope,
                     "A scope every token must grant");
  command.add_option("--client-ca", arguments.client_ca,
                     "Ask clients for a certificate and verify it against this CA file; a "
                     "verified certificate authenticates its client with EXTERNAL");
  command
      .add_option("--client-identity", arguments.client_identity,
                  "Which field of a client certificate is the principal: cn (the subject's "
                  "common name, the default), san-dns or san-email (the first such "
                  "subjectAltName)")
      ->check(CLI::IsMember({"cn", "san-dns", "san-email"}));
  command
      .add_option("--max-reauth", arguments.max_reauth_ms,
                  "Longest a session may go between (re-)authentications, e.g. 1h (Kafka's "
                  "connections.max.reauth.ms); its credential's expiry also bounds it. Negative "
                  "(--max-reauth=-1h): audit only: sessions past it live on, and are logged and "
                  "counted; 0: unset. At least 2s either way (a session must be able to renew)")
      ->transform(duration_in_milliseconds())
      ->check(
          [](const std::string& milliseconds) -> std::string {
            const long long value = std::stoll(milliseconds);
            if (value != 0 && (value > -2000 && value < 2000)) {
              return "--max-reauth must be at least 2s (or negative, at least -2s, for audit; 0 "
                     "for unset)";
            }
            return {};
          },
          "DURATION >= 2s");
  command
      .add_option("--expiry-enforcement", arguments.expiry_enforcement,
                  "immediate: a session past its lifetime ends at once, idle or not; on-use: at "
                  "its next use (Kafka's rule)")
      ->check(CLI::IsMember({"immediate", "on-use"}))
      ->capture_default_str();
  command.add_option("--token-deny-list", arguments.token_deny_list,
                     "File of revoked token ids (jti), one a line, # comments; a token it names is "
                     "refused, and the sessions of tokens added to it end at once (re-read when it "
                     "changes; must not be writable by other users)");
}

// The server's authenticator from its arguments; nullptr for --auth none.
Expected<std::shared_ptr<session::ServerAuthenticator>, std::string> server_authenticator(
    const ServerAuthArguments& arguments, const session::Secret& static_key,
    ServerCredentialSources& sources) {
  if (arguments.auth == "none") {
    if (!arguments.users_file.empty() || !arguments.jwks_file.empty() ||
        !arguments.client_ca.empty() || !arguments.token_deny_list.empty()) {
      return make_unexpected(std::string(
          "--auth none contradicts --users / --jwks / --client-ca / --token-deny-list"));
    }
    return std::shared_ptr<session::ServerAuthenticator>{};
  }
  auth::ServerAuthenticationConfig config;
  if (!arguments.auth.empty()) {
    std::stringstream list(arguments.auth);
    for (std::string item; std::getline(list, item, ',');) {
      const auto mechanism = auth::mechanism_named(item);
      if (!mechanism) return make_unexpected("--auth: unknown mechanism '" + item + "'");
      config.mechanisms.push_back(*mechanism);
    }
  }
  config.users_file = arguments.users_file;
  if (!arguments.users_file.empty()) {
    auto users = auth::UserDirectory::open(arguments.users_file);
    if (!users) return make_unexpected(users.error());
    sources.users = *users;
    config.user_directory = *users;
  }
  if (!arguments.token_deny_list.empty()) {
    if (arguments.jwks_file.empty())
      return make_unexpected(std::string("--token-deny-list needs --jwks (it names tokens)"));
    auto deny_list = auth::TokenDenyList::open(arguments.token_deny_list);
    if (!deny_list) return make_unexpected(deny_list.error());
    sources.deny_list = *deny_list;
    config.token_deny_list = *deny_list;
  }
  config.jwks_file = arguments.jwks_file;
  config.issuer = arguments.issuer;
  config.audience = arguments.audience;
  config.required_scope = arguments.required_scope;
  config.client_certificates = !arguments.client_ca.empty();
  // Fake verifiers for unknown users must not change at a restart (a prober could notice): key
  // them from the persistent stateless-reset key.
  const auto derived = crypto::hkdf_sha256({}, static_key, "tether v1 fake scram verifier secret");
  config.fake_verifier_secret.assign(derived.begin(), derived.end());
  return auth::make_server_authenticator(config);
}

int run_server(const std::string& listen, const std::string& certificate, const std::string& key,
               const TargetArguments& targets, const ServerAuthArguments& auth, bool plain,
               std::string reset_key_file, const LivenessOptions& liveness,
               const std::string& control_socket, const ServerLimitArguments& limits,
               const std::string& metrics_listen) {
  auto listen_address = tunnel::split_host_port(listen);
  if (!listen_address) {
    spdlog::error("--listen: {}", listen_address.error());
    return tunnel::kExitUsage;
  }
  auto tunnel_options = server_tunnel_options(targets);
  if (!tunnel_options) {
    spdlog::error("{}", tunnel_options.error());
    return tunnel::kExitUsage;
  }
  if (tunnel_options->allow.empty())
    spdlog::warn("no --allow entries: every stream will be refused");
  transport::ServerOptions options;
  std::error_code address_error;
  options.listen = asio::ip::tcp::endpoint(
      asio::ip::make_address(listen_address->first, address_error), listen_address->second);
  if (address_error) {
    spdlog::error("--listen: '{}' is not an IP address", listen_address->first);
    return tunnel::kExitUsage;
  }
  if (!auth.client_identity.empty() && auth.client_ca.empty()) {
    spdlog::error("--client-identity needs --client-ca FILE");
    return tunnel::kExitUsage;
  }
  if (plain && !auth.client_ca.empty()) {
    spdlog::error("--client-ca needs TLS: it contradicts --plain-insecure");
    return tunnel::kExitUsage;
  }
  if (!plain) {
    std::optional<transport::ClientCertificateTrust> clients;
    if (!auth.client_ca.empty()) {
      clients = transport::ClientCertificateTrust{
          auth.client_ca, transport::parse_client_identity_source(auth.client_identity)
                              .value_or(transport::ClientIdentitySource::kCommonName)};
    }
    auto context = transport::make_server_context(certificate, key, clients);
    if (!context) {
      spdlog::error("{}", context.error());
      return tunnel::kExitUsage;
    }
    options.tls = *context;
  } else {
    spdlog::warn(
        "--plain-insecure: no TLS; anyone on the path can read and take over sessions (tests "
        "only)");
  }
  if (reset_key_file.empty()) reset_key_file = (fs::path(key).parent_path() / "reset.key").string();
  if (plain && reset_key_file == "reset.key") reset_key_file = "tether-reset.key";
  auto static_key = load_or_create_static_key(reset_key_file);
  if (!static_key) {
    spdlog::error("{}", static_key.error());
    return tunnel::kExitUsage;
  }
  options.static_key = *static_key;
  ServerCredentialSources credential_sources;
  auto authenticator = server_authenticator(auth, *static_key, credential_sources);
  if (!authenticator) {
    spdlog::error("{}", authenticator.error());
    return tunnel::kExitUsage;
  }
  if (*authenticator == nullptr) {
    spdlog::warn(
        "--auth none: clients are not authenticated; anyone who reaches this port gets a "
        "session (development only)");
  }
  options.session = session_config(liveness);
  apply_lifetime_options(auth, options.session);
  if (options.session.lifetime_audit_only && *authenticator != nullptr) {
    spdlog::warn(
        "--max-reauth is negative: audit only; sessions past their lifetime are logged "
        "and counted, not ended");
  }
  options.limits = limits.sessions;
  options.limits.max_buffered_bytes = limits.max_buffered_mib << 20;
  options.admission = limits.admission;
  raise_descriptor_limit();

  asio::io_context io;
  tunnel::ServerTunnel tunnel(io, std::move(*tunnel_options));
  transport::ServerRuntime runtime(io, options, tunnel);
  runtime.endpoint().set_authenticator(*authenticator);
  tunnel.attach(runtime);
  if (auto started = runtime.start(); !started) {
    spdlog::error("{}", started.error());
    return 1;
  }
  tether::app::ServerAdministration administration(io, runtime, credential_sources.users,
                                                   credential_sources.deny_list);
  administration.start_watching();
  auto control = open_control_socket(
      io, "server", control_socket,
      [&runtime] { return transport::server_status(runtime, session::Clock::now()); },
      [&administration](const transport::ControlRequest& request) {
        return administration.handle(request);
      });
  // SIGHUP: re-read the users file and the deny list, and end what they no longer allow.
  auto hangup = std::make_shared<asio::signal_set>(io, SIGHUP);
  auto on_hangup = std::make_shared<std::function<void(std::error_code, int)>>();
  *on_hangup = [&administration, hangup, weak = std::weak_ptr(on_hangup)](std::error_code error,
                                                                          int) {
    if (error) return;
    (void)administration.reload("SIGHUP");
    if (auto again = weak.lock()) hangup->async_wait(*again);
  };
  hangup->async_wait(*on_hangup);
  auto metrics = start_metrics(io, metrics_listen, "server",
                               [&runtime]() { return transport::server_metrics(runtime); });
  if (!metrics) {
    spdlog::error("{}", metrics.error());
    return 1;
  }
  spdlog::info("server listening on {}:{} ({})", runtime.local_endpoint().address().to_string(),
               runtime.local_endpoint().port(), plain ? "plain TCP, insecure" : "TLS 1.3");
  install_signal_stop(
      io,
      [&] {
        spdlog::info("server stopping: ending every session with reason shutdown");
        hangup->cancel();
        runtime.shut_down(std::chrono::milliseconds(500), [&] {
          runtime.stop();
          io.stop();
        });
      },
      /*hangup_stops=*/false);
  io.run();
  return 0;
}

void add_control_socket_option(CLI::App& command, std::string& path) {
  command.add_option(
      "--control-socket", path,
      "Unix socket for `tether status` and `tether admin` (default: ROLE-PID.sock in "
      "$XDG_RUNTIME_DIR/tether or /tmp/tether-UID; 'none' for no socket). Its "
      "directory is never chmodded and must not be writable by other users "
      "(unless sticky, like /tmp)");
}

// What `tether client` and `tether stdio` share: how to reach and trust the server.
struct ClientArguments {
  std::string server;
  std::string ca;
  std::string fingerprint;
  bool plain = false;
  std::string known_servers;
  LivenessOptions liveness;
  bool exit_on_session_loss = false;
  std::string control_socket;
  std::string metrics_listen;
  std::string bind_address;
  std::string bind_interface;
  bool ignore_network_changes = false;
  // Credentials (see auth/credentials.hpp).
  std::string user;
  std::string password_file;
  std::string token_file;
  std::string token_command;
  std::string auth_mechanism;
  std::string certificate;  // mTLS: --cert and --key
  std::string key;
  bool no_reauth = false;
  auth::RefreshPolicy refresh;  // --token-command's refresh schedule (Kafka's sasl.login.refresh.*)
  std::int64_t refresh_min_period_s = auth::RefreshPolicy{}.min_period.count();
  std::int64_t refresh_buffer_s = auth::RefreshPolicy{}.buffer.count();
  bool stdio = false;  // `tether stdio`: standard input is the stream, never a prompt
};

void add_client_options(CLI::App& command, ClientArguments& arguments) {
  command.add_option("--server", arguments.server, "Server HOST:PORT")->required();
  command.add_option("--user", arguments.user,
                     "Authenticate as this user (SCRAM-SHA-256-PLUS over TLS); the password "
                     "comes from --password-file, TETHER_PASSWORD or a prompt");
  command
      .add_option("--refresh-window-factor", arguments.refresh.window_factor,
                  "--token-command: refresh a token this far into its life (0.5-1.0; Kafka's "
                  "sasl.login.refresh.window.factor)")
      ->capture_default_str();
  command
      .add_option("--refresh-window-jitter", arguments.refresh.window_jitter,
                  "--token-command: plus up to this much of its life at random (0-0.25)")
      ->capture_default_str();
  command
      .add_option("--refresh-min-period", arguments.refresh_min_period_s,
                  "--token-command: seconds at least between refreshes (0-900)")
      ->capture_default_str();
  command
      .add_option("--refresh-buffer", arguments.refresh_buffer_s,
                  "--token-command: refresh at least this many seconds before expiry (0-3600)")
      ->capture_default_str();
  command.add_flag("--no-reauth", arguments.no_reauth,
                   "Do not re-authenticate in place: the session then ends when the lifetime the "
                   "server gives it runs out");
  command.add_option("--password-file", arguments.password_file,
                     "File whose first line is the password (must not be group- or "
                     "world-readable)");
  command.add_option("--token-file", arguments.token_file,
                     "Authenticate with the bearer token (JWT) in this file, read again for every "
                     "new session (OAUTHBEARER)");
  command.add_option("--token-command", arguments.token_command,
                     "Authenticate with the token this command prints (run for every new "
                     "session)");
  command.add_option("--auth-mechanism", arguments.auth_mechanism,
                     "Use only this mechanism (SCRAM-SHA-256-PLUS, SCRAM-SHA-256, PLAIN, "
                     "OAUTHBEARER, EXTERNAL)");
  command.add_option("--cert", arguments.certificate,
                     "Client certificate (PEM) to present to a server that verifies them "
                     "(--client-ca); authenticates with EXTERNAL unless another credential is "
                     "given");
  command.add_option("--key", arguments.key,
                     "Private key of --cert (PEM; must not be group- or world-readable)");
  command.add_option("--ca", arguments.ca,
                     "Trust the server if its certificate chains to this CA file");
  command.add_option("--fingerprint", arguments.fingerprint,
                     "Trust the server if its certificate has this sha256:HEX fingerprint "
                     "(remembered in the known-servers file)");
  command.add_flag("--plain-insecure", arguments.plain, "No TLS (tests only)");
  command.add_option("--known-servers", arguments.known_servers,
                     "Known-servers file (default ~/.config/tether/known_servers)");
  add_liveness_options(command, arguments.liveness);
  add_control_socket_option(command, arguments.control_socket);
  add_metrics_option(command, arguments.metrics_listen);
  command.add_option("--bind", arguments.bind_address,
                     "Local address to connect to the server from");
  command.add_option("--bind-interface", arguments.bind_interface,
                     "Network interface to connect to the server through (SO_BINDTODEVICE)");
  command.add_flag("--ignore-network-changes", arguments.ignore_network_changes,
                   "Do not watch the host's addresses and routes (rtnetlink); rely on heartbeats "
                   "alone to notice a broken path");
}

// Builds the client's transport options: where the server is and how it is trusted.
// The password for --user: --password-file, else TETHER_PASSWORD, else a no-echo prompt when
// standard input is a terminal (never for `tether stdio`, whose standard input is the stream).
Expected<std::string, std::string> client_password(const ClientArguments& arguments, bool stdio) {
  if (!arguments.password_file.empty()) {
    transport::TrustedFileOptions trusted;
    trusted.secret = true;
    auto contents = transport::read_trusted_file(arguments.password_file, trusted);
    if (!contents) return make_unexpected(contents.error());
    if (!*contents)
      return make_unexpected("--password-file: " + arguments.password_file + " does not exist");
    std::string password = contents->value().substr(0, contents->value().find('\n'));
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) return make_unexpected("--password-file: the first line is empty");
    return password;
  }
  if (const char* from_environment = std::getenv("TETHER_PASSWORD");
      from_environment != nullptr && *from_environment != '\0') {
    return std::string(from_environment);
  }
  if (!stdio && ::isatty(STDIN_FILENO) != 0) {
    auto typed = tether::app::prompt_without_echo("password for " + arguments.user + ": ");
    if (typed && !typed->empty()) return *typed;
  }
  return make_unexpected(std::string(
      "--user needs a password: --password-file FILE, TETHER_PASSWORD, or a terminal to ask on"));
}

Expected<std::shared_ptr<session::ClientAuthenticator>, std::string> client_authenticator(
    const ClientArguments& arguments) {
  auth::ClientCredentialConfig config;
  if (!arguments.auth_mechanism.empty()) {
    config.mechanism = auth::mechanism_named(arguments.auth_mechanism);
    if (!config.mechanism) {
      return make_unexpected("--auth-mechanism: unknown mechanism '" + arguments.auth_mechanism +
                             "'");
    }
  }
  config.user = arguments.user;
  if (!arguments.user.empty()) {
    auto password = client_password(arguments, arguments.stdio);
    if (!password) return make_unexpected(password.error());
    config.password = std::move(*password);
  }
  config.token_file = arguments.token_file;
  config.token_command = arguments.token_command;
  config.refresh = arguments.refresh;
  config.refresh.min_period = std::chrono::seconds(arguments.refresh_min_period_s);
  config.refresh.buffer = std::chrono::seconds(arguments.refresh_buffer_s);
  config.certificate = !arguments.certificate.empty();
  config.certificate_file = arguments.certificate;
  auto authenticator = auth::make_client_authenticator(config);
  if (!authenticator) return authenticator;
  // Say when the credential expires, and warn once its refresh window has come (KIP-368's
  // schedule): a certificate or a token file is renewed outside tether.
  auto credential = auth::client_credential(config, authenticator->get());
  if (!credential) return make_unexpected(credential.error());
  if (*credential != nullptr && config.token_command.empty()) {
    if (auto* file = dynamic_cast<auth::TokenFileCredential*>(credential->get())) {
      (void)file->token();  // its claims; an unreadable file is reported at the exchange
    }
    bool renewal_due = false;
    const std::string line = auth::describe_expiry(**credential, auth::WallClock::now(),
                                                   config.refresh, 0.5, renewal_due);
    if (!line.empty()) {
      if (renewal_due) {
        spdlog::warn("{}", line);
      } else {
        spdlog::info("{}", line);
      }
    }
  }
  return authenticator;
}

// `pending_pin` receives a --fingerprint that is not yet the saved pin (PinningObserver saves it).
Expected<transport::ClientOptions, std::string> client_options(
    ClientArguments arguments, std::optional<app::PendingPin>* pending_pin) {
  if (!arguments.ca.empty() && !arguments.fingerprint.empty())
    return make_unexpected(std::string("pass either --ca or --fingerprint, not both"));
  auto server_address = tunnel::split_host_port(arguments.server);
  if (!server_address) return make_unexpected("--server: " + server_address.error());
  transport::ClientOptions options;
  options.host = server_address->first;
  options.port = std::to_string(server_address->second);
  options.session = session_config(arguments.liveness);
  options.bind_address = arguments.bind_address;
  options.bind_interface = arguments.bind_interface;
  options.watch_network = !arguments.ignore_network_changes;
  if (!arguments.bind_address.empty()) {
    std::error_code error;
    (void)asio::ip::make_address(arguments.bind_address, error);
    if (error)
      return make_unexpected("--bind: '" + arguments.bind_address + "' is not an IP address");
  }
  if (arguments.certificate.empty() != arguments.key.empty())
    return make_unexpected(std::string("--cert and --key go together"));
  if (arguments.plain && !arguments.certificate.empty())
    return make_unexpected(std::string("--cert needs TLS: it contradicts --plain-insecure"));
  auto authenticator = client_authenticator(arguments);
  if (!authenticator) return make_unexpected(authenticator.error());
  options.session.authenticator = *authenticator;
  options.session.reauthenticate = !arguments.no_reauth;
  if (arguments.plain) return options;
  if (arguments.known_servers.empty())
    arguments.known_servers = transport::default_known_servers_path().string();
  auto known = transport::KnownServers::load(arguments.known_servers);
  if (!known) return make_unexpected(known.error());
  std::string fingerprint = arguments.fingerprint;
  if (!fingerprint.empty()) {
    auto parsed = transport::parse_fingerprint(fingerprint);
    if (!parsed) return make_unexpected("--fingerprint: " + parsed.error());
    fingerprint = *parsed;
    // Saved only after a handshake verified it (PinningObserver): a typo never replaces a pin.
    auto remembered = known->lookup(arguments.server);
    if (remembered && *remembered != fingerprint) {
      spdlog::warn(
          "{} is known with {}; trying --fingerprint {}, saved only if the server "
          "presents it",
          arguments.server, *remembered, fingerprint);
    }
    if (!remembered || *remembered != fingerprint) {
      auto key = transport::normalize_host_port(arguments.server);
      if (key) *pending_pin = app::PendingPin{arguments.known_servers, *key, fingerprint};
    }
  } else if (arguments.ca.empty()) {
    auto remembered = known->lookup(arguments.server);
    if (!remembered) {
      return make_unexpected(arguments.server +
                             " is not a known server: pass --fingerprint sha256:... (printed by "
                             "`tether keygen`) or --ca FILE");
    }
    fingerprint = *remembered;
  }
  transport::ServerTrust trust;
  if (!arguments.ca.empty()) trust.ca_file = arguments.ca;
  if (!fingerprint.empty() && arguments.ca.empty()) trust.fingerprint = fingerprint;
  trust.host = server_address->first;
  std::optional<transport::ClientCertificate> certificate;
  if (!arguments.certificate.empty())
    certificate = transport::ClientCertificate{arguments.certificate, arguments.key};
  auto context = transport::make_client_context(trust, certificate);
  if (!context) return make_unexpected(context.error());
  options.tls = *context;
  return options;
}

int run_client(const ClientArguments& arguments, tunnel::ClientTunnelOptions tunnel_options) {
  std::optional<app::PendingPin> pending_pin;
  auto options = client_options(arguments, &pending_pin);
  if (!options) {
    spdlog::error("{}", options.error());
    return tunnel::kExitUsage;
  }
  const bool stdio = tunnel_options.stdio_target.has_value();
  if (!stdio) tunnel_options.new_session_on_loss = !arguments.exit_on_session_loss;
  asio::io_context io;
  tunnel::ClientTunnel tunnel(io, std::move(tunnel_options));
  app::PinningObserver pinning(tunnel, std::move(pending_pin));
  transport::ClientRuntime runtime(io, *options, pinning);
  tunnel.attach(runtime);
  if (auto started = tunnel.start(); !started) {
    // A local listener that cannot be opened (port in use, address not bindable).
    spdlog::error("{}", started.error());
    return tunnel::kExitForwardFailed;
  }
  auto control = open_control_socket(
      io, stdio ? "stdio" : "client", arguments.control_socket,
      [&runtime] { return transport::client_status(runtime, session::Clock::now()); });
  auto metrics = start_metrics(io, arguments.metrics_listen, stdio ? "stdio" : "client",
                               [&runtime, role = std::string(stdio ? "stdio" : "client"),
                                ledger = transport::SessionCounterLedger{}]() mutable {
                                 return transport::client_metrics(runtime, ledger, role);
                               });
  if (!metrics) {
    spdlog::error("{}", metrics.error());
    return 1;
  }
  install_signal_stop(io, [&] {
    spdlog::info("client closing the session");
    tunnel.request_stop();
    // A second signal, or a peer that never answers, ends it the hard way.
    install_signal_stop(io, [&] { io.stop(); });
  });
  runtime.start();
  io.run();
  return tunnel.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tether: connections that survive network changes and do not outlive their credentials"};
  // At most one subcommand; none, or an unknown one, is reported after parsing (by its name).
  app.require_subcommand(0, 1);
  app.allow_extras();
  command_line::enable_config_file(
      app, transport::default_known_servers_path().parent_path() / "tether.toml");
  // Logging options go before or after the subcommand (each subcommand falls through to these).
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log connection-level detail (--log-level debug)");
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "Log only errors (--log-level error)");
  std::string log_level;
  app.add_option("--log-level", log_level,
                 "debug, info, warn, error or off (default info; `tether stdio` warn when standard "
                 "error is a terminal: ssh's user sees no log lines per call)")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}));
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "Standard error's log: 'text' lines, or 'json': one JSON object per line, session "
                 "events with their fields (event, session, reason, transient, by_peer...)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  std::string keygen_directory;
  bool keygen_force = false;
  auto* keygen =
      app.add_subcommand("keygen", "Write a server certificate and key, print the fingerprint");
  keygen->add_option("--out", keygen_directory, "Directory for certificate.pem and key.pem")
      ->required();
  keygen->add_flag("--force", keygen_force, "Overwrite existing files");

  std::string listen = "0.0.0.0:7443";
  std::string certificate;
  std::string key;
  TargetArguments targets;
  ServerAuthArguments server_auth;
  bool server_plain = false;
  std::string reset_key_file;
  LivenessOptions server_liveness;
  auto* server = app.add_subcommand(
      "server", "Accept tether sessions and connect their streams to allowed targets");
  server->add_option("--listen", listen, "Address and port to listen on")->capture_default_str();
  server->add_option("--cert", certificate, "Certificate file (PEM), from `tether keygen`");
  server->add_option("--key", key, "Private key file (PEM)");
  server->add_option("--allow", targets.allow,
                     "Target a client may reach, repeat as needed: ADDRESS[/PREFIX]:PORTS checked "
                     "against the address connected to (127.0.0.1:6379, 10.0.0.0/24:5432, "
                     "[fd00::/8]:*), or NAME:PORTS checked against the requested name, '*' one "
                     "label (*.internal:22), whose addresses must not be loopback, link-local or "
                     "the server's own; PORTS is N, N-M or *");
  server->add_option("--allow-listen", targets.allow_listen,
                     "Address a client's -R may make the server listen on, repeat as needed: "
                     "ADDRESS[/PREFIX]:PORTS (127.0.0.1:8080, [::1]:9000-9099); ports below 1024, "
                     "port 0 and 0.0.0.0/:: only when named exactly; default none (-R refused)");
  server->add_option(
      "--grant", targets.grants,
      "WHO=PATTERN: what a principal may reach (WHO a user name or @GROUP; PATTERN "
      "as for --allow, which stays the ceiling); repeat as needed. Once any grant is "
      "given, a principal reaches only what its grants (and its token's "
      "tether:connect:PATTERN scopes) name");
  server->add_option("--grant-listen", targets.listen_grants,
                     "WHO=PATTERN: where a principal's -R may listen (as for --allow-listen, the "
                     "ceiling; tokens: tether:listen:PATTERN scopes)");
  server->add_option("--group", targets.groups, "GROUP=USER,USER...: a group for --grant @GROUP");
  server
      ->add_option("--connect-timeout", targets.connect_timeout_s,
                   "Seconds a target connect may take (waiting its turn among the session's 16 "
                   "concurrent connects, resolving, connecting) before the client is told it is "
                   "unreachable")
      ->capture_default_str();
  add_server_auth_options(*server, server_auth);
  server->add_flag("--plain-insecure", server_plain, "No TLS (tests only)");
  server->add_option("--reset-key", reset_key_file,
                     "File holding the stateless-reset key (default: beside --key)");
  add_liveness_options(*server, server_liveness);
  ServerLimitArguments server_limits;
  add_server_limit_options(*server, server_limits);
  std::string server_control_socket;
  add_control_socket_option(*server, server_control_socket);
  std::string server_metrics_listen;
  add_metrics_option(*server, server_metrics_listen);
  server->add_option("--linger", server_liveness.linger_s, "Seconds a disconnected session is kept")
      ->capture_default_str();

  ClientArguments client_arguments;
  std::vector<std::string> local_forwards;
  std::vector<std::string> remote_forwards;
  std::vector<std::string> dynamic_forwards;
  auto* client =
      app.add_subcommand("client", "Forward ports through one session to the server (-L, -R, -D)");
  add_client_options(*client, client_arguments);
  client->add_option(
      "-L,--local", local_forwards,
      "[BIND:]PORT:HOST:HOSTPORT: connections to local BIND:PORT reach HOST:HOSTPORT as seen from "
      "the server (BIND defaults to 127.0.0.1); repeat as needed");
  client->add_option(
      "-R,--remote", remote_forwards,
      "[BIND:]PORT:HOST:HOSTPORT: the server listens on BIND:PORT (an IP address or localhost, "
      "which its --allow-listen must list; PORT 0 asks for any free port) and connections to it "
      "reach HOST:HOSTPORT as seen from this client; repeat as needed");
  client->add_option(
      "-D,--dynamic", dynamic_forwards,
      "[BIND:]PORT: a SOCKS5 proxy on local BIND:PORT; each CONNECT reaches its target from the "
      "server (IPv4, IPv6 and domain names); repeat as needed");
  bool keep_going = false;
  client->add_flag("--keep-going", keep_going,
                   "Run on when the server refuses a -R forward (default: exit with status 2, "
                   "as ssh's ExitOnForwardFailure)");
  client->add_flag(
      "--exit-on-session-loss", client_arguments.exit_on_session_loss,
      "Exit with status 4 when the server no longer has the session (default: start a new one)");

  ClientArguments stdio_arguments;
  std::string stdio_target;
  auto* stdio = app.add_subcommand(
      "stdio",
      "Connect standard input and output to HOST:PORT through a session (for ssh's "
      "ProxyCommand: ssh -o ProxyCommand='tether stdio --server S:P %h:%p' HOST)");
  add_client_options(*stdio, stdio_arguments);
  stdio->add_option("target", stdio_target, "HOST:PORT to reach from the server")->required();

  std::string status_socket;
  bool status_json = false;
  auto* status = app.add_subcommand(
      "status",
      "Show the sessions of running tether processes (state, RTT, streams, bytes, "
      "buffered bytes, downtime)");
  status->add_option("--socket", status_socket,
                     "Control socket of one process (default: every socket in the default "
                     "directory)");
  status->add_flag("--json", status_json, "Print the raw JSON documents");

  tether::app::PasswdOptions passwd_options;
  auto* passwd = tether::app::add_passwd_command(app, passwd_options);
  tether::app::AdminOptions admin_options;
  auto* admin = tether::app::add_admin_command(app, admin_options);
  tether::app::FingerprintOptions fingerprint_options;
  auto* fingerprint = tether::app::add_fingerprint_command(app, fingerprint_options);
  tether::app::KnownServersOptions known_servers_options;
  auto* known_servers = tether::app::add_known_servers_command(app, known_servers_options);

  for (CLI::App* command : app.get_subcommands([](CLI::App*) { return true; }))
    command->fallthrough();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help and --version exit 0; every mistake on the command line or in the file exits 2.
    return app.exit(error) == 0 ? 0 : tunnel::kExitUsage;
  }
  if (const auto extras = app.remaining(); !extras.empty() || app.get_subcommands().empty()) {
    if (app.get_subcommands().empty() && !extras.empty() && !extras.front().starts_with('-')) {
      std::fprintf(stderr, "tether: unknown subcommand '%s' (see tether --help)\n",
                   extras.front().c_str());
    } else if (!extras.empty()) {
      std::fprintf(stderr, "tether: unexpected argument '%s' (see tether --help)\n",
                   extras.front().c_str());
    } else {
      std::fprintf(stderr, "tether: a subcommand is required (see tether --help)\n");
    }
    return tunnel::kExitUsage;
  }
  // Logs go to standard error: standard output belongs to `tether stdio`'s stream and to the
  // output of keygen and status.
  spdlog::set_default_logger(spdlog::stderr_color_mt("tether"));
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
  if (!log_level.empty()) {
    spdlog::set_level(spdlog::level::from_str(log_level));
  } else if (verbose) {
    spdlog::set_level(spdlog::level::debug);
  } else if (quiet) {
    spdlog::set_level(spdlog::level::err);
  } else if (stdio->parsed() && ::isatty(STDERR_FILENO) != 0) {
    spdlog::set_level(spdlog::level::warn);
  } else {
    spdlog::set_level(spdlog::level::info);
  }
  transport::set_log_format(
      transport::parse_log_format(log_format).value_or(transport::LogFormat::kText));
  std::signal(SIGPIPE, SIG_IGN);

  if (keygen->parsed()) return run_keygen(keygen_directory, keygen_force);
  if (status->parsed()) return run_status(status_socket, status_json);
  if (passwd->parsed()) return tether::app::run_passwd(passwd_options);
  if (admin->parsed()) return tether::app::run_admin(*admin, admin_options);
  if (fingerprint->parsed()) return tether::app::run_fingerprint(fingerprint_options);
  if (known_servers->parsed())
    return tether::app::run_known_servers(*known_servers, known_servers_options);
  if (server->parsed()) {
    if (!server_plain && (certificate.empty() || key.empty())) {
      spdlog::error(
          "tether server needs --cert and --key (make them with `tether keygen --out DIR`)");
      return tunnel::kExitUsage;
    }
    return run_server(listen, certificate, key, targets, server_auth, server_plain, reset_key_file,
                      server_liveness, server_control_socket, server_limits, server_metrics_listen);
  }
  tunnel::ClientTunnelOptions tunnel_options;
  if (stdio->parsed()) {
    auto target = tunnel::split_host_port(stdio_target);
    if (!target) {
      spdlog::error("stdio target: {}", target.error());
      return tunnel::kExitUsage;
    }
    tunnel_options.stdio_target =
        tunnel::StreamRequest{tunnel::RequestKind::kConnect, target->first, target->second};
    stdio_arguments.stdio = true;
    return run_client(stdio_arguments, std::move(tunnel_options));
  }
  const std::pair<tunnel::Forward::Kind, const std::vector<std::string>*> specs[] = {
      {tunnel::Forward::Kind::kLocal, &local_forwards},
      {tunnel::Forward::Kind::kRemote, &remote_forwards},
      {tunnel::Forward::Kind::kDynamic, &dynamic_forwards}};
  for (const auto& [kind, texts] : specs) {
    for (const auto& text : *texts) {
      auto forward = tunnel::parse_forward(kind, text);
      if (!forward) {
        spdlog::error("{}", forward.error());
        return tunnel::kExitUsage;
      }
      tunnel_options.forwards.push_back(*forward);
    }
  }
  tunnel_options.exit_on_forward_failure = !keep_going;
  if (tunnel_options.forwards.empty()) {
    spdlog::error("tether client needs at least one -L, -R or -D forward");
    return tunnel::kExitUsage;
  }
  return run_client(client_arguments, std::move(tunnel_options));
}
