#include "passwd_command.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>

#include "auth/jwt.hpp"
#include "auth/user_store.hpp"

namespace tether::app {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr std::size_t kMaximumPasswordLength = 1024;

std::optional<std::string> read_password(const std::string& name) {
  if (::isatty(STDIN_FILENO) == 0) return read_line(STDIN_FILENO);
  auto first = prompt_without_echo("New password for " + name + ": ");
  if (!first) return std::nullopt;
  auto second = prompt_without_echo("Retype it: ");
  if (!second || *first != *second) {
    std::cerr << "tether passwd: the passwords differ\n";
    OPENSSL_cleanse(first->data(), first->size());
    if (second) OPENSSL_cleanse(second->data(), second->size());
    return std::nullopt;
  }
  OPENSSL_cleanse(second->data(), second->size());
  return first;
}

// The first instant the users file cannot hold (its years end with 2199).
constexpr std::chrono::sys_days kEndOfExpiries{std::chrono::year(2200) / 1 / 1};

}  // namespace

Expected<std::chrono::system_clock::time_point, std::string> parse_expiry(
    std::string_view text, std::chrono::system_clock::time_point now) {
  using namespace std::chrono;
  if (text.size() == 20) {  // YYYY-MM-DDTHH:MM:SSZ
    auto absolute = auth::parse_utc_timestamp(text);
    if (!absolute) return make_unexpected("--expires: " + absolute.error());
    return *absolute;
  }
  const auto usage = [&] {
    return make_unexpected("--expires: '" + std::string(text.substr(0, 40)) +
                           "' is neither YYYY-MM-DDTHH:MM:SSZ (UTC) nor a time from now such as "
                           "90d, 12h, 30m, 45s or 2w");
  };
  if (text.size() < 2 || text.size() > 11 || text.front() < '1' || text.front() > '9') {
    return usage();
  }
  std::int64_t count = 0;
  for (const char character : text.substr(0, text.size() - 1)) {
    if (character < '0' || character > '9') return usage();
    count = count * 10 + (character - '0');  // at most 10 digits: no overflow
  }
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    case 'w':
      unit = 7 * 86400;
      break;
    default:
      return usage();
  }
  const auto room = duration_cast<seconds>(system_clock::time_point(kEndOfExpiries) - now);
  if (count > room.count() / unit) {
    return make_unexpected("--expires: " + std::string(text) + " from now is after 2199");
  }
  return floor<seconds>(now) + seconds(count * unit);
}

// One line from `descriptor` without its newline; nullopt at end of input, when too long, or on
// error.
std::optional<std::string> read_line(int descriptor) {
  std::string line;
  char character = 0;
  for (;;) {
    const ssize_t count = ::read(descriptor, &character, 1);
    if (count < 0 && errno == EINTR) continue;
    if (count <= 0) {
      if (line.empty()) return std::nullopt;
      break;
    }
    if (character == '\n') break;
    if (line.size() >= kMaximumPasswordLength) {
      OPENSSL_cleanse(line.data(), line.size());
      return std::nullopt;
    }
    line.push_back(character);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Prompts on standard error with echo off (standard input is a terminal).
std::optional<std::string> prompt_without_echo(const std::string& prompt) {
  std::cerr << prompt << std::flush;
  termios saved{};
  const bool have_terminal = ::tcgetattr(STDIN_FILENO, &saved) == 0;
  if (have_terminal) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  auto line = read_line(STDIN_FILENO);
  if (have_terminal) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  return line;
}

CLI::App* add_passwd_command(CLI::App& app, PasswdOptions& options) {
  auto* command = app.add_subcommand(
      "passwd",
      "Create or update a user of a server's users file (or --disable, --enable, --delete)");
  command
      ->add_option("--users", options.users_file, "The users file (created, mode 0600, if missing)")
      ->required();
  command->add_option("name", options.name, "The user name ([A-Za-z0-9._@+-], 1 to 64 characters)")
      ->required();
  auto* iterations =
      command
          ->add_option("--iterations", options.iterations,
                       "PBKDF2 iterations of the new SCRAM-SHA-256 verifier")
          ->check(CLI::Range(auth::kMinimumScramIterations, auth::kMaximumScramIterations))
          ->capture_default_str();
  auto* disable = command->add_flag("--disable", options.disable, "Disable the user");
  auto* enable = command->add_flag("--enable", options.enable, "Enable a disabled user");
  auto* remove = command->add_flag("--delete", options.remove, "Delete the user");
  auto* expires = command->add_option(
      "--expires", options.expires,
      "When the password expires: YYYY-MM-DDTHH:MM:SSZ (UTC) or a time from now (90d, 12h, 30m, "
      "45s, 2w); the server then refuses it and ends its sessions at that time");
  auto* no_expiry =
      command->add_flag("--no-expiry", options.no_expiry, "Remove the password's expiry");
  auto* keep_password = command->add_flag(
      "--keep-password", options.keep_password,
      "Change only --expires or --no-expiry of an existing user, not its password");
  disable->excludes(enable)->excludes(remove)->excludes(iterations);
  enable->excludes(remove)->excludes(iterations);
  remove->excludes(iterations);
  expires->excludes(no_expiry);
  keep_password->excludes(iterations);
  for (auto* action : {disable, enable, remove}) {
    action->excludes(expires)->excludes(no_expiry)->excludes(keep_password);
  }
  return command;
}

int run_passwd(const PasswdOptions& options) {
  if (!auth::valid_user_name(options.name)) {
    std::cerr << "tether passwd: a user name is 1 to 64 characters of [A-Za-z0-9._@+-], not "
                 "starting with '-'\n";
    return kExitUsage;
  }
  if (options.keep_password && options.expires.empty() && !options.no_expiry) {
    std::cerr << "tether passwd: --keep-password needs --expires or --no-expiry\n";
    return kExitUsage;
  }
  const auto now = std::chrono::system_clock::now();
  std::optional<std::chrono::system_clock::time_point> expires;
  if (!options.expires.empty()) {
    auto parsed = parse_expiry(options.expires, now);
    if (!parsed) {
      std::cerr << "tether passwd: " << parsed.error() << "\n";
      return kExitUsage;
    }
    expires = *parsed;
  }
  const bool change_expiry = expires.has_value() || options.no_expiry;
  auto store = auth::UserStore::load(options.users_file, /*missing_ok=*/true);
  if (!store) {
    std::cerr << "tether passwd: " << store.error() << "\n";
    return kExitFailure;
  }
  std::string done;
  if (options.keep_password) {
    if (!store->set_expiry(options.name, expires)) {
      std::cerr << "tether passwd: no user " << options.name << " in " << options.users_file
                << "\n";
      return kExitFailure;
    }
    done = "updated";
  } else if (options.disable || options.enable) {
    if (!store->set_disabled(options.name, options.disable)) {
      std::cerr << "tether passwd: no user " << options.name << " in " << options.users_file
                << "\n";
      return kExitFailure;
    }
    done = options.disable ? "disabled" : "enabled";
  } else if (options.remove) {
    if (!store->remove(options.name)) {
      std::cerr << "tether passwd: no user " << options.name << " in " << options.users_file
                << "\n";
      return kExitFailure;
    }
    done = "deleted";
  } else {
    if (const auth::UserRecord* user = store->find(options.name);
        !change_expiry && user != nullptr && user->expires && *user->expires <= now) {
      std::cerr << "tether passwd: the password of " << options.name << " expired at "
                << auth::format_utc(*user->expires)
                << " and a new one would keep that expiry: give --expires or --no-expiry\n";
      return kExitFailure;
    }
    auto password = read_password(options.name);
    if (!password || password->empty()) {
      std::cerr << "tether passwd: no password given (one line of standard input, at most "
                << kMaximumPasswordLength << " bytes)\n";
      return kExitFailure;
    }
    std::array<std::byte, 16> salt{};
    if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) !=
        1) {
      std::cerr << "tether passwd: no randomness for the salt\n";
      return kExitFailure;
    }
    auto verifier = auth::make_verifier(*password, salt, options.iterations);
    OPENSSL_cleanse(password->data(), password->size());
    if (!verifier) {
      std::cerr << "tether passwd: " << verifier.error() << "\n";
      return kExitFailure;
    }
    done = store->find(options.name) != nullptr ? "updated" : "created";
    if (!store->set(options.name, std::move(*verifier))) {
      std::cerr << "tether passwd: the users file is full (" << auth::kMaximumUsers << " users)\n";
      return kExitFailure;
    }
    if (change_expiry) store->set_expiry(options.name, expires);
  }
  if (auto written = store->write(options.users_file); !written) {
    std::cerr << "tether passwd: " << written.error() << "\n";
    return kExitFailure;
  }
  std::cerr << "tether passwd: " << options.name << " " << done << " in " << options.users_file;
  if (const auth::UserRecord* user = store->find(options.name); user != nullptr) {
    if (user->expires) {
      std::cerr << " (password " << (*user->expires <= now ? "expired" : "expires") << " at "
                << auth::format_utc(*user->expires) << ")";
    } else if (options.no_expiry) {
      std::cerr << " (password does not expire)";
    }
  }
  std::cerr << "\n";
  return 0;
}

}  // namespace tether::app
