// TomlConfig is a CLI11 config formatter that reads TOML files with toml++, so that
// `tether --config FILE` supplies a default value for any option and command-line flags override
// it.
//
// Wiring in main.cpp, right after constructing the CLI::App (before or after adding the
// subcommands; anywhere before the parse):
//
//   #include "config_file.hpp"
//   tether::command_line::enable_config_file(
//       app, tether::transport::default_known_servers_path().parent_path() / "tether.toml");
//
// That adds `--config FILE`. Without --config the default file (~/.config/tether/tether.toml, or
// $XDG_CONFIG_HOME/tether/tether.toml) is read when it exists and silently skipped when it does
// not; a --config FILE that does not exist is an error. Only one --config may be given.
//
// The file layout: top-level keys set options of the main command; each table sets the options of
// the subcommand of that name, nested tables (`[a.b]`) those of nested subcommands. Keys are the
// option names without the leading dashes (the long name, or the one-letter short name):
//
//   verbose = true
//   [client]
//   server = "vpn.example.com:7443"
//   local = ["8080:127.0.0.1:80", "2222:db.internal:22"]   # a repeated option takes an array
//   heartbeat-interval = 1000                              # integers, floats, booleans, strings
//   [server]
//   allow = ["127.0.0.1:*"]
//
// Precedence is CLI11's: an option given on the command line keeps its command-line values and the
// file's value for it is ignored entirely (for a repeated option the file's array is replaced, not
// extended); otherwise the file's value is used; otherwise the option's default. A table for a
// subcommand that is not run only fills options nobody reads, so one file can serve both `tether
// client` and `tether server`; its keys and values are still checked (CLI11 converts and validates
// them), so an error in [server] also stops `tether client`. Values in the file satisfy required()
// options.
//
// A file that another user could write (it, or a directory above it: check_path_safety in
// src/transport/file_safety.hpp) is refused before it is parsed, with a CLI::ConfigError naming the
// file and why.
//
// Other errors are CLI::ConfigError (so CLI11_PARSE prints them and exits non-zero) whose message
// starts with FILE:LINE:COLUMN: a TOML syntax error (with toml++'s description), a key that matches
// no option or no subcommand (naming the key and its table), an option that may not come from a
// file
// (--help, --config), and a value no option can take (a date or time, a table inside an array, an
// array inside an array). A missing --config FILE is CLI11's own CLI::FileError; a value the
// option cannot convert ("often" for an integer) is CLI11's CLI::ConversionError, which names the
// option but not the file. With --help the file is not read at all.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <istream>
#include <string>
#include <vector>

namespace tether::command_line {

// The help text of the --config option.
inline constexpr const char* kConfigFileHelp =
    "TOML file with default values for any option; command-line flags override it";

class TomlConfig final : public CLI::Config {
 public:
  // A formatter that knows no app: it converts every key (CLI11 then reports keys that match no
  // option only if the app has allow_config_extras(CLI::config_extras_mode::error)) and error
  // messages call the file "<config>".
  TomlConfig() = default;

  // A formatter for `app` (which must outlive it): it checks every key against app's options and
  // subcommands while reading, and error messages name the file given to app's config option.
  explicit TomlConfig(const CLI::App& app) : app_(&app) {}

  // Parses TOML from `input` into CLI11 items: one item per key (parents = the enclosing table
  // names, name = the key, inputs = the value as strings: integers in decimal, floats in their
  // shortest round-trip form, booleans as "true"/"false", arrays one input per element; an empty
  // array yields no item, so the option keeps its default). Each table is also bracketed by
  // CLI11's "++" (open) and "--" (close) items, as CLI11's own reader does, which matters only for
  // subcommands marked configurable(). Items come in file order. Throws CLI::ConfigError. With an
  // app, nothing is read (no items, no errors) when -h/--help/--help-all was given, so that a
  // broken file never hides the help.
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

  // Writes `app`'s option values as TOML by delegating to CLI11's own writer (CLI::ConfigTOML):
  // subcommand options come out as dotted keys (`client.server="..."`), which this reader accepts.
  // Its limits are CLI11's: strings are quoted but not escaped, so a value holding a backslash or
  // both quote characters does not read back.
  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;

 private:
  // The name error messages give to the file being read.
  std::string source_name() const;

  const CLI::App* app_ = nullptr;
};

// Installs a TomlConfig on `app` and adds the `--config FILE` option (at most once, help text
// kConfigFileHelp) with `default_file` as its default, read only when it exists; an empty
// `default_file` means no default. Also sets allow_config_extras(error) so that CLI11 itself never
// ignores an unknown key. Returns the option: after parsing, its count() is non-zero exactly when a
// file was read, and as<std::string>() names that file.
CLI::Option* enable_config_file(CLI::App& app, const std::filesystem::path& default_file);

}  // namespace tether::command_line
