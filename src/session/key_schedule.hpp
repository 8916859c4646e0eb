// The key schedule derives every per-session secret from the transport's keying material.
#pragma once

#include <span>

#include "session/types.hpp"

namespace tether::session {

// Secrets held by both ends of a session. None of them ever crosses the wire: each is derived with
// HKDF-SHA256 from the keying material the transport exported for the connection that created the
// session (a TLS 1.3 exporter value in the runtime) and the session id.
struct SessionKeys {
  Secret resume_secret{};     // proves ownership on resume; ratcheted by every successful resume
  Secret client_close_key{};  // carried by a FastClose sent to the client
  Secret server_close_key{};  // carried by a FastClose sent to the server
  Secret reauthentication_secret{};  // binds each in-place re-authentication to the session
};

[[nodiscard]] SessionKeys derive_session_keys(const SessionId& session_id,
                                              std::span<const std::byte> keying_material);

// The proof one side presents when resuming on a connection with `keying_material`. Binding it to
// the connection's own keying material (channel binding) makes a captured proof useless on any
// other connection.
[[nodiscard]] Secret resume_proof(const Secret& resume_secret, Role prover,
                                  const SessionId& session_id,
                                  std::span<const std::byte> keying_material);

// The resume secret that follows `resume_secret` after a resume on a connection with
// `keying_material`.
[[nodiscard]] Secret ratchet_resume_secret(const Secret& resume_secret,
                                           std::span<const std::byte> keying_material);

// The channel binding of the session's `sequence`th re-authentication (counted from 1 by both
// sides in the order the exchanges start): what SCRAM-PLUS binds to instead of one connection's
// exporter, so that an exchange made for one session (or one round) is useless for any other and
// survives the connection it started on.
[[nodiscard]] Secret reauthentication_binding(const Secret& reauthentication_secret,
                                              const SessionId& session_id, std::uint64_t sequence);

// The stateless-reset token for a session id: HMAC(server static key, label || session id). A
// server can compute it with no state for the session, and no one without the static key can.
[[nodiscard]] Secret stateless_reset_token(const Secret& static_key, const SessionId& session_id);

}  // namespace tether::session
