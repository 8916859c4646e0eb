#include "transport/known_servers.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>
#include <utility>

#include "transport/file_safety.hpp"
#include "transport/tls.hpp"

namespace tether::transport {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kWhitespace = " \t";
constexpr std::size_t kMaxFileBytes = 16u << 20;

std::string lowercase(std::string_view text) {
  std::string lower(text);
  for (char& character : lower) {
    if (character >= 'A' && character <= 'Z') character = static_cast<char>(character - 'A' + 'a');
  }
  return lower;
}

std::string render(const std::string& host_port, const std::string& fingerprint) {
  return host_port + " " + fingerprint;
}

}  // namespace

Expected<std::string, std::string> normalize_host_port(std::string_view host_port) {
  const std::string quoted = "\"" + std::string(host_port) + "\"";
  if (host_port.empty()) return make_unexpected(std::string("the server name is empty"));
  if (host_port.find_first_of(" \t\r\n") != std::string_view::npos) {
    return make_unexpected(quoted + " contains whitespace; expected host:port");
  }
  const std::size_t colon = host_port.rfind(':');
  if (colon == std::string_view::npos) {
    return make_unexpected(quoted + " has no port; expected host:port");
  }
  const std::string_view host = host_port.substr(0, colon);
  const std::string_view port = host_port.substr(colon + 1);
  unsigned long port_number = 0;
  const bool digits_only = !port.empty() && port.size() <= 5 &&
                           port.find_first_not_of("0123456789") == std::string_view::npos;
  for (const char digit : digits_only ? port : std::string_view()) {
    port_number = port_number * 10 + static_cast<unsigned long>(digit - '0');
  }
  if (port_number == 0 || port_number > 65535) {
    return make_unexpected(quoted + " has no valid port (1-65535) after the last ':'");
  }
  if (host.empty() || host == "[]") return make_unexpected(quoted + " has an empty host");
  const bool bracketed = host.front() == '[';
  if (bracketed != (host.back() == ']') ||
      (bracketed &&
       host.substr(1, host.size() - 2).find_first_of("[]") != std::string_view::npos) ||
      (!bracketed && host.find_first_of("[]") != std::string_view::npos)) {
    return make_unexpected(quoted + " has unbalanced brackets");
  }
  if (!bracketed && host.find(':') != std::string_view::npos) {
    return make_unexpected(quoted + ": write an IPv6 address in brackets, as in [::1]:7000");
  }
  return lowercase(host_port);
}

std::string host_port(std::string_view host, std::uint16_t port) {
  std::string text;
  if (host.find(':') != std::string_view::npos && !host.starts_with('[')) {
    text = "[" + std::string(host) + "]";
  } else {
    text = std::string(host);
  }
  return lowercase(text) + ":" + std::to_string(port);
}

Expected<KnownServers, std::string> KnownServers::load(fs::path path) {
  if (path.empty()) {
    return make_unexpected(std::string(
        "no path for the known-servers file: set HOME or XDG_CONFIG_HOME, or name a file"));
  }
  KnownServers known(std::move(path));
  // Whoever can write this file decides which servers the client trusts.
  auto contents = read_trusted_file(known.path_, TrustedFileOptions{.max_bytes = kMaxFileBytes});
  if (!contents) return make_unexpected(contents.error());
  if (!contents->has_value()) return known;  // created by the first remember()
  const std::string name = known.path_.string();
  const std::string& text = **contents;

  std::size_t line_number = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

    const std::string where = name + " line " + std::to_string(line_number) + ": ";
    const std::size_t first = line.find_first_not_of(kWhitespace);
    if (first == std::string_view::npos || line[first] == '#') {
      known.lines_.push_back(Line{std::string(line), {}, {}});
      continue;
    }
    const std::size_t key_end = line.find_first_of(kWhitespace, first);
    const std::size_t value_start =
        key_end == std::string_view::npos ? key_end : line.find_first_not_of(kWhitespace, key_end);
    const std::size_t value_end = value_start == std::string_view::npos
                                      ? value_start
                                      : line.find_first_of(kWhitespace, value_start);
    if (value_start == std::string_view::npos ||
        (value_end != std::string_view::npos &&
         line.find_first_not_of(kWhitespace, value_end) != std::string_view::npos)) {
      return make_unexpected(where + "expected \"host:port sha256:HEX\", found \"" +
                             std::string(line) + "\"");
    }
    auto key = normalize_host_port(line.substr(first, key_end - first));
    if (!key) return make_unexpected(where + key.error());
    auto fingerprint = parse_fingerprint(line.substr(value_start, value_end - value_start));
    if (!fingerprint) return make_unexpected(where + fingerprint.error());
    for (std::size_t index = 0; index < known.lines_.size(); ++index) {
      if (known.lines_[index].host_port == *key) {
        return make_unexpected(where + *key + " is already listed on line " +
                               std::to_string(index + 1) + "; keep one of the two lines");
      }
    }
    known.lines_.push_back(Line{std::string(line), std::move(*key), std::move(*fingerprint)});
  }
  return known;
}

std::optional<std::string> KnownServers::lookup(std::string_view host_port) const {
  auto key = normalize_host_port(host_port);
  if (!key) return std::nullopt;
  for (const Line& line : lines_) {
    if (line.host_port == *key) return line.fingerprint;
  }
  return std::nullopt;
}

std::size_t KnownServers::size() const {
  std::size_t count = 0;
  for (const Line& line : lines_) count += line.host_port.empty() ? 0 : 1;
  return count;
}

Expected<void, std::string> KnownServers::remember(std::string_view host_port,
                                                   std::string_view fingerprint) {
  auto key = normalize_host_port(host_port);
  if (!key) return make_unexpected(key.error());
  auto canonical = parse_fingerprint(fingerprint);
  if (!canonical) return make_unexpected(canonical.error());

  auto current = load(path_);
  if (!current) return make_unexpected(current.error());
  KnownServers updated = std::move(*current);
  bool replaced = false;
  for (Line& line : updated.lines_) {
    if (line.host_port == *key) {
      line.fingerprint = *canonical;
      line.text = render(line.host_port, line.fingerprint);
      replaced = true;
    }
  }
  if (!replaced) updated.lines_.push_back(Line{render(*key, *canonical), *key, *canonical});

  std::string text;
  for (const Line& line : updated.lines_) text += line.text + "\n";
  auto written = write_file_atomically(path_, text, fs::perms::owner_read | fs::perms::owner_write);
  if (!written) return make_unexpected(written.error());
  *this = std::move(updated);
  return {};
}

Expected<bool, std::string> KnownServers::forget(std::string_view host_port) {
  auto key = normalize_host_port(host_port);
  if (!key) return make_unexpected(key.error());
  auto current = load(path_);
  if (!current) return make_unexpected(current.error());
  KnownServers updated = std::move(*current);
  const auto before = updated.lines_.size();
  std::erase_if(updated.lines_, [&key](const Line& line) { return line.host_port == *key; });
  if (updated.lines_.size() == before) {
    *this = std::move(updated);
    return false;
  }
  std::string text;
  for (const Line& line : updated.lines_) text += line.text + "\n";
  auto written = write_file_atomically(path_, text, fs::perms::owner_read | fs::perms::owner_write);
  if (!written) return make_unexpected(written.error());
  *this = std::move(updated);
  return true;
}

fs::path default_known_servers_path() {
  const fs::path relative = fs::path("tether") / "known_servers";
  if (const char* config = std::getenv("XDG_CONFIG_HOME"); config != nullptr && config[0] == '/') {
    return fs::path(config) / relative;
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
    return fs::path(home) / ".config" / relative;
  }
  const long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::string buffer(size > 0 ? static_cast<std::size_t>(size) : 16384, '\0');
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(::getuid(), &entry, buffer.data(), buffer.size(), &found) == 0 &&
      found != nullptr && found->pw_dir != nullptr && found->pw_dir[0] != '\0') {
    return fs::path(found->pw_dir) / ".config" / relative;
  }
  return {};
}

}  // namespace tether::transport
