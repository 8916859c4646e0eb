// Grants say which targets (and which -R listen addresses) each authenticated principal may use:
// per user, per group of users, and per token scope; the server's --allow and --allow-listen stay
// the ceiling.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "session/authenticator.hpp"
#include "tether/expected.hpp"
#include "tunnel/allow_list.hpp"

namespace tether::tunnel {

// What one principal may use: its own connect and listen patterns (checked together with the
// server's lists: both must allow).
struct PrincipalGrant {
  ConnectAllowList connect;
  ListenAllowList listen;
  bool any_connect = false;  // at least one connect pattern
  bool any_listen = false;
};

class Grants {
 public:
  // Token scopes that grant by themselves: "tether:connect:HOST:PORTS" and
  // "tether:listen:ADDRESS:PORTS" (HOST:PORTS written as for --allow).
  static constexpr std::string_view kConnectScope = "tether:connect:";
  static constexpr std::string_view kListenScope = "tether:listen:";

  // Adds `--grant WHO=PATTERN` (connect) or `--grant-listen WHO=PATTERN` (listen). WHO is a user
  // name or @GROUP. The error says what is wrong.
  Expected<void, std::string> add_connect(std::string_view text);
  Expected<void, std::string> add_listen(std::string_view text);
  // Adds `--group GROUP=USER,USER...`.
  Expected<void, std::string> add_group(std::string_view text);

  // Grants are enforced once any is configured; otherwise every session may use the server's
  // lists whole (as with --auth none).
  [[nodiscard]] bool enforced() const { return !connect_rules_.empty() || !listen_rules_.empty(); }

  // What `peer` may use: its user's grants, its groups', and its token scopes'. nullopt when
  // grants are not enforced. Scope patterns that do not parse are ignored (and named in `ignored`).
  [[nodiscard]] std::optional<PrincipalGrant> for_peer(
      const session::AuthenticatedPeer& peer, std::vector<std::string>* ignored = nullptr) const;

 private:
  struct Rule {
    std::string who;  // a user, or @group
    std::string pattern;
  };
  static Expected<Rule, std::string> parse_rule(std::string_view option, std::string_view text);
  [[nodiscard]] bool applies(const Rule& rule, const std::string& principal) const;

  std::vector<Rule> connect_rules_;
  std::vector<Rule> listen_rules_;
  std::map<std::string, std::set<std::string>, std::less<>> groups_;  // group -> users
};

}  // namespace tether::tunnel
