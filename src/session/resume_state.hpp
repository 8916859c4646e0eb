// ResumeState holds a session's secrets and runs its resumption proofs: the keys derived at
// establishment, the ratcheting resume secret (and, on the server, the previous one), and the
// client's stateless-reset token.
#pragma once

#include <optional>
#include <span>

#include "session/key_schedule.hpp"
#include "session/types.hpp"

namespace tether::session {

class ResumeState {
 public:
  // Derives the session keys from the connection that created the session.
  void establish(const SessionId& session_id, std::span<const std::byte> keying_material) {
    keys_ = derive_session_keys(session_id, keying_material);
  }

  // Client: the Resume proof for a new connection.
  [[nodiscard]] Secret client_proof(const SessionId& session_id,
                                    std::span<const std::byte> keying_material) const;
  // Client: checks the server's ResumeAccept proof (in constant time) and, when it holds,
  // ratchets the resume secret.
  [[nodiscard]] bool accept_server_proof(const SessionId& session_id,
                                         std::span<const std::byte> keying_material,
                                         const Secret& proof);

  // Server: the resume secret the client's proof was made with, the current one or, for a client
  // that never saw our last ResumeAccept, the previous one; nullopt for a forged, replayed or stale
  // proof. Nothing changes.
  [[nodiscard]] std::optional<Secret> match_client_proof(const SessionId& session_id,
                                                         std::span<const std::byte> keying_material,
                                                         const Secret& proof) const;
  // Server: accepts a resume made with `base` (from match_client_proof): returns the ResumeAccept
  // proof and ratchets.
  [[nodiscard]] Secret accept_client(const Secret& base, const SessionId& session_id,
                                     std::span<const std::byte> keying_material);

  // The fast-close key this side accepts, and the one it presents to its peer.
  [[nodiscard]] const Secret& own_close_key(Role role) const {
    return role == Role::kClient ? keys_.client_close_key : keys_.server_close_key;
  }
  [[nodiscard]] const Secret& peer_close_key(Role role) const {
    return role == Role::kClient ? keys_.server_close_key : keys_.client_close_key;
  }

  // The channel binding of the session's `sequence`th re-authentication (both sides).
  [[nodiscard]] Secret reauthentication_binding(const SessionId& session_id,
                                                std::uint64_t sequence) const {
    return session::reauthentication_binding(keys_.reauthentication_secret, session_id, sequence);
  }

  // Client: the token from Welcome, and whether a StatelessReset carries it (constant time).
  void set_reset_token(const Secret& token) { reset_token_ = token; }
  [[nodiscard]] bool reset_matches(const SessionId& frame_session, const SessionId& session_id,
                                   const Secret& token) const;

 private:
  SessionKeys keys_{};
  std::optional<Secret> previous_resume_secret_;  // server
  Secret reset_token_{};                          // client
};

}  // namespace tether::session
