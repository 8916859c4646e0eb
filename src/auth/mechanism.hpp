// Mechanism names the SASL registry and the command line use, and what each needs of a connection.
#pragma once

#include <optional>
#include <string_view>

namespace tether::auth {

enum class Mechanism : unsigned char {
  kScramSha256Plus,  // SCRAM-SHA-256 with tls-exporter channel binding (RFC 5802, 7677, 9266)
  kScramSha256,
  kPlain,        // RFC 4616, over TLS only, checked against the SCRAM verifiers
  kOAuthBearer,  // RFC 7628 with a JWS bearer token
  kExternal,     // RFC 4422 appendix A: the verified TLS client certificate
};

// The SASL name ("SCRAM-SHA-256-PLUS", ...).
[[nodiscard]] std::string_view name(Mechanism mechanism);
// The mechanism with that SASL name (case-sensitive, as SASL names are upper case), if known.
[[nodiscard]] std::optional<Mechanism> mechanism_named(std::string_view name);
// Whether the mechanism sends a secret the server could replay (PLAIN, a bearer token): such a
// mechanism is used only on a confidential connection.
[[nodiscard]] bool sends_replayable_secret(Mechanism mechanism);

}  // namespace tether::auth
