// Tests of ResumeState: proofs bound to the connection, the ratchet, the previous secret the server
// still accepts, and the stateless-reset token check.
#include "session/resume_state.hpp"

#include <gtest/gtest.h>

namespace tether::session {
namespace {

const SessionId kId{std::byte{1}, std::byte{2}, std::byte{3}};
const std::vector<std::byte> kCreated(32, std::byte{9});
const std::vector<std::byte> kFirst(32, std::byte{10});
const std::vector<std::byte> kSecond(32, std::byte{11});

TEST(ResumeState, ClientAndServerAgreeAndRatchet) {
  ResumeState client;
  ResumeState server;
  client.establish(kId, kCreated);
  server.establish(kId, kCreated);
  const Secret proof = client.client_proof(kId, kFirst);
  const auto base = server.match_client_proof(kId, kFirst, proof);
  ASSERT_TRUE(base);
  const Secret answer = server.accept_client(*base, kId, kFirst);
  EXPECT_TRUE(client.accept_server_proof(kId, kFirst, answer));
  // Both ratcheted: the next resume works with the new secret.
  const Secret next = client.client_proof(kId, kSecond);
  EXPECT_NE(next, proof);
  EXPECT_TRUE(server.match_client_proof(kId, kSecond, next));
}

TEST(ResumeState, ProofIsBoundToItsConnection) {
  ResumeState client;
  ResumeState server;
  client.establish(kId, kCreated);
  server.establish(kId, kCreated);
  EXPECT_FALSE(server.match_client_proof(kId, kSecond, client.client_proof(kId, kFirst)));
}

TEST(ResumeState, ServerAcceptsThePreviousSecretOnceForALostAccept) {
  ResumeState client;
  ResumeState server;
  client.establish(kId, kCreated);
  server.establish(kId, kCreated);
  const auto base = server.match_client_proof(kId, kFirst, client.client_proof(kId, kFirst));
  ASSERT_TRUE(base);
  (void)server.accept_client(*base, kId, kFirst);  // the client never sees this ResumeAccept
  const Secret retry = client.client_proof(kId, kSecond);
  const auto previous = server.match_client_proof(kId, kSecond, retry);
  ASSERT_TRUE(previous);
  const Secret answer = server.accept_client(*previous, kId, kSecond);
  EXPECT_TRUE(client.accept_server_proof(kId, kSecond, answer));
}

TEST(ResumeState, ForgedServerProofChangesNothing) {
  ResumeState client;
  client.establish(kId, kCreated);
  const Secret before = client.client_proof(kId, kFirst);
  EXPECT_FALSE(client.accept_server_proof(kId, kFirst, Secret{}));
  EXPECT_EQ(client.client_proof(kId, kFirst), before);
}

TEST(ResumeState, CloseKeysAreCrossedBetweenRoles) {
  ResumeState state;
  state.establish(kId, kCreated);
  EXPECT_EQ(state.own_close_key(Role::kClient), state.peer_close_key(Role::kServer));
  EXPECT_NE(state.own_close_key(Role::kClient), state.own_close_key(Role::kServer));
}

TEST(ResumeState, ResetMustCarryTheSessionAndItsToken) {
  ResumeState state;
  Secret token{};
  token[0] = std::byte{42};
  state.set_reset_token(token);
  EXPECT_TRUE(state.reset_matches(kId, kId, token));
  EXPECT_FALSE(state.reset_matches(SessionId{}, kId, token));
  EXPECT_FALSE(state.reset_matches(kId, kId, Secret{}));
}

}  // namespace
}  // namespace tether::session
