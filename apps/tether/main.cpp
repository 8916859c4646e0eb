// tether: the command-line tool. `tether keygen` makes a server identity, `tether server` accepts
// sessions and connects their streams to allowed targets, `tether client` forwards local ports (-L)
// through one session that survives network changes.
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "transport/known_servers.hpp"
#include "transport/runtime.hpp"
#include "transport/tls.hpp"
#include "tunnel/tunnel.hpp"

namespace {

using namespace tether;
namespace fs = std::filesystem;

struct LivenessOptions {
  unsigned heartbeat_interval_ms = 5000;
  unsigned missing_heartbeats = 3;
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
Expected<session::Secret, std::string> load_or_create_static_key(const fs::path& path) {
  session::Secret key{};
  std::ifstream in(path, std::ios::binary);
  if (in) {
    in.read(reinterpret_cast<char*>(key.data()), static_cast<std::streamsize>(key.size()));
    if (in.gcount() != static_cast<std::streamsize>(key.size())) {
      return make_unexpected("reset key file " + path.string() + " is not 32 bytes");
    }
    return key;
  }
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) != 1) {
    return make_unexpected(std::string("no randomness for the reset key"));
  }
  const mode_t previous = ::umask(077);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(key.data()), static_cast<std::streamsize>(key.size()));
  ::umask(previous);
  if (!out) return make_unexpected("cannot write reset key file " + path.string());
  return key;
}

void install_signal_stop(asio::io_context& io, std::function<void()> on_stop) {
  auto signals = std::make_shared<asio::signal_set>(io, SIGINT, SIGTERM);
  signals->async_wait([signals, on_stop = std::move(on_stop)](std::error_code error, int) {
    if (!error) on_stop();
  });
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

int run_server(const std::string& listen, const std::string& certificate, const std::string& key,
               const std::vector<std::string>& allow_patterns, const std::string& auth, bool plain,
               std::string reset_key_file, const LivenessOptions& liveness) {
  if (auth != "none") {
    spdlog::error("only --auth none exists until authentication lands; pass it explicitly");
    return tunnel::kExitUsage;
  }
  auto listen_address = tunnel::split_host_port(listen);
  if (!listen_address) {
    spdlog::error("--listen: {}", listen_address.error());
    return tunnel::kExitUsage;
  }
  tunnel::AllowList allow;
  for (const auto& pattern : allow_patterns) {
    if (auto added = allow.add(pattern); !added) {
      spdlog::error("--allow: {}", added.error());
      return tunnel::kExitUsage;
    }
  }
  if (allow.empty()) spdlog::warn("no --allow entries: every stream will be refused");
  transport::ServerOptions options;
  std::error_code address_error;
  options.listen = asio::ip::tcp::endpoint(
      asio::ip::make_address(listen_address->first, address_error), listen_address->second);
  if (address_error) {
    spdlog::error("--listen: '{}' is not an IP address", listen_address->first);
    return tunnel::kExitUsage;
  }
  if (!plain) {
    auto context = transport::make_server_context(certificate, key);
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
  options.session = session_config(liveness);

  asio::io_context io;
  tunnel::ServerTunnel tunnel(io, std::move(allow));
  transport::ServerRuntime runtime(io, options, tunnel);
  tunnel.attach(runtime);
  if (auto started = runtime.start(); !started) {
    spdlog::error("{}", started.error());
    return 1;
  }
  spdlog::info("server listening on {}:{} ({})", runtime.local_endpoint().address().to_string(),
               runtime.local_endpoint().port(), plain ? "plain TCP, insecure" : "TLS 1.3");
  install_signal_stop(io, [&] {
    spdlog::info("server stopping: ending every session with reason shutdown");
    runtime.shut_down(std::chrono::milliseconds(500), [&] {
      runtime.stop();
      io.stop();
    });
  });
  io.run();
  return 0;
}

int run_client(const std::string& server, const std::string& ca, std::string fingerprint,
               bool plain, const std::vector<std::string>& forward_specs,
               std::string known_servers_path, const LivenessOptions& liveness,
               bool exit_on_session_loss) {
  auto server_address = tunnel::split_host_port(server);
  if (!server_address) {
    spdlog::error("--server: {}", server_address.error());
    return tunnel::kExitUsage;
  }
  std::vector<tunnel::LocalForward> forwards;
  for (const auto& spec : forward_specs) {
    auto forward = tunnel::parse_local_forward(spec);
    if (!forward) {
      spdlog::error("{}", forward.error());
      return tunnel::kExitUsage;
    }
    forwards.push_back(*forward);
  }
  transport::ClientOptions options;
  options.host = server_address->first;
  options.port = std::to_string(server_address->second);
  options.session = session_config(liveness);
  if (!plain) {
    if (known_servers_path.empty())
      known_servers_path = transport::default_known_servers_path().string();
    auto known = transport::KnownServers::load(known_servers_path);
    if (!known) {
      spdlog::error("{}", known.error());
      return tunnel::kExitUsage;
    }
    if (!fingerprint.empty()) {
      auto parsed = transport::parse_fingerprint(fingerprint);
      if (!parsed) {
        spdlog::error("--fingerprint: {}", parsed.error());
        return tunnel::kExitUsage;
      }
      fingerprint = *parsed;
      if (auto remembered = known->lookup(server); remembered && *remembered != fingerprint) {
        spdlog::warn("{} was known with {}; now pinned to {}", server, *remembered, fingerprint);
      }
      if (auto stored = known->remember(server, fingerprint); !stored)
        spdlog::warn("{}", stored.error());
    } else if (ca.empty()) {
      auto remembered = known->lookup(server);
      if (!remembered) {
        spdlog::error(
            "{} is not a known server: pass --fingerprint sha256:... (printed by `tether keygen`) "
            "or --ca FILE",
            server);
        return tunnel::kExitUsage;
      }
      fingerprint = *remembered;
    }
    transport::ServerTrust trust;
    if (!ca.empty()) trust.ca_file = ca;
    if (!fingerprint.empty() && ca.empty()) trust.fingerprint = fingerprint;
    trust.host = server_address->first;
    auto context = transport::make_client_context(trust);
    if (!context) {
      spdlog::error("{}", context.error());
      return tunnel::kExitUsage;
    }
    options.tls = *context;
  }

  asio::io_context io;
  tunnel::ClientTunnel tunnel(io, forwards, !exit_on_session_loss);
  transport::ClientRuntime runtime(io, options, tunnel);
  tunnel.attach(runtime);
  if (auto started = tunnel.start(); !started) {
    spdlog::error("{}", started.error());
    return 1;
  }
  install_signal_stop(io, [&] {
    spdlog::info("client closing the session");
    runtime.session().close(session::Clock::now());
    runtime.wake();
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
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log connection-level detail");

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
  std::vector<std::string> allow;
  std::string auth;
  bool server_plain = false;
  std::string reset_key_file;
  LivenessOptions server_liveness;
  auto* server = app.add_subcommand(
      "server", "Accept tether sessions and connect their streams to allowed targets");
  server->add_option("--listen", listen, "Address and port to listen on")->capture_default_str();
  server->add_option("--cert", certificate, "Certificate file (PEM), from `tether keygen`");
  server->add_option("--key", key, "Private key file (PEM)");
  server->add_option("--allow", allow,
                     "Target HOST:PORT a client may reach; * and ? wildcards; repeat as needed");
  server
      ->add_option("--auth", auth,
                   "Client authentication; only 'none' exists until authentication lands")
      ->required();
  server->add_flag("--plain-insecure", server_plain, "No TLS (tests only)");
  server->add_option("--reset-key", reset_key_file,
                     "File holding the stateless-reset key (default: beside --key)");
  add_liveness_options(*server, server_liveness);
  server->add_option("--linger", server_liveness.linger_s, "Seconds a disconnected session is kept")
      ->capture_default_str();

  std::string server_address;
  std::string ca;
  std::string fingerprint;
  std::vector<std::string> forwards;
  bool client_plain = false;
  std::string known_servers;
  LivenessOptions client_liveness;
  bool exit_on_session_loss = false;
  auto* client =
      app.add_subcommand("client", "Forward local ports through one session to the server");
  client->add_option("--server", server_address, "Server HOST:PORT")->required();
  client->add_option("--ca", ca, "Trust the server if its certificate chains to this CA file");
  client->add_option("--fingerprint", fingerprint,
                     "Trust the server if its certificate has this sha256:HEX fingerprint");
  client->add_option(
      "-L,--local", forwards,
      "[BIND:]PORT:HOST:HOSTPORT: forward a local port to HOST:HOSTPORT as seen from the server");
  client->add_flag("--plain-insecure", client_plain, "No TLS (tests only)");
  client->add_option("--known-servers", known_servers,
                     "Known-servers file (default ~/.config/tether/known_servers)");
  add_liveness_options(*client, client_liveness);
  client->add_flag(
      "--exit-on-session-loss", exit_on_session_loss,
      "Exit with status 4 when the server no longer has the session (default: start a new one)");

  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  std::signal(SIGPIPE, SIG_IGN);

  if (keygen->parsed()) return run_keygen(keygen_directory, keygen_force);
  if (server->parsed()) {
    if (!server_plain && (certificate.empty() || key.empty())) {
      spdlog::error(
          "tether server needs --cert and --key (make them with `tether keygen --out DIR`)");
      return tunnel::kExitUsage;
    }
    return run_server(listen, certificate, key, allow, auth, server_plain, reset_key_file,
                      server_liveness);
  }
  if (!ca.empty() && !fingerprint.empty()) {
    spdlog::error("pass either --ca or --fingerprint, not both");
    return tunnel::kExitUsage;
  }
  return run_client(server_address, ca, fingerprint, client_plain, forwards, known_servers,
                    client_liveness, exit_on_session_loss);
}
