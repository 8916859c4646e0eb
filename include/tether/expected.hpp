// tether::Expected is the one result type for every operation whose failure a peer or a user can
// cause.
#pragma once

#include <tl/expected.hpp>

namespace tether {

// tl::expected stands in for std::expected (missing from clang 14 with libstdc++ 12). Everything in
// tether spells it through this alias so that a later move to std::expected touches one file.
template <typename Value, typename Error>
using Expected = tl::expected<Value, Error>;

template <typename Error>
using Unexpected = tl::unexpected<Error>;

template <typename Error>
[[nodiscard]] constexpr Unexpected<Error> make_unexpected(Error error) {
  return Unexpected<Error>(std::move(error));
}

}  // namespace tether
