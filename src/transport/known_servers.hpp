// KnownServers is a client's record of the certificate fingerprint each server presented (the ssh
// known_hosts idea): trust a server on first use, then insist on the same certificate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tether/expected.hpp"

namespace tether::transport {

// The file is text, one server per line: `host:port sha256:HEX`, fields separated by spaces or
// tabs. Blank lines and lines starting with '#' are kept as they are. An IPv6 literal is written in
// brackets ([::1]:7000). Host names compare case-insensitively: keys are stored in lowercase.
class KnownServers {
 public:
  // Reads `path`. A missing file is an empty list (it is created by the first remember()). A file
  // (or a directory above it) that another user could write is refused (read_trusted_file in
  // file_safety.hpp), and so is one over 16 MiB. A line that is not `host:port sha256:HEX`, or a
  // server listed twice, is an error naming the file and the line number.
  [[nodiscard]] static Expected<KnownServers, std::string> load(std::filesystem::path path);

  // The canonical fingerprint remembered for "host:port", or nullopt (also for a malformed key).
  [[nodiscard]] std::optional<std::string> lookup(std::string_view host_port) const;

  // Records `fingerprint` (any form parse_fingerprint accepts) for "host:port", replacing an
  // earlier one, and writes the file atomically (temporary file + rename, mode 0600, the parent
  // directory created with mode 0700 if missing). The file is read again first, so that entries
  // another process added since load() are kept. On error nothing changes, in memory or on disk.
  [[nodiscard]] Expected<void, std::string> remember(std::string_view host_port,
                                                     std::string_view fingerprint);

  // Removes the entry for "host:port" (ssh-keygen -R), writing the file as remember() does.
  // Returns whether there was one; when there was none, the file is not touched.
  [[nodiscard]] Expected<bool, std::string> forget(std::string_view host_port);

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::size_t size() const;

 private:
  struct Line {
    std::string text;         // as read (comments, blank lines) or as written (entries)
    std::string host_port;    // normalized; empty for comments and blank lines
    std::string fingerprint;  // canonical
  };

  explicit KnownServers(std::filesystem::path path) : path_(std::move(path)) {}

  std::filesystem::path path_;
  std::vector<Line> lines_;
};

// The default known-servers file: $XDG_CONFIG_HOME/tether/known_servers when XDG_CONFIG_HOME is an
// absolute path, else ~/.config/tether/known_servers ($HOME, or the password database when HOME is
// unset). An empty path if no home directory can be found; load() then explains.
[[nodiscard]] std::filesystem::path default_known_servers_path();

// The known-servers key for a host and port: "host:port", with an IPv6 literal put in brackets and
// the host in lowercase.
[[nodiscard]] std::string host_port(std::string_view host, std::uint16_t port);

// Checks and normalizes "host:port" (host not empty, an IPv6 literal in brackets, port 1-65535,
// lowercase), or says what is wrong with it.
[[nodiscard]] Expected<std::string, std::string> normalize_host_port(std::string_view host_port);

}  // namespace tether::transport
