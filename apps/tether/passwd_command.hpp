// `tether passwd`: creates, updates, disables, enables or deletes one user of a server's users file
// (auth/user_store.hpp), storing only the SCRAM-SHA-256 verifier of the password.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tether/expected.hpp"

namespace tether::app {

struct PasswdOptions {
  std::string users_file;
  std::string name;
  std::uint32_t iterations = 4096;
  bool disable = false;
  bool enable = false;
  bool remove = false;
  // The password's expiry: YYYY-MM-DDTHH:MM:SSZ (UTC), or a time from now such as 90d, 12h, 30m,
  // 45s or 2w; empty: keep the user's expiry (none for a new user).
  std::string expires;
  bool no_expiry = false;      // remove the expiry
  bool keep_password = false;  // change only the expiry of an existing user
};

// The --expires value as a time: an absolute UTC time, or `now` plus a positive count of s, m, h, d
// or w; an error when it is neither or falls outside the users file's years (1970 to 2199).
[[nodiscard]] Expected<std::chrono::system_clock::time_point, std::string> parse_expiry(
    std::string_view text, std::chrono::system_clock::time_point now);

// Registers the `passwd` subcommand on `app`, filling `options`; returns it (check ->parsed()).
CLI::App* add_passwd_command(CLI::App& app, PasswdOptions& options);

// Runs it. The password comes from a no-echo prompt (asked twice) when standard input is a
// terminal, else from one line of standard input. The file is loaded with the server's checks (a
// group- or world-readable file is refused), created with mode 0600 when missing, and rewritten
// atomically keeping its mode. A new password keeps the user's expiry unless --expires or
// --no-expiry is given, and is refused when that kept expiry has passed. Returns the exit code: 0
// done, 1 refused or failed, 2 usage.
int run_passwd(const PasswdOptions& options);

// One line (at most 1 KiB) from `descriptor` without its newline; nullopt at end of input, when
// too long, or on error.
std::optional<std::string> read_line(int descriptor);
// Prompts on standard error and reads one line of standard input with echo off (when it is a
// terminal): for passwords.
std::optional<std::string> prompt_without_echo(const std::string& prompt);

}  // namespace tether::app
