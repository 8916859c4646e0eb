// TokenDenyList is the server's set of revoked bearer tokens, named by their token id (the JWT's
// jti), read from a file the operator edits and read again when it changes.
//
// The file has one token id per line; blank lines and lines whose first non-blank character is '#'
// are ignored, and blanks (space, tab, CR) around an id are trimmed. An id is 1 to 256 bytes of
// printable ASCII without spaces (0x21 to 0x7e). At most 100,000 ids and 8 MiB. Like the other
// files the server trusts, it must not be writable by other users (transport::read_trusted_file);
// others may read it (token ids are not secrets).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "tether/expected.hpp"

namespace tether::auth {

inline constexpr std::size_t kMaximumTokenIdLength = 256;
inline constexpr std::size_t kMaximumDeniedTokens = 100'000;
inline constexpr std::size_t kMaximumDenyListBytes = 8u << 20;

using TokenIdSet = std::set<std::string, std::less<>>;

// The ids of a deny list's text; an error names the (1-based) line and what is wrong with it.
[[nodiscard]] Expected<TokenIdSet, std::string> parse_token_deny_list(std::string_view text);

// The deny list in force, shared by the OAUTHBEARER exchanges and the server's watcher; all calls
// are thread-safe.
class TokenDenyList {
 public:
  // Ids held in memory only (tests).
  explicit TokenDenyList(TokenIdSet ids = {});
  // Reads `path` now: an error (missing, unsafe, malformed, too large) refuses to start.
  [[nodiscard]] static Expected<std::shared_ptr<TokenDenyList>, std::string> open(
      std::filesystem::path path);

  [[nodiscard]] bool contains(std::string_view token_id) const;
  [[nodiscard]] std::size_t size() const;
  // The ids in force now (a snapshot that later refreshes do not change).
  [[nodiscard]] std::shared_ptr<const TokenIdSet> ids() const;

  // Reads the file again when its modification time, size or inode changed since the last read
  // (always when `force`): true when a new list is now in force. An error (the file vanished,
  // became unsafe or malformed) keeps the list in force, so a bad edit revokes nothing and
  // un-revokes nothing; the next change is tried again. Does nothing for an in-memory list.
  [[nodiscard]] Expected<bool, std::string> refresh(bool force = false);
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  struct FileStamp {
    std::int64_t modified_seconds = 0;
    std::int64_t modified_nanoseconds = 0;
    std::int64_t size = -1;
    std::uint64_t inode = 0;
    bool operator==(const FileStamp&) const = default;
  };
  [[nodiscard]] static std::optional<FileStamp> stamp_of(const std::filesystem::path& path);
  [[nodiscard]] static Expected<TokenIdSet, std::string> read(const std::filesystem::path& path);

  mutable std::mutex mutex_;
  std::shared_ptr<const TokenIdSet> ids_;
  std::filesystem::path path_;  // empty: in memory only
  std::optional<FileStamp> stamp_;
};

}  // namespace tether::auth
