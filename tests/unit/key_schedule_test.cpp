// Unit tests of the key schedule, with known-answer vectors computed independently from the
// documented HMAC/HKDF formulas: session keys, resume proofs, the ratchet and stateless-reset
// tokens.
#include "session/key_schedule.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <set>
#include <string_view>

namespace tether::session {
namespace {

template <std::size_t Size>
std::array<std::byte, Size> sequence_from(unsigned first) {
  std::array<std::byte, Size> out{};
  for (std::size_t index = 0; index < Size; ++index) {
    out[index] = static_cast<std::byte>(first + index);
  }
  return out;
}

Secret from_hex(std::string_view hex) {
  Secret out{};
  auto digit = [](char c) { return static_cast<unsigned>(c <= '9' ? c - '0' : c - 'a' + 10); };
  for (std::size_t index = 0; index < out.size(); ++index) {
    out[index] = static_cast<std::byte>(digit(hex[2 * index]) * 16 + digit(hex[2 * index + 1]));
  }
  return out;
}

const SessionId kSessionId = sequence_from<16>(0x00);
const std::array<std::byte, 32> kKeying = sequence_from<32>(0x20);
const Secret kStaticKey = sequence_from<32>(0x40);
const Secret kSecret = sequence_from<32>(0x60);

TEST(KeySchedule, DerivedKeysMatchKnownAnswers) {
  // HKDF-SHA256(salt = session id, ikm = keying, "tether v1 session master"), then one HKDF with an
  // absent salt per purpose (values computed with an independent HKDF implementation).
  const SessionKeys keys = derive_session_keys(kSessionId, kKeying);
  EXPECT_EQ(keys.resume_secret,
            from_hex("76c135afaab6e996fb3b915375f7d6801c25b230bf6ca9bca4ef2e855e367f5e"));
  EXPECT_EQ(keys.client_close_key,
            from_hex("a05803f7f909c0256b3ac4987847bb92b6068cb4fdcd37a4c4d8883431fec514"));
  EXPECT_EQ(keys.server_close_key,
            from_hex("a8cb1dd7b2ab634b36ea791e8b44341e5a2a499d506a5ef9f41cc804b810b887"));
}

TEST(KeySchedule, DerivationIsDeterministicAndDistinctPerLabel) {
  const SessionKeys first = derive_session_keys(kSessionId, kKeying);
  const SessionKeys second = derive_session_keys(kSessionId, kKeying);
  EXPECT_EQ(first.resume_secret, second.resume_secret);
  EXPECT_EQ(first.client_close_key, second.client_close_key);
  EXPECT_EQ(first.server_close_key, second.server_close_key);
  const std::set<Secret> distinct{first.resume_secret, first.client_close_key,
                                  first.server_close_key};
  EXPECT_EQ(distinct.size(), 3u);
  EXPECT_NE(first.resume_secret, Secret{});
}

TEST(KeySchedule, DerivationDependsOnSessionIdAndKeyingMaterial) {
  const SessionKeys base = derive_session_keys(kSessionId, kKeying);
  SessionId other_id = kSessionId;
  other_id[15] ^= std::byte{1};
  auto other_keying = kKeying;
  other_keying[0] ^= std::byte{0x80};
  const SessionKeys by_id = derive_session_keys(other_id, kKeying);
  const SessionKeys by_keying = derive_session_keys(kSessionId, other_keying);
  EXPECT_NE(by_id.resume_secret, base.resume_secret);
  EXPECT_NE(by_id.client_close_key, base.client_close_key);
  EXPECT_NE(by_id.server_close_key, base.server_close_key);
  EXPECT_NE(by_keying.resume_secret, base.resume_secret);
  EXPECT_NE(by_keying.client_close_key, base.client_close_key);
  EXPECT_NE(by_keying.server_close_key, base.server_close_key);
}

TEST(KeySchedule, ResumeProofMatchesKnownAnswers) {
  EXPECT_EQ(resume_proof(kSecret, Role::kClient, kSessionId, kKeying),
            from_hex("26a4309456494c8636a9e4d7b9cbcf405ce5fc99360c24efed4639fd5b9dbe8e"));
  EXPECT_EQ(resume_proof(kSecret, Role::kServer, kSessionId, kKeying),
            from_hex("84f171f4372a2d1d9422371127818096de975ba1dd8bd5fca78c58f39e68a967"));
}

TEST(KeySchedule, ResumeProofDiffersPerRoleKeyingSecretAndSession) {
  const Secret client = resume_proof(kSecret, Role::kClient, kSessionId, kKeying);
  EXPECT_EQ(client, resume_proof(kSecret, Role::kClient, kSessionId, kKeying));
  EXPECT_NE(client, resume_proof(kSecret, Role::kServer, kSessionId, kKeying));
  auto other_keying = kKeying;
  other_keying[31] ^= std::byte{1};
  EXPECT_NE(client, resume_proof(kSecret, Role::kClient, kSessionId, other_keying));
  Secret other_secret = kSecret;
  other_secret[0] ^= std::byte{1};
  EXPECT_NE(client, resume_proof(other_secret, Role::kClient, kSessionId, kKeying));
  SessionId other_id = kSessionId;
  other_id[0] ^= std::byte{1};
  EXPECT_NE(client, resume_proof(kSecret, Role::kClient, other_id, kKeying));
}

TEST(KeySchedule, RatchetChangesTheSecretPerConnection) {
  const Secret next = ratchet_resume_secret(kSecret, kKeying);
  EXPECT_EQ(next, from_hex("4e0e0028444448e56ad6c124bae6a5f68bbf05a55ed2984b9c947354da198672"));
  EXPECT_NE(next, kSecret);
  EXPECT_EQ(next, ratchet_resume_secret(kSecret, kKeying));
  auto other_keying = kKeying;
  other_keying[5] ^= std::byte{1};
  EXPECT_NE(next, ratchet_resume_secret(kSecret, other_keying));
  // A second ratchet moves on again; no value repeats.
  const Secret after = ratchet_resume_secret(next, kKeying);
  EXPECT_NE(after, next);
  EXPECT_NE(after, kSecret);
  // The proof made with the old secret is not the proof made with the new one.
  EXPECT_NE(resume_proof(kSecret, Role::kClient, kSessionId, kKeying),
            resume_proof(next, Role::kClient, kSessionId, kKeying));
}

TEST(KeySchedule, StatelessResetTokenDependsOnStaticKeyAndSessionId) {
  const Secret token = stateless_reset_token(kStaticKey, kSessionId);
  EXPECT_EQ(token, from_hex("97b1a3847a0d6c7731a06e05a22eb1a6a85cbe17ec10288763e48e3e904febfe"));
  EXPECT_EQ(token, stateless_reset_token(kStaticKey, kSessionId));
  Secret other_key = kStaticKey;
  other_key[31] ^= std::byte{1};
  EXPECT_NE(token, stateless_reset_token(other_key, kSessionId));
  SessionId other_id = kSessionId;
  other_id[7] ^= std::byte{1};
  EXPECT_NE(token, stateless_reset_token(kStaticKey, other_id));
}

}  // namespace
}  // namespace tether::session
