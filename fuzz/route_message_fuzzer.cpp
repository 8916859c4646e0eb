// Fuzzes the rtnetlink parser: every input must parse to events or a located error without reading
// outside it, the result must not depend on the input's alignment, every event must survive an
// encode/parse round trip, and a prefix of the input can only give an error or a prefix of the
// events.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "fuzz_check.hpp"
#include "transport/route_monitor.hpp"

namespace {

using namespace tether::transport::netlink;

using Result = tether::Expected<std::vector<RouteMessageEvent>, RouteMessageError>;

bool same_result(const Result& first, const Result& second) {
  if (first.has_value() != second.has_value()) return false;
  if (first) return *first == *second;
  return first.error().detail == second.error().detail &&
         first.error().offset == second.error().offset &&
         first.error().kernel_error == second.error().kernel_error;
}

void check_address(const IpAddress& address) {
  FUZZ_CHECK(address.family == AddressFamily::kIpv4 || address.family == AddressFamily::kIpv6);
  if (address.family == AddressFamily::kIpv4) {
    FUZZ_CHECK(std::all_of(address.bytes.begin() + 4, address.bytes.end(),
                           [](std::uint8_t byte) { return byte == 0; }));
  }
}

void check_event(const RouteMessageEvent& event) {
  if (const auto* added = std::get_if<AddressAdded>(&event)) check_address(added->address);
  if (const auto* removed = std::get_if<AddressRemoved>(&event)) check_address(removed->address);
  if (const auto* route = std::get_if<DefaultRouteChanged>(&event)) {
    if (route->gateway) {
      check_address(*route->gateway);
      FUZZ_CHECK(route->gateway->family == route->family);
    }
  }
  // The encoder writes what the parser reads: the event comes back unchanged.
  std::vector<std::byte> encoded;
  encode_route_message(event, encoded);
  FUZZ_CHECK(encoded.size() % 4 == 0);
  const auto again = parse_route_messages(encoded);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->size() == 1);
  FUZZ_CHECK(again->front() == event);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  const Result result = parse_route_messages(input);
  if (!result) {
    FUZZ_CHECK(!result.error().detail.empty());
    FUZZ_CHECK(result.error().offset <= size);
  } else {
    for (const auto& event : *result) check_event(event);
  }

  // The same bytes one past an aligned address parse the same way.
  std::vector<std::byte> shifted(1);
  shifted.insert(shifted.end(), input.begin(), input.end());
  FUZZ_CHECK(same_result(result, parse_route_messages(std::span(shifted).subspan(1))));

  // A prefix ends inside a message (an error) or between messages (a prefix of the events).
  if (result) {
    const std::size_t step = std::max<std::size_t>(1, size / 64);
    for (std::size_t length = 0; length < size; length += step) {
      const auto prefix = parse_route_messages(input.first(length));
      if (!prefix) continue;
      FUZZ_CHECK(prefix->size() <= result->size());
      FUZZ_CHECK(std::equal(prefix->begin(), prefix->end(), result->begin()));
    }
  }
  return 0;
}
