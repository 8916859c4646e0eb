#include "auth/oauthbearer.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>
#include <set>

#include "auth/base64url.hpp"

namespace tether::auth {

namespace {

using session::AuthenticationFailure;
using session::AuthenticationStep;

constexpr std::string_view kName = "OAUTHBEARER";
constexpr char kSeparator = '\x01';
constexpr std::size_t kMaxPairs = 16;
constexpr std::size_t kMaxChallengeSize = 4096;

std::string_view as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::vector<std::byte> to_bytes(std::string_view text) {
  const auto view = std::as_bytes(std::span<const char>(text.data(), text.size()));
  return {view.begin(), view.end()};
}

std::string prefixed(std::string_view message) {
  return std::string(kName) + ": " + std::string(message);
}

// RFC 7628 value: *(VCHAR / SP / HTAB / CR / LF).
bool valid_value(std::string_view value) {
  return std::all_of(value.begin(), value.end(), [](char character) {
    const auto byte = static_cast<unsigned char>(character);
    return (byte >= 0x20 && byte <= 0x7e) || byte == '\t' || byte == '\r' || byte == '\n';
  });
}

// RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
bool valid_b64token(std::string_view token) {
  std::size_t body = 0;
  while (body < token.size()) {
    const auto byte = static_cast<unsigned char>(token[body]);
    if (!(std::isalnum(byte) || byte == '-' || byte == '.' || byte == '_' || byte == '~' ||
          byte == '+' || byte == '/'))
      break;
    ++body;
  }
  if (body == 0) return false;
  return std::all_of(token.begin() + static_cast<std::ptrdiff_t>(body), token.end(),
                     [](char character) { return character == '='; });
}

// GS2 saslname (RFC 5801): '=' only in =2C (',') and =3D ('='); NUL and \x01 are refused too.
Expected<std::string, std::string> unescape_authzid(std::string_view text) {
  if (text.empty()) return make_unexpected(std::string("empty authzid after a="));
  std::string result;
  for (std::size_t index = 0; index < text.size(); ++index) {
    const char character = text[index];
    if (character == '\0' || character == kSeparator)
      return make_unexpected(std::string("control byte in the authzid"));
    if (character != '=') {
      result += character;
      continue;
    }
    const std::string_view escape = text.substr(index + 1, 2);
    if (escape == "2C")
      result += ',';
    else if (escape == "3D")
      result += '=';
    else
      return make_unexpected(std::string("'=' in the authzid not followed by 2C or 3D"));
    index += 2;
  }
  return result;
}

bool equals_ignoring_case(std::string_view left, std::string_view right) {
  return left.size() == right.size() &&
         std::equal(left.begin(), left.end(), right.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         });
}

AuthenticationFailure failure_for(TokenError error) {
  switch (error) {
    case TokenError::kExpired:
    case TokenError::kNotYetValid:
      return AuthenticationFailure::kCredentialExpired;
    case TokenError::kMissingScope:
      return AuthenticationFailure::kNotPermitted;
    case TokenError::kNoKeys:
      return AuthenticationFailure::kUnavailable;
    default:
      return AuthenticationFailure::kBadCredentials;
  }
}

void wipe(std::string& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

}  // namespace

Expected<OAuthBearerClientMessage, std::string> parse_oauthbearer_client_message(
    std::span<const std::byte> message, std::size_t max_size) {
  const std::string_view text = as_text(message);
  auto malformed = [](std::string why) { return make_unexpected(std::move(why)); };
  if (text.size() > max_size)
    return malformed("message of " + std::to_string(text.size()) + " bytes (at most " +
                     std::to_string(max_size) + ")");
  if (text.empty()) return malformed("empty message");
  if (text[0] == 'y' || text[0] == 'p')
    return malformed(
        "GS2 header asks for channel binding, which OAUTHBEARER does not have (only \"n\")");
  if (text.substr(0, 2) != "n,") return malformed("malformed GS2 header (expected \"n,\")");
  OAuthBearerClientMessage fields;
  std::size_t position = 2;
  if (text.substr(position, 2) == "a=") {
    const std::size_t end = text.find(',', position + 2);
    if (end == std::string_view::npos) return malformed("malformed GS2 header (unterminated a=)");
    auto authzid = unescape_authzid(text.substr(position + 2, end - position - 2));
    if (!authzid) return malformed("malformed GS2 header: " + authzid.error());
    fields.authorization_identity = std::move(*authzid);
    position = end;
  }
  if (text.substr(position, 1) != ",") return malformed("malformed GS2 header");
  ++position;
  if (text.substr(position, 1) != std::string_view(&kSeparator, 1))
    return malformed("no \\x01 after the GS2 header");
  ++position;

  std::set<std::string, std::less<>> keys;
  std::optional<std::string_view> auth;
  while (true) {
    if (position >= text.size()) return malformed("message does not end with \\x01\\x01");
    if (text[position] == kSeparator) {
      if (position + 1 != text.size()) return malformed("bytes after the final \\x01\\x01");
      break;
    }
    const std::size_t end = text.find(kSeparator, position);
    if (end == std::string_view::npos) return malformed("unterminated key=value pair");
    const std::string_view pair = text.substr(position, end - position);
    const std::size_t equals = pair.find('=');
    if (equals == std::string_view::npos || equals == 0) return malformed("pair without a key=");
    const std::string_view key = pair.substr(0, equals);
    const std::string_view value = pair.substr(equals + 1);
    if (!std::all_of(key.begin(), key.end(), [](char character) {
          return std::isalpha(static_cast<unsigned char>(character));
        }))
      return malformed("key with characters other than letters");
    if (!valid_value(value)) return malformed("value with control bytes");
    if (keys.size() >= kMaxPairs)
      return malformed("more than " + std::to_string(kMaxPairs) + " pairs");
    if (!keys.emplace(key).second) return malformed("key given twice");
    if (key == "auth")
      auth = value;
    else if (key == "host")
      fields.host = std::string(value);
    else if (key == "port")
      fields.port = std::string(value);
    position = end + 1;
  }
  if (!auth) return malformed("no auth=");
  const std::size_t space = auth->find(' ');
  if (space == std::string_view::npos || !equals_ignoring_case(auth->substr(0, space), "Bearer"))
    return malformed("auth= is not \"Bearer <token>\"");
  std::string_view token = auth->substr(space);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  if (!valid_b64token(token)) return malformed("the bearer token is not a b64token");
  fields.token = std::string(token);
  return fields;
}

Expected<std::vector<std::byte>, std::string> build_oauthbearer_client_message(
    const OAuthBearerClientMessage& fields) {
  if (!valid_b64token(fields.token))
    return make_unexpected(std::string("the token is not a b64token (RFC 6750)"));
  if (!valid_value(fields.host) || !valid_value(fields.port))
    return make_unexpected(std::string("host or port holds control bytes"));
  std::string text = "n,";
  if (!fields.authorization_identity.empty()) {
    text += "a=";
    for (const char character : fields.authorization_identity) {
      if (character == '\0' || character == kSeparator)
        return make_unexpected(std::string("control byte in the authzid"));
      if (character == ',')
        text += "=2C";
      else if (character == '=')
        text += "=3D";
      else
        text += character;
    }
  }
  text += ',';
  text += kSeparator;
  if (!fields.host.empty()) (text += "host=" + fields.host) += kSeparator;
  if (!fields.port.empty()) (text += "port=" + fields.port) += kSeparator;
  text += "auth=Bearer ";
  text += fields.token;
  text += kSeparator;
  text += kSeparator;
  auto bytes = to_bytes(text);
  wipe(text);
  return bytes;
}

std::vector<std::byte> oauthbearer_error_challenge(std::string_view status,
                                                   std::string_view scope) {
  nlohmann::json error = {{"status", std::string(status)}};
  if (!scope.empty()) error["scope"] = std::string(scope);
  return to_bytes(error.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

// ---- Server ----

OAuthBearerServer::OAuthBearerServer(std::shared_ptr<const TokenVerifier> verifier,
                                     std::shared_ptr<const TokenDenyList> deny_list)
    : verifier_(std::move(verifier)), deny_list_(std::move(deny_list)) {}

AuthenticationStep OAuthBearerServer::finished(AuthenticationStep step) {
  if (step.status != AuthenticationStep::Status::kContinue) state_ = State::kDone;
  step.claimed_identity = claimed_identity_;
  return step;
}

AuthenticationStep OAuthBearerServer::start(
    std::optional<std::span<const std::byte>> initial_response) {
  if (state_ != State::kAwaitingMessage || !verifier_)
    return finished(AuthenticationStep::fail(AuthenticationFailure::kMalformed,
                                             prefixed("exchange already started")));
  // No initial response: an empty challenge asks for the client message (RFC 4422 section 5).
  if (!initial_response) return finished(AuthenticationStep::proceed({}));
  return handle_message(*initial_response);
}

AuthenticationStep OAuthBearerServer::step(std::span<const std::byte> input) {
  switch (state_) {
    case State::kAwaitingMessage:
      return handle_message(input);
    case State::kAwaitingAcknowledgement:
      if (input.size() == 1 && input[0] == std::byte{0x01})
        return finished(AuthenticationStep::fail(pending_failure_, pending_message_));
      return finished(AuthenticationStep::fail(
          AuthenticationFailure::kMalformed,
          prefixed("the answer to the error challenge is not a lone \\x01")));
    case State::kDone:
      break;
  }
  return finished(
      AuthenticationStep::fail(AuthenticationFailure::kMalformed, prefixed("exchange is over")));
}

AuthenticationStep OAuthBearerServer::refuse(std::string_view status, std::string_view scope,
                                             AuthenticationFailure failure, std::string message) {
  state_ = State::kAwaitingAcknowledgement;
  pending_failure_ = failure;
  pending_message_ = prefixed(message);
  return finished(AuthenticationStep::proceed(oauthbearer_error_challenge(status, scope)));
}

AuthenticationStep OAuthBearerServer::handle_message(std::span<const std::byte> message) {
  const std::size_t max_size =
      std::max(kMaxOAuthBearerMessageSize, verifier_->policy().max_token_size + 1024);
  auto fields = parse_oauthbearer_client_message(message, max_size);
  if (!fields)
    return finished(
        AuthenticationStep::fail(AuthenticationFailure::kMalformed, prefixed(fields.error())));
  claimed_identity_ = fields->authorization_identity;
  auto verified = verifier_->verify(fields->token);
  wipe(fields->token);
  if (!verified) {
    const bool scope = verified.error().error == TokenError::kMissingScope;
    return refuse(scope ? "insufficient_scope" : "invalid_token",
                  scope ? std::string_view(verifier_->policy().required_scope) : std::string_view(),
                  failure_for(verified.error().error), verified.error().message);
  }
  if (!fields->authorization_identity.empty() &&
      fields->authorization_identity != verified->principal)
    return refuse("invalid_request", {}, AuthenticationFailure::kNotPermitted,
                  "authorization identity \"" + escape_peer_text(fields->authorization_identity) +
                      "\" is not the token's subject \"" + escape_peer_text(verified->principal) +
                      "\"");
  claimed_identity_ = verified->principal;
  if (deny_list_ != nullptr && !verified->token_id.empty() &&
      deny_list_->contains(verified->token_id))
    return refuse("invalid_token", {}, AuthenticationFailure::kBadCredentials,
                  "token \"" + escape_peer_text(verified->token_id) + "\" is revoked");
  AuthenticationStep success;
  success.status = AuthenticationStep::Status::kSucceeded;
  success.principal = verified->principal;
  success.scopes = std::move(verified->scopes);
  success.credential_id = std::move(verified->token_id);
  success.credential_lifetime = verified->lifetime;  // never negative
  return finished(std::move(success));
}

// ---- Client ----

OAuthBearerClient::OAuthBearerClient(TokenProvider provider, std::string authorization_identity,
                                     std::string host, std::string port)
    : provider_(std::move(provider)),
      authorization_identity_(std::move(authorization_identity)),
      host_(std::move(host)),
      port_(std::move(port)) {}

std::string OAuthBearerClient::mechanism() const {
  return std::string(kName);
}

AuthenticationStep OAuthBearerClient::start() {
  if (state_ != State::kInitial)
    return AuthenticationStep::fail(AuthenticationFailure::kMalformed,
                                    prefixed("exchange already started"));
  state_ = State::kDone;
  if (!provider_)
    return AuthenticationStep::fail(AuthenticationFailure::kUnavailable,
                                    prefixed("no token source"));
  auto token = provider_();
  if (!token)
    return AuthenticationStep::fail(AuthenticationFailure::kUnavailable,
                                    prefixed("cannot get a token: " + token.error()));
  while (!token->empty() && std::isspace(static_cast<unsigned char>(token->back())))
    token->pop_back();
  OAuthBearerClientMessage fields{authorization_identity_, std::move(*token), host_, port_};
  auto message = build_oauthbearer_client_message(fields);
  wipe(fields.token);
  if (!message)
    return AuthenticationStep::fail(AuthenticationFailure::kMalformed, prefixed(message.error()));
  state_ = State::kSent;
  return AuthenticationStep::proceed(std::move(*message));
}

AuthenticationStep OAuthBearerClient::step(std::span<const std::byte> challenge) {
  if (state_ != State::kSent) {
    state_ = State::kDone;
    return AuthenticationStep::fail(AuthenticationFailure::kMalformed,
                                    prefixed("unexpected server challenge"));
  }
  state_ = State::kDone;
  if (challenge.size() > kMaxChallengeSize)
    return AuthenticationStep::fail(AuthenticationFailure::kMalformed,
                                    prefixed("server challenge too large"));
  auto error = parse_bounded_json(as_text(challenge), 4);
  if (!error || !error->is_object() || !error->contains("status") ||
      !(*error)["status"].is_string())
    return AuthenticationStep::fail(AuthenticationFailure::kMalformed,
                                    prefixed("server challenge is not an error status"));
  server_status_ = (*error)["status"].get<std::string>();
  if (error->contains("scope") && (*error)["scope"].is_string())
    server_scope_ = (*error)["scope"].get<std::string>();
  state_ = State::kAcknowledged;
  return AuthenticationStep::proceed({std::byte{0x01}});
}

AuthenticationStep OAuthBearerClient::finish(std::span<const std::byte> server_final) {
  const State state = state_;
  state_ = State::kDone;
  if (state == State::kAcknowledged)
    return AuthenticationStep::fail(AuthenticationFailure::kMalformed,
                                    prefixed("the server accepted after refusing the token"));
  if (state != State::kSent)
    return AuthenticationStep::fail(AuthenticationFailure::kMalformed,
                                    prefixed("exchange not in progress"));
  if (!server_final.empty())
    return AuthenticationStep::fail(AuthenticationFailure::kMalformed,
                                    prefixed("unexpected data in the server's final message"));
  AuthenticationStep success;
  success.status = AuthenticationStep::Status::kSucceeded;
  return success;
}

std::string OAuthBearerClient::server_error_message() const {
  if (!server_status_) return {};
  std::string message =
      prefixed("the server refused the token (" + escape_peer_text(*server_status_));
  if (!server_scope_.empty()) message += ", scope \"" + escape_peer_text(server_scope_) + "\"";
  return message + ")";
}

}  // namespace tether::auth
