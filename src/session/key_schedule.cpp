#include "session/key_schedule.hpp"

#include <array>

#include "crypto/primitives.hpp"

namespace tether::session {

using crypto::label;

SessionKeys derive_session_keys(const SessionId& session_id,
                                std::span<const std::byte> keying_material) {
  // Extract once with the session id as salt, then expand one secret per purpose.
  const Secret master =
      crypto::hkdf_sha256(session_id, keying_material, "tether v1 session master");
  SessionKeys keys;
  keys.resume_secret = crypto::hkdf_sha256({}, master, "tether v1 resume");
  keys.client_close_key = crypto::hkdf_sha256({}, master, "tether v1 close client");
  keys.server_close_key = crypto::hkdf_sha256({}, master, "tether v1 close server");
  keys.reauthentication_secret = crypto::hkdf_sha256({}, master, "tether v1 reauthentication");
  return keys;
}

Secret resume_proof(const Secret& resume_secret, Role prover, const SessionId& session_id,
                    std::span<const std::byte> keying_material) {
  const auto role_label =
      label(prover == Role::kClient ? "tether v1 resume client" : "tether v1 resume server");
  return crypto::hmac_sha256(resume_secret, {role_label, session_id, keying_material});
}

Secret ratchet_resume_secret(const Secret& resume_secret,
                             std::span<const std::byte> keying_material) {
  return crypto::hkdf_sha256(resume_secret, keying_material, "tether v1 resume ratchet");
}

Secret reauthentication_binding(const Secret& reauthentication_secret, const SessionId& session_id,
                                std::uint64_t sequence) {
  std::array<std::byte, 8> counter{};
  for (std::size_t index = 0; index < counter.size(); ++index) {
    counter[index] = static_cast<std::byte>(sequence >> (8 * (counter.size() - 1 - index)));
  }
  return crypto::hmac_sha256(reauthentication_secret,
                             {label("tether v1 reauthentication binding"), session_id, counter});
}

Secret stateless_reset_token(const Secret& static_key, const SessionId& session_id) {
  return crypto::hmac_sha256(static_key, {label("tether v1 stateless reset"), session_id});
}

}  // namespace tether::session
