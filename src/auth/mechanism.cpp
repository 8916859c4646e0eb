#include "auth/mechanism.hpp"

namespace tether::auth {

std::string_view name(Mechanism mechanism) {
  switch (mechanism) {
    case Mechanism::kScramSha256Plus:
      return "SCRAM-SHA-256-PLUS";
    case Mechanism::kScramSha256:
      return "SCRAM-SHA-256";
    case Mechanism::kPlain:
      return "PLAIN";
    case Mechanism::kOAuthBearer:
      return "OAUTHBEARER";
    case Mechanism::kExternal:
      return "EXTERNAL";
  }
  return "";
}

std::optional<Mechanism> mechanism_named(std::string_view text) {
  for (Mechanism mechanism : {Mechanism::kScramSha256Plus, Mechanism::kScramSha256,
                              Mechanism::kPlain, Mechanism::kOAuthBearer, Mechanism::kExternal}) {
    if (name(mechanism) == text) return mechanism;
  }
  return std::nullopt;
}

bool sends_replayable_secret(Mechanism mechanism) {
  return mechanism == Mechanism::kPlain || mechanism == Mechanism::kOAuthBearer;
}

}  // namespace tether::auth
