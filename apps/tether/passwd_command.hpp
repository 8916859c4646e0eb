// `tether passwd`: creates, updates, disables, enables or deletes one user of a server's users file
// (auth/user_store.hpp), storing only the SCRAM-SHA-256 verifier of the password.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace tether::app {

struct PasswdOptions {
  std::string users_file;
  std::string name;
  std::uint32_t iterations = 4096;
  bool disable = false;
  bool enable = false;
  bool remove = false;
};

// Registers the `passwd` subcommand on `app`, filling `options`; returns it (check ->parsed()).
CLI::App* add_passwd_command(CLI::App& app, PasswdOptions& options);

// Runs it. The password comes from a no-echo prompt (asked twice) when standard input is a
// terminal, else from one line of standard input. The file is loaded with the server's checks (a
// group- or world-readable file is refused), created with mode 0600 when missing, and rewritten
// atomically keeping its mode. Returns the exit code: 0 done, 1 refused or failed, 2 usage.
int run_passwd(const PasswdOptions& options);

// One line (at most 1 KiB) from `descriptor` without its newline; nullopt at end of input, when
// too long, or on error.
std::optional<std::string> read_line(int descriptor);
// Prompts on standard error and reads one line of standard input with echo off (when it is a
// terminal): for passwords.
std::optional<std::string> prompt_without_echo(const std::string& prompt);

}  // namespace tether::app
