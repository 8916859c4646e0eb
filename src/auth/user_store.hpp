// UserStore is the server's table of SCRAM-SHA-256 users read from a users file; UserDirectory is
// the shared, thread-safe view of it that the SASL mechanisms query and that reloads the file when
// it changes.
//
// The users file has one line per user:
//   NAME SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>[ ITEM...]
// (PostgreSQL's SCRAM verifier text), `#` comments and blank lines. The optional items after the
// verifier, each at most once and in any order, are `disabled` and `expires=YYYY-MM-DDTHH:MM:SSZ`
// (the password's expiry, UTC, a real date of the years 1970 to 2199). A NAME is 1 to 64 characters
// from [A-Za-z0-9._@+-], not starting with '-': printable ASCII without ',' or '=', so SASLprep
// leaves it unchanged and SCRAM never escapes it (non-ASCII names are refused rather than
// normalized). The iteration count is 4096 to 10,000,000, the salt 8 to 64 bytes, each key 32
// bytes. A line is at most 1024 bytes, a file at most 100,000 users and 16 MiB. Only these
// verifiers are kept: no password.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tether/expected.hpp"

namespace tether::auth {

inline constexpr std::uint32_t kMinimumScramIterations = 4096;
inline constexpr std::uint32_t kMaximumScramIterations = 10'000'000;
inline constexpr std::uint32_t kDefaultScramIterations = 4096;
inline constexpr std::size_t kMaximumUserNameLength = 64;
inline constexpr std::size_t kMaximumUsersLineLength = 1024;
inline constexpr std::size_t kMaximumUsers = 100'000;
inline constexpr std::size_t kMaximumUsersFileBytes = 16u << 20;

// What the server keeps of one SCRAM-SHA-256 credential.
struct ScramVerifier {
  std::uint32_t iterations = kDefaultScramIterations;
  std::vector<std::byte> salt;
  std::array<std::byte, 32> stored_key{};
  std::array<std::byte, 32> server_key{};
};

struct UserRecord {
  std::string name;
  ScramVerifier verifier;
  bool disabled = false;
  // When the password stops being accepted (whole seconds); nullopt: it does not expire.
  std::optional<std::chrono::system_clock::time_point> expires;
};

// Whether `name` is a valid user name (the set above).
[[nodiscard]] bool valid_user_name(std::string_view name);

// Standard base64 with padding (RFC 4648 section 4), as SCRAM and the users file use it. Decoding
// is strict: nullopt on any character outside the alphabet, missing or misplaced padding, or
// nonzero trailing bits.
[[nodiscard]] std::string encode_base64(std::span<const std::byte> bytes);
[[nodiscard]] std::optional<std::vector<std::byte>> decode_base64(std::string_view text);

// A password expiry as the users file writes it, `YYYY-MM-DDTHH:MM:SSZ` (UTC; format it with
// format_utc, auth/jwt.hpp). Strict: exactly that shape, a real calendar date (no leap second) of
// the years 1970 to 2199; anything else is an error saying what is wrong.
[[nodiscard]] Expected<std::chrono::system_clock::time_point, std::string> parse_utc_timestamp(
    std::string_view text);

// The verifier text `SCRAM-SHA-256$i:salt$stored:server`, and its parser (nullopt with a reason).
[[nodiscard]] std::string format_verifier(const ScramVerifier& verifier);
[[nodiscard]] Expected<ScramVerifier, std::string> parse_verifier(std::string_view text);

// SCRAM-SHA-256 verifier from a password (SASLprep'd as GNU SASL's client does), through
// gsasl_scram_secrets_from_password. An error when the password is empty or SASLprep refuses it.
[[nodiscard]] Expected<ScramVerifier, std::string> make_verifier(std::string_view password,
                                                                 std::span<const std::byte> salt,
                                                                 std::uint32_t iterations);

// The users of one users file, in file order, with the file's comments kept for rewriting.
class UserStore {
 public:
  // Parses a users file's text; an error names the (1-based) line and what is wrong with it.
  [[nodiscard]] static Expected<UserStore, std::string> parse(std::string_view text);
  // Reads and parses `path`. It must be a regular file owned by the user or root, not readable or
  // writable by group or others, in directories only they can change
  // (transport::read_trusted_file). A missing file is an error unless `missing_ok`, when it yields
  // an empty store.
  [[nodiscard]] static Expected<UserStore, std::string> load(const std::filesystem::path& path,
                                                             bool missing_ok = false);

  // The user named `name` (disabled users included: check `disabled`), or nullopt.
  [[nodiscard]] const UserRecord* find(std::string_view name) const;
  [[nodiscard]] std::size_t size() const { return index_.size(); }
  // The iteration count most users have (the smallest of the most common), or the default for an
  // empty store: what a fake verifier should use so that it looks like the real ones.
  [[nodiscard]] std::uint32_t typical_iterations() const;

  // Adds the user or replaces its verifier (keeping its disabled flag and expiry). False when the
  // store is full.
  bool set(const std::string& name, ScramVerifier verifier);
  // Sets the disabled flag; false when there is no such user.
  bool set_disabled(std::string_view name, bool disabled);
  // Sets (rounded down to whole seconds) or removes the password's expiry; false when there is no
  // such user. The caller keeps it within parse_utc_timestamp's years so that the file reads back.
  bool set_expiry(std::string_view name,
                  std::optional<std::chrono::system_clock::time_point> expires);
  // Removes the user; false when there is none.
  bool remove(std::string_view name);

  // The file's text: the kept comments and blank lines, each user as one line.
  [[nodiscard]] std::string serialize() const;

  // Writes serialize() to `path` atomically: a temporary file in the same directory, written,
  // fsynced, given the existing file's mode (0600 for a new file), renamed over `path`, and the
  // directory fsynced. The directory must pass transport::check_path_safety.
  [[nodiscard]] Expected<void, std::string> write(const std::filesystem::path& path) const;

 private:
  struct Line {
    std::string text;  // a comment or blank line (is_user false)
    bool is_user = false;
    UserRecord user;
  };
  void reindex();
  std::vector<Line> lines_;
  std::unordered_map<std::string, std::size_t> index_;  // name -> lines_ index
};

// What a lookup found: a usable verifier, a disabled user, or no such user.
struct UserLookup {
  enum class Kind : std::uint8_t { kFound, kDisabled, kUnknown };
  Kind kind = Kind::kUnknown;
  ScramVerifier verifier;  // kFound only
  // kFound only: the password's expiry (UserRecord::expires). An expired password is still kFound:
  // the mechanism refuses it only after the proof checked out, so that a stranger learns nothing.
  std::optional<std::chrono::system_clock::time_point> expires;
};

// A thread-safe view of the users, reloaded from a file when it changes: at most once per
// `check_interval` (by the injected clock) the file is stat'ed, and when its modification time,
// size or inode changed it is read again. A reload that fails keeps the users it had and records
// the error (last_reload_error), so a bad edit does not lock everyone out.
class UserDirectory {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // Users held in memory only (tests, or a caller that reloads by itself).
  explicit UserDirectory(UserStore store);
  // Loads `path` now (an error refuses to start) and reloads it as above.
  [[nodiscard]] static Expected<std::shared_ptr<UserDirectory>, std::string> open(
      std::filesystem::path path, Clock clock = {},
      std::chrono::steady_clock::duration check_interval = std::chrono::seconds(2));

  [[nodiscard]] UserLookup lookup(std::string_view name);
  // Reads the file again now, whatever its stamp and the check interval (`tether admin reload`,
  // SIGHUP). An error keeps the users held, as an automatic reload does, and is returned. Does
  // nothing for users held in memory only.
  [[nodiscard]] Expected<void, std::string> reload();
  // typical_iterations() of the users held now (computed when they are loaded).
  [[nodiscard]] std::uint32_t typical_iterations();
  [[nodiscard]] std::optional<std::string> last_reload_error() const;
  // How many times the file was read again after open (for tests and status).
  [[nodiscard]] std::uint64_t reloads() const;

 private:
  struct FileStamp {
    std::int64_t modified_seconds = 0;
    std::int64_t modified_nanoseconds = 0;
    std::int64_t size = -1;
    std::uint64_t inode = 0;
    bool operator==(const FileStamp&) const = default;
  };
  UserDirectory() = default;
  void maybe_reload();  // with mutex_ held
  void read_file();     // with mutex_ held: reads path_ and records the stamp and the outcome
  static std::optional<FileStamp> stamp_of(const std::filesystem::path& path);

  mutable std::mutex mutex_;
  std::shared_ptr<const UserStore> store_;
  std::uint32_t typical_iterations_ = kDefaultScramIterations;
  std::filesystem::path path_;  // empty: in memory only
  Clock clock_;
  std::chrono::steady_clock::duration check_interval_{};
  std::chrono::steady_clock::time_point last_check_{};
  std::optional<FileStamp> stamp_;
  std::optional<std::string> last_error_;
  std::uint64_t reloads_ = 0;
};

}  // namespace tether::auth
