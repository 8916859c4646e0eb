#include "tunnel/grants.hpp"

namespace tether::tunnel {

Expected<Grants::Rule, std::string> Grants::parse_rule(std::string_view option,
                                                       std::string_view text) {
  const auto equals = text.find('=');
  if (equals == std::string_view::npos || equals == 0 || equals + 1 == text.size()) {
    return make_unexpected(std::string(option) + " '" + std::string(text) +
                           "': write WHO=PATTERN (WHO a user or @GROUP)");
  }
  return Rule{std::string(text.substr(0, equals)), std::string(text.substr(equals + 1))};
}

Expected<void, std::string> Grants::add_connect(std::string_view text) {
  auto rule = parse_rule("--grant", text);
  if (!rule) return make_unexpected(rule.error());
  ConnectAllowList check;
  if (auto added = check.add(rule->pattern); !added) {
    return make_unexpected("--grant " + std::string(text) + ": " + added.error());
  }
  connect_rules_.push_back(std::move(*rule));
  return {};
}

Expected<void, std::string> Grants::add_listen(std::string_view text) {
  auto rule = parse_rule("--grant-listen", text);
  if (!rule) return make_unexpected(rule.error());
  ListenAllowList check;
  if (auto added = check.add(rule->pattern); !added) {
    return make_unexpected("--grant-listen " + std::string(text) + ": " + added.error());
  }
  listen_rules_.push_back(std::move(*rule));
  return {};
}

Expected<void, std::string> Grants::add_group(std::string_view text) {
  const auto equals = text.find('=');
  if (equals == std::string_view::npos || equals == 0) {
    return make_unexpected("--group '" + std::string(text) + "': write GROUP=USER,USER...");
  }
  auto& members = groups_[std::string(text.substr(0, equals))];
  std::string_view rest = text.substr(equals + 1);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view member = rest.substr(0, comma);
    if (!member.empty()) members.emplace(member);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return {};
}

bool Grants::applies(const Rule& rule, const std::string& principal) const {
  if (principal.empty()) return false;
  if (rule.who.starts_with('@')) {
    auto group = groups_.find(std::string_view(rule.who).substr(1));
    return group != groups_.end() && group->second.contains(principal);
  }
  return rule.who == principal;
}

std::optional<PrincipalGrant> Grants::for_peer(const session::AuthenticatedPeer& peer,
                                               std::vector<std::string>* ignored) const {
  if (!enforced()) return std::nullopt;
  PrincipalGrant grant;
  for (const Rule& rule : connect_rules_) {
    if (applies(rule, peer.principal) && grant.connect.add(rule.pattern)) grant.any_connect = true;
  }
  for (const Rule& rule : listen_rules_) {
    if (applies(rule, peer.principal) && grant.listen.add(rule.pattern)) grant.any_listen = true;
  }
  for (const std::string& scope : peer.scopes) {
    const std::string_view text = scope;
    bool added = false;
    if (text.starts_with(kConnectScope)) {
      added = grant.connect.add(text.substr(kConnectScope.size())).has_value();
      grant.any_connect |= added;
    } else if (text.starts_with(kListenScope)) {
      added = grant.listen.add(text.substr(kListenScope.size())).has_value();
      grant.any_listen |= added;
    } else {
      continue;  // another service's scope: not ours to read
    }
    if (!added && ignored != nullptr) ignored->push_back(scope);
  }
  return grant;
}

}  // namespace tether::tunnel
