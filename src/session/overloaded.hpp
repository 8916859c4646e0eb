// Overloaded is a visitor built from lambdas, one per alternative, for std::visit.
#pragma once

namespace tether::session {

template <typename... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace tether::session
