// `tether fingerprint FILE` and `tether known-servers remove HOST:PORT`, and PinningObserver, the
// client's side of trust on first use: it saves a --fingerprint pin to the known-servers file only
// once a handshake has verified that the server presented that certificate.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <utility>

#include "transport/runtime.hpp"

namespace tether::app {

struct FingerprintOptions {
  std::string certificate;  // FILE: a PEM certificate (the server's certificate.pem)
};
// Registers `fingerprint`; returns it (check ->parsed()).
CLI::App* add_fingerprint_command(CLI::App& app, FingerprintOptions& options);
// Prints the fingerprint of the first certificate in the file, "sha256:<64 hex>", as keygen does.
// Returns 0, or 1 when the file cannot be read as a certificate.
int run_fingerprint(const FingerprintOptions& options);

struct KnownServersOptions {
  std::string file;         // --known-servers; empty: the default file
  std::string remove_host;  // remove HOST:PORT
};
// Registers `known-servers` with its `remove` subcommand; returns `known-servers`.
CLI::App* add_known_servers_command(CLI::App& app, KnownServersOptions& options);
// Runs the parsed subcommand. Returns 0 removed, 1 not listed or the file could not be read or
// written, 2 a malformed HOST:PORT.
int run_known_servers(CLI::App& command, const KnownServersOptions& options);

// A pin to save once it has been verified: `fingerprint` (canonical) for `host_port` in `file`.
struct PendingPin {
  std::string file;
  std::string host_port;
  std::string fingerprint;
};

// Passes every event on to `inner`; on the first Established event (the TLS handshake verified
// the pinned fingerprint) it writes the pending pin, if any, to the known-servers file.
class PinningObserver final : public transport::SessionObserver {
 public:
  PinningObserver(transport::SessionObserver& inner, std::optional<PendingPin> pin)
      : inner_(inner), pin_(std::move(pin)) {}
  void on_event(const session::SessionId& id, session::Session* session,
                const session::Event& event) override;
  void on_fatal(const transport::TransportError& error) override { inner_.on_fatal(error); }

 private:
  transport::SessionObserver& inner_;
  std::optional<PendingPin> pin_;
};

}  // namespace tether::app
