// The OAUTHBEARER SASL mechanism (RFC 7628) with a JWS bearer token: the client message's framing
// (parse and build), the server's exchange (verification through a TokenVerifier, and the RFC's
// error flow) and the client's exchange.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwt.hpp"
#include "auth/token_deny_list.hpp"
#include "session/authenticator.hpp"
#include "tether/expected.hpp"

namespace tether::auth {

// The client's message (RFC 7628 section 3.1): GS2 header, then key=value pairs separated by
// \x01 and ended by \x01\x01.
struct OAuthBearerClientMessage {
  std::string authorization_identity;  // the GS2 a= (unescaped); empty when absent
  std::string token;                   // the b64token after "auth=Bearer "
  std::string host;                    // host=, empty when absent
  std::string port;                    // port=, empty when absent
};

// Default bound on a client message: a maximal token (8 KiB) and room for the rest.
inline constexpr std::size_t kMaxOAuthBearerMessageSize = 9 * 1024;

// Parses a client message. Refused, with the reason: more than `max_size` bytes; a GS2 header other
// than "n,," or "n,a=<authzid>," (the flags y and p ask for channel binding, which OAUTHBEARER does
// not have); an authzid with '=' other than =2C / =3D, or with NUL or \x01; a pair whose key is not
// letters or whose value holds bytes outside VCHAR, SP, HTAB, CR, LF; a key given twice; more than
// 16 pairs; no "auth" pair, or one that is not "Bearer" (case-insensitive) followed by a b64token;
// anything after the final \x01\x01. Unknown keys are ignored, as the RFC says.
[[nodiscard]] Expected<OAuthBearerClientMessage, std::string> parse_oauthbearer_client_message(
    std::span<const std::byte> message, std::size_t max_size = kMaxOAuthBearerMessageSize);

// The message for `fields`; an error when a field holds what the syntax cannot carry (a token that
// is not a b64token, control bytes in host or port, NUL or \x01 in the authzid).
[[nodiscard]] Expected<std::vector<std::byte>, std::string> build_oauthbearer_client_message(
    const OAuthBearerClientMessage& fields);

// The server's error challenge (RFC 7628 section 3.2.2): {"status":STATUS} and "scope" when given.
[[nodiscard]] std::vector<std::byte> oauthbearer_error_challenge(std::string_view status,
                                                                 std::string_view scope = {});

// The server side of one OAUTHBEARER exchange. Offer it only on confidential connections (a bearer
// token is a replayable secret); the ServerAuthenticator decides that.
//
// The client message is verified at once. Success: kSucceeded with principal = sub, the token's
// scopes, credential_id = jti and credential_lifetime = exp - now (zero if already past). A token
// whose jti the deny list holds is refused (invalid_token; kBadCredentials, "token ... is
// revoked"). An authzid is accepted only
// when it equals sub. Any refusal of a well-formed message follows the RFC's error flow: a
// kContinue step carrying the JSON error (status "invalid_token", "insufficient_scope" with the
// required scope, or "invalid_request" for an authzid that is not the subject); the client's lone
// \x01 then yields kFailed with the failure kind and a message naming the cause. A malformed
// message, or anything other than \x01 as the acknowledgement, is kFailed kMalformed at once.
class OAuthBearerServer final : public session::ServerAuthentication {
 public:
  explicit OAuthBearerServer(std::shared_ptr<const TokenVerifier> verifier,
                             std::shared_ptr<const TokenDenyList> deny_list = nullptr);

  session::AuthenticationStep start(
      std::optional<std::span<const std::byte>> initial_response) override;
  session::AuthenticationStep step(std::span<const std::byte> input) override;

 private:
  enum class State : unsigned char { kAwaitingMessage, kAwaitingAcknowledgement, kDone };

  session::AuthenticationStep handle_message(std::span<const std::byte> message);
  session::AuthenticationStep refuse(std::string_view status, std::string_view scope,
                                     session::AuthenticationFailure failure, std::string message);
  session::AuthenticationStep finished(session::AuthenticationStep step);

  std::shared_ptr<const TokenVerifier> verifier_;
  std::shared_ptr<const TokenDenyList> deny_list_;  // null: no deny list
  State state_ = State::kAwaitingMessage;
  session::AuthenticationFailure pending_failure_ = session::AuthenticationFailure::kMalformed;
  std::string pending_message_;
  std::string claimed_identity_;
};

// The client side of one OAUTHBEARER exchange. The token comes from `provider` at start() (so a
// token file or command is read for each exchange); trailing whitespace is trimmed.
class OAuthBearerClient final : public session::ClientAuthentication {
 public:
  using TokenProvider = std::function<Expected<std::string, std::string>()>;

  explicit OAuthBearerClient(TokenProvider provider, std::string authorization_identity = {},
                             std::string host = {}, std::string port = {});

  [[nodiscard]] std::string mechanism() const override;
  // kContinue with the client message; kFailed kUnavailable when the provider fails, kMalformed
  // when its token cannot be sent (not a b64token).
  session::AuthenticationStep start() override;
  // The server's error challenge: remembers its status and answers \x01 (kContinue). A challenge
  // that is not a JSON object with a "status" string, or a second challenge, is kFailed kMalformed.
  session::AuthenticationStep step(std::span<const std::byte> challenge) override;
  // kSucceeded on an empty final message (OAUTHBEARER has no server proof); kFailed when the
  // server sent data, or accepted after reporting an error.
  session::AuthenticationStep finish(std::span<const std::byte> server_final) override;

  // The status of the server's error challenge ("invalid_token", ...), once step() read one.
  [[nodiscard]] const std::optional<std::string>& server_status() const { return server_status_; }
  // A message for the user about the server's error ("OAUTHBEARER: the server refused the token
  // (invalid_token)"), or empty when there was none. Server strings are escaped.
  [[nodiscard]] std::string server_error_message() const;

 private:
  enum class State : unsigned char { kInitial, kSent, kAcknowledged, kDone };

  TokenProvider provider_;
  std::string authorization_identity_;
  std::string host_;
  std::string port_;
  State state_ = State::kInitial;
  std::optional<std::string> server_status_;
  std::string server_scope_;
};

}  // namespace tether::auth
