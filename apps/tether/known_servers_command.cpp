#include "known_servers_command.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <utility>
#include <variant>

#include "transport/known_servers.hpp"
#include "transport/tls.hpp"

namespace tether::app {

CLI::App* add_fingerprint_command(CLI::App& app, FingerprintOptions& options) {
  auto* command = app.add_subcommand(
      "fingerprint",
      "Print the sha256:... fingerprint of a certificate file (for the client's --fingerprint)");
  command->add_option("file", options.certificate, "PEM certificate (the server's certificate.pem)")
      ->required();
  return command;
}

int run_fingerprint(const FingerprintOptions& options) {
  auto fingerprint = transport::fingerprint_of_certificate_file(options.certificate);
  if (!fingerprint) {
    std::fprintf(stderr, "tether fingerprint: %s\n", fingerprint.error().c_str());
    return 1;
  }
  std::printf("%s\n", fingerprint->c_str());
  return 0;
}

CLI::App* add_known_servers_command(CLI::App& app, KnownServersOptions& options) {
  auto* command = app.add_subcommand("known-servers", "Edit the client's known-servers file");
  command->require_subcommand(1);
  command->add_option("--known-servers", options.file,
                      "Known-servers file (default ~/.config/tether/known_servers)");
  auto* remove = command->add_subcommand(
      "remove", "Forget the pinned fingerprint of HOST:PORT (like ssh-keygen -R)");
  remove->add_option("server", options.remove_host, "HOST:PORT, as given to --server")->required();
  remove->fallthrough();
  return command;
}

int run_known_servers(CLI::App& command, const KnownServersOptions& options) {
  if (command.get_subcommand("remove")->parsed()) {
    auto key = transport::normalize_host_port(options.remove_host);
    if (!key) {
      std::fprintf(stderr, "tether known-servers remove: %s\n", key.error().c_str());
      return 2;
    }
    const std::string file =
        options.file.empty() ? transport::default_known_servers_path().string() : options.file;
    auto known = transport::KnownServers::load(file);
    if (!known) {
      std::fprintf(stderr, "tether known-servers remove: %s\n", known.error().c_str());
      return 1;
    }
    auto removed = known->forget(*key);
    if (!removed) {
      std::fprintf(stderr, "tether known-servers remove: %s\n", removed.error().c_str());
      return 1;
    }
    if (!*removed) {
      std::fprintf(stderr, "tether known-servers remove: %s is not listed in %s\n", key->c_str(),
                   file.c_str());
      return 1;
    }
    std::printf("removed %s from %s\n", key->c_str(), file.c_str());
    return 0;
  }
  return 2;
}

void PinningObserver::on_event(const session::SessionId& id, session::Session* session,
                               const session::Event& event) {
  if (pin_ && std::holds_alternative<session::events::Established>(event)) {
    const PendingPin pin = std::move(*pin_);
    pin_.reset();
    auto known = transport::KnownServers::load(pin.file);
    auto stored = known ? known->remember(pin.host_port, pin.fingerprint)
                        : Expected<void, std::string>(make_unexpected(known.error()));
    if (stored) {
      spdlog::info("pinned {} to {} in {}", pin.host_port, pin.fingerprint, pin.file);
    } else {
      spdlog::warn("could not save the pin of {}: {}", pin.host_port, stored.error());
    }
  }
  inner_.on_event(id, session, event);
}

}  // namespace tether::app
