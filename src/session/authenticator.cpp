#include "session/authenticator.hpp"

namespace tether::session {

std::string_view to_string(AuthenticationFailure failure) {
  switch (failure) {
    case AuthenticationFailure::kBadCredentials:
      return "bad-credentials";
    case AuthenticationFailure::kCredentialExpired:
      return "credential-expired";
    case AuthenticationFailure::kNotPermitted:
      return "not-permitted";
    case AuthenticationFailure::kUnsupportedMechanism:
      return "unsupported-mechanism";
    case AuthenticationFailure::kMalformed:
      return "malformed";
    case AuthenticationFailure::kThrottled:
      return "throttled";
    case AuthenticationFailure::kUnavailable:
      return "unavailable";
  }
  return "unknown";
}

}  // namespace tether::session
