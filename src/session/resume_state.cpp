#include "session/resume_state.hpp"

#include "crypto/primitives.hpp"

namespace tether::session {

Secret ResumeState::client_proof(const SessionId& session_id,
                                 std::span<const std::byte> keying_material) const {
  return resume_proof(keys_.resume_secret, Role::kClient, session_id, keying_material);
}

bool ResumeState::accept_server_proof(const SessionId& session_id,
                                      std::span<const std::byte> keying_material,
                                      const Secret& proof) {
  const Secret expected =
      resume_proof(keys_.resume_secret, Role::kServer, session_id, keying_material);
  if (!crypto::constant_time_equal(expected, proof)) return false;
  keys_.resume_secret = ratchet_resume_secret(keys_.resume_secret, keying_material);
  return true;
}

std::optional<Secret> ResumeState::match_client_proof(const SessionId& session_id,
                                                      std::span<const std::byte> keying_material,
                                                      const Secret& proof) const {
  // The proof must be bound to this connection; the previous secret is accepted too, for a client
  // that never saw our last ResumeAccept. Anything older is stale.
  const Secret current =
      resume_proof(keys_.resume_secret, Role::kClient, session_id, keying_material);
  if (crypto::constant_time_equal(current, proof)) return keys_.resume_secret;
  if (previous_resume_secret_) {
    const Secret previous =
        resume_proof(*previous_resume_secret_, Role::kClient, session_id, keying_material);
    if (crypto::constant_time_equal(previous, proof)) return *previous_resume_secret_;
  }
  return std::nullopt;
}

Secret ResumeState::accept_client(const Secret& base, const SessionId& session_id,
                                  std::span<const std::byte> keying_material) {
  const Secret base_secret = base;  // `base` may be one of ours, about to change
  const Secret proof = resume_proof(base_secret, Role::kServer, session_id, keying_material);
  previous_resume_secret_ = base_secret;
  keys_.resume_secret = ratchet_resume_secret(base_secret, keying_material);
  return proof;
}

bool ResumeState::reset_matches(const SessionId& frame_session, const SessionId& session_id,
                                const Secret& token) const {
  return crypto::constant_time_equal(frame_session, session_id) &&
         crypto::constant_time_equal(token, reset_token_);
}

}  // namespace tether::session
