// file_safety: the checks tether makes before it trusts a local file or directory, after ssh's
// StrictModes: no other user may be able to change what it reads (the known-servers file, the
// configuration file, keys, the reset key) or where it puts its control sockets.
//
// The rule (check_path_safety): the file and every directory above it, up to the user's home
// directory when the file is inside it and up to / otherwise, must be owned by the user (the
// effective uid) or by root, and must not be writable by group or others. A directory with the
// sticky bit (like /tmp) may be writable by others: they cannot rename or remove entries that are
// not theirs. Symbolic links are resolved first and the real path is checked.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "tether/expected.hpp"

namespace tether::transport {

// Succeeds when no other user can change what `path` names (the rule above), else says which file
// or directory is the problem and why, naming `path`. Components of `path` that do not exist yet
// are skipped (tether creates them, mode 0700); the directories above them are checked.
[[nodiscard]] Expected<void, std::string> check_path_safety(const std::filesystem::path& path);

struct TrustedFileOptions {
  std::size_t max_bytes = 1u << 20;  // a larger file is refused
  bool secret = false;          // also refuse a file that group or others may read (private keys)
  bool follow_symlinks = true;  // false: refuse a path whose last component is a symbolic link
};

// Reads a file that passes check_path_safety: opened by its real path with O_NOFOLLOW and
// O_CLOEXEC (and O_NONBLOCK, so that a FIFO cannot block the open), and the opened file checked
// again (a regular file, owner, mode) so that a swap between the check and the open is caught.
// nullopt when the file does not exist (its directories are then checked, since tether may create
// it there). Every error names the file.
[[nodiscard]] Expected<std::optional<std::string>, std::string> read_trusted_file(
    const std::filesystem::path& path, const TrustedFileOptions& options = {});

// Creates `path` with `contents` and mode 0600: O_CREAT | O_EXCL | O_NOFOLLOW, so an existing file
// or a symbolic link (even a dangling one) at `path` is an error, never followed or overwritten.
// The directories above it must pass check_path_safety. The data is fsynced before returning.
[[nodiscard]] Expected<void, std::string> create_secret_file(const std::filesystem::path& path,
                                                             std::string_view contents);

// A directory that is tether's own (the default control-socket directory): created with mode 0700
// when missing (its parent must pass check_path_safety); when it exists it must be a directory, not
// a symbolic link, owned by the user, with no permission bits for group or others. Its mode is
// never changed. With create = false a missing directory is an error too.
[[nodiscard]] Expected<void, std::string> ensure_private_directory(
    const std::filesystem::path& directory, bool create = true);

// A directory the user named (the one holding `--control-socket PATH`): the missing components are
// created with mode 0700; an existing directory is used as it is (never chmodded) and must pass
// check_path_safety.
[[nodiscard]] Expected<void, std::string> ensure_safe_directory(
    const std::filesystem::path& directory);

// The user's home directory: $HOME when it is an absolute path, else the password database's; an
// empty path when there is none.
[[nodiscard]] std::filesystem::path home_directory();

}  // namespace tether::transport
