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

Reason reason_for(AuthenticationFailure failure) {
  switch (failure) {
    case AuthenticationFailure::kCredentialExpired:
      return Reason::kCredentialsExpired;
    case AuthenticationFailure::kNotPermitted:
      return Reason::kAdministrativelyProhibited;
    default:
      return Reason::kAuthFailed;
  }
}

}  // namespace tether::session
