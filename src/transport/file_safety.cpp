#include "transport/file_safety.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <system_error>
#include <vector>

namespace tether::transport {
namespace {

namespace fs = std::filesystem;

std::string errno_text(int error) {
  return std::generic_category().message(error);
}

std::string mode_text(mode_t mode) {
  static constexpr char kDigits[] = "01234567";
  std::string text = "0";
  for (const int shift : {9, 6, 3, 0}) {
    const unsigned digit = (static_cast<unsigned>(mode) >> shift) & 7u;
    if (shift == 9 && digit == 0) continue;
    text += kDigits[digit];
  }
  return text;
}

// Why another user could change the file or directory `status` describes, or an empty string.
// `name` is how the message calls it ("/tmp/x" or "its directory /tmp").
std::string ownership_problem(const struct stat& status, const std::string& name) {
  const uid_t user = ::geteuid();
  if (status.st_uid != user && status.st_uid != 0) {
    return name + " is owned by uid " + std::to_string(status.st_uid) + ", not by you (uid " +
           std::to_string(user) + ") or root";
  }
  const bool sticky_directory = S_ISDIR(status.st_mode) && (status.st_mode & S_ISVTX) != 0;
  if ((status.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !sticky_directory) {
    return name + " is writable by group or others (mode " + mode_text(status.st_mode & 07777) +
           "; chmod go-w fixes it)";
  }
  return {};
}

Unexpected<std::string> refusal(const fs::path& path, const std::string& why) {
  return make_unexpected("refusing " + path.string() + ": " + why);
}

}  // namespace

fs::path home_directory() {
  if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') return home;
  const long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::string buffer(size > 0 ? static_cast<std::size_t>(size) : 16384, '\0');
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(::geteuid(), &entry, buffer.data(), buffer.size(), &found) == 0 &&
      found != nullptr && found->pw_dir != nullptr && found->pw_dir[0] == '/') {
    return found->pw_dir;
  }
  return {};
}

Expected<void, std::string> check_path_safety(const fs::path& path) {
  std::error_code error;
  const fs::path absolute = fs::absolute(path, error);
  if (error) return refusal(path, "cannot resolve it: " + error.message());
  fs::path existing = absolute;
  // The deepest component that exists; what lies below it does not exist yet.
  struct stat status {};
  while (::lstat(existing.c_str(), &status) != 0) {
    if (errno != ENOENT && errno != ENOTDIR)
      return refusal(path, "cannot check it: " + errno_text(errno));
    if (existing == existing.root_path()) return refusal(path, "no directory above it exists");
    existing = existing.parent_path();
  }
  const fs::path real = fs::canonical(existing, error);
  if (error) return refusal(path, "cannot resolve " + existing.string() + ": " + error.message());
  fs::path home = home_directory();
  if (!home.empty()) home = fs::weakly_canonical(home, error);
  if (error) home.clear();
  for (fs::path current = real;; current = current.parent_path()) {
    if (::lstat(current.c_str(), &status) != 0)
      return refusal(path, "cannot check " + current.string() + ": " + errno_text(errno));
    const std::string name = current == absolute ? std::string("it") : current.string();
    if (const auto problem = ownership_problem(status, name); !problem.empty())
      return refusal(path, problem);
    if (current == home || current == current.root_path()) break;
  }
  return {};
}

Expected<std::optional<std::string>, std::string> read_trusted_file(
    const fs::path& path, const TrustedFileOptions& options) {
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0) {
    if (errno != ENOENT) return refusal(path, "cannot check it: " + errno_text(errno));
    if (auto safe = check_path_safety(path); !safe) return make_unexpected(safe.error());
    return std::optional<std::string>{};
  }
  if (S_ISLNK(status.st_mode) && !options.follow_symlinks)
    return refusal(path, "it is a symbolic link, which tether does not follow for this file");
  if (auto safe = check_path_safety(path); !safe) return make_unexpected(safe.error());
  std::error_code error;
  const fs::path real = fs::canonical(path, error);
  if (error) return refusal(path, "cannot resolve it: " + error.message());

  const int descriptor =
      ::open(real.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (descriptor < 0) {
    return make_unexpected("cannot open " + path.string() + ": " + errno_text(errno));
  }
  const auto fail = [&](const std::string& why) {
    ::close(descriptor);
    return refusal(path, why);
  };
  if (::fstat(descriptor, &status) != 0) return fail("cannot check it: " + errno_text(errno));
  if (!S_ISREG(status.st_mode)) return fail("it is not a regular file");
  if (const auto problem = ownership_problem(status, "it"); !problem.empty()) return fail(problem);
  if (options.secret && (status.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return fail("it holds a secret but group or others may read it (mode " +
                mode_text(status.st_mode & 07777) + "; chmod 600 fixes it)");
  }
  if (static_cast<std::uintmax_t>(status.st_size) > options.max_bytes) {
    return fail("it is larger than " + std::to_string(options.max_bytes) + " bytes");
  }
  std::string contents;
  std::vector<char> buffer(16384);
  for (;;) {
    const ssize_t count = ::read(descriptor, buffer.data(), buffer.size());
    if (count < 0) {
      if (errno == EINTR) continue;
      const int saved = errno;
      ::close(descriptor);
      return make_unexpected("cannot read " + path.string() + ": " + errno_text(saved));
    }
    if (count == 0) break;
    contents.append(buffer.data(), static_cast<std::size_t>(count));
    if (contents.size() > options.max_bytes)
      return fail("it is larger than " + std::to_string(options.max_bytes) + " bytes");
  }
  ::close(descriptor);
  return std::optional<std::string>{std::move(contents)};
}

Expected<void, std::string> create_secret_file(const fs::path& path, std::string_view contents) {
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  if (auto safe = check_path_safety(parent); !safe) {
    return refusal(path, "its directory is not safe (" + safe.error() + ")");
  }
  const int descriptor =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
  if (descriptor < 0)
    return make_unexpected("cannot create " + path.string() + ": " + errno_text(errno));
  const auto abandon = [&](const std::string& what) {
    const int saved = errno;
    ::close(descriptor);
    ::unlink(path.c_str());
    return make_unexpected(what + " " + path.string() + ": " + errno_text(saved));
  };
  while (!contents.empty()) {
    const ssize_t written = ::write(descriptor, contents.data(), contents.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return abandon("cannot write");
    }
    contents.remove_prefix(static_cast<std::size_t>(written));
  }
  if (::fsync(descriptor) != 0) return abandon("cannot flush");
  if (::close(descriptor) != 0) {
    const int saved = errno;
    ::unlink(path.c_str());
    return make_unexpected("cannot write " + path.string() + ": " + errno_text(saved));
  }
  return {};
}

Expected<void, std::string> ensure_private_directory(const fs::path& directory, bool create) {
  const std::string name = directory.string();
  if (create) {
    if (auto safe = check_path_safety(directory.parent_path()); !safe) {
      return refusal(directory, "the directory above it is not safe (" + safe.error() + ")");
    }
    if (::mkdir(directory.c_str(), 0700) == 0) return {};
    if (errno != EEXIST) return make_unexpected("cannot create " + name + ": " + errno_text(errno));
  }
  struct stat status {};
  if (::lstat(directory.c_str(), &status) != 0)
    return make_unexpected("cannot use " + name + ": " + errno_text(errno));
  if (S_ISLNK(status.st_mode))
    return refusal(directory, "it is a symbolic link, not a directory tether made");
  if (!S_ISDIR(status.st_mode)) return refusal(directory, "it is not a directory");
  const uid_t user = ::geteuid();
  if (status.st_uid != user) {
    return refusal(directory, "it is owned by uid " + std::to_string(status.st_uid) +
                                  ", not by you (uid " + std::to_string(user) +
                                  "): another user may have made it to intercept tether's "
                                  "control sockets; remove it, or set XDG_RUNTIME_DIR");
  }
  if ((status.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return refusal(directory, "group or others may use it (mode " +
                                  mode_text(status.st_mode & 07777) +
                                  "); it must be accessible only by you: chmod 700 " + name);
  }
  return {};
}

Expected<void, std::string> ensure_safe_directory(const fs::path& directory) {
  std::error_code error;
  const fs::path absolute = fs::absolute(directory, error);
  if (error) return refusal(directory, "cannot resolve it: " + error.message());
  std::vector<fs::path> missing;
  struct stat status {};
  for (fs::path current = absolute; ::lstat(current.c_str(), &status) != 0;
       current = current.parent_path()) {
    if (errno != ENOENT)
      return make_unexpected("cannot check " + current.string() + ": " + errno_text(errno));
    missing.push_back(current);
    if (current == current.root_path()) break;
  }
  if (auto safe = check_path_safety(absolute); !safe) return make_unexpected(safe.error());
  for (auto component = missing.rbegin(); component != missing.rend(); ++component) {
    if (::mkdir(component->c_str(), 0700) != 0 && errno != EEXIST)
      return make_unexpected("cannot create " + component->string() + ": " + errno_text(errno));
  }
  return {};
}

}  // namespace tether::transport
