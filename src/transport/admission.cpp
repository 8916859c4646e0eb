#include "transport/admission.hpp"

#include <cstdio>

namespace tether::transport {

bool ConnectionAdmission::try_admit(const std::string& source) {
  if (total_ >= limits_.total) return false;
  auto it = per_source_.find(source);
  if (it != per_source_.end() && it->second >= limits_.per_source) return false;
  if (it == per_source_.end()) it = per_source_.emplace(source, 0).first;
  ++it->second;
  ++total_;
  return true;
}

void ConnectionAdmission::release(const std::string& source) {
  auto it = per_source_.find(source);
  if (it == per_source_.end()) return;  // not admitted: nothing to give back
  if (--it->second == 0) per_source_.erase(it);
  --total_;
}

std::size_t ConnectionAdmission::pending_from(std::string_view source) const {
  auto it = per_source_.find(source);
  return it == per_source_.end() ? 0 : it->second;
}

std::string source_key(const asio::ip::address& address) {
  if (address.is_v4()) return address.to_v4().to_string();
  const asio::ip::address_v6 v6 = address.to_v6();
  if (v6.is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  }
  const auto bytes = v6.to_bytes();
  std::string key;
  for (std::size_t index = 0; index < 8; index += 2) {
    char group[8];
    std::snprintf(
        group, sizeof group, "%x:",
        (static_cast<unsigned>(bytes[index]) << 8) | static_cast<unsigned>(bytes[index + 1]));
    key += group;
  }
  key += ":/64";
  return key;
}

}  // namespace tether::transport
