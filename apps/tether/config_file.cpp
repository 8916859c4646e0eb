#include "config_file.hpp"

#include <toml++/toml.h>

#include "transport/file_safety.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>

namespace tether::command_line {
namespace {

// "FILE:LINE:COLUMN: " for the start of `region`.
std::string location(const std::string& source_name, const toml::source_region& region) {
  return source_name + ":" + std::to_string(region.begin.line) + ":" +
         std::to_string(region.begin.column) + ": ";
}

std::string float_text(double value) {
  std::array<char, 64> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return std::string(buffer.data(), result.ptr);
}

// The subcommand of `command` called `name` (CLI11's own lookup, names and aliases), or null.
const CLI::App* find_subcommand(const CLI::App& command, const std::string& name) {
  try {
    return command.get_subcommand(name);
  } catch (const CLI::OptionNotFound&) {
    return nullptr;
  }
}

// The option of `command` that a config key `name` sets, looked up as CLI11 does when it applies
// the item: "--name", then "-name" for a one-letter name, then "name" (a positional), or null.
const CLI::Option* find_option(const CLI::App& command, const std::string& name) {
  const CLI::Option* option = command.get_option_no_throw("--" + name);
  if (option == nullptr && name.size() == 1) option = command.get_option_no_throw("-" + name);
  if (option == nullptr) option = command.get_option_no_throw(name);
  return option;
}

// What a node that cannot become an option value holds, for error messages.
std::string unsupported_kind(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "an unsupported value";
  }
}

// The text CLI11 receives for a string, number or boolean node; nullopt for anything else.
std::optional<std::string> scalar_text(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return node.as_string()->get();
    case toml::node_type::integer:
      return std::to_string(node.as_integer()->get());
    case toml::node_type::floating_point:
      return float_text(node.as_floating_point()->get());
    case toml::node_type::boolean:
      return node.as_boolean()->get() ? std::string("true") : std::string("false");
    default:
      return std::nullopt;
  }
}

// Turns a parsed document into CLI11 items, checking keys against an app when it has one.
class ItemReader {
 public:
  explicit ItemReader(std::string source_name) : source_name_(std::move(source_name)) {}

  // The items for `root`; `app` (may be null: no checks) is the command its top-level keys set.
  std::vector<CLI::ConfigItem> read(const toml::table& root, const CLI::App* app) {
    read_table(root, app);
    return std::move(items_);
  }

 private:
  // Appends the items of `table`, whose keys set options of `command` (null: unchecked).
  void read_table(const toml::table& table, const CLI::App* command) {
    // toml++ keeps keys sorted; go in file order so the first error reported is the first in the
    // file.
    std::vector<std::pair<const toml::key*, const toml::node*>> entries;
    for (const auto& [key, node] : table) entries.emplace_back(&key, &node);
    std::stable_sort(entries.begin(), entries.end(), [](const auto& left, const auto& right) {
      const toml::source_position& first = left.first->source().begin;
      const toml::source_position& second = right.first->source().begin;
      return std::tie(first.line, first.column) < std::tie(second.line, second.column);
    });
    for (const auto& [key, node] : entries) {
      if (const toml::table* subtable = node->as_table()) {
        read_subtable(*key, *subtable, command);
      } else {
        read_value(*key, *node, command);
      }
    }
  }

  void read_subtable(const toml::key& key, const toml::table& table, const CLI::App* command) {
    const CLI::App* subcommand = nullptr;
    if (command != nullptr) {
      subcommand = find_subcommand(*command, std::string(key.str()));
      if (subcommand == nullptr) {
        parents_.emplace_back(key.str());
        const std::string name = table_name();
        parents_.pop_back();
        fail(key.source(), "table [" + name + "] matches no subcommand");
      }
    }
    parents_.emplace_back(key.str());
    push_item("++", {});
    read_table(table, subcommand);
    push_item("--", {});
    parents_.pop_back();
  }

  void read_value(const toml::key& key, const toml::node& value, const CLI::App* command) {
    const std::string name(key.str());
    std::vector<std::string> inputs;
    if (const toml::array* array = value.as_array()) {
      for (const toml::node& element : *array) {
        std::optional<std::string> text = scalar_text(element);
        if (!text) {
          fail(element.source(), "key '" + name + "' " + place() + " holds " +
                                     unsupported_kind(element) +
                                     " inside an array; an array may hold only strings, numbers "
                                     "and booleans");
        }
        inputs.push_back(std::move(*text));
      }
    } else {
      std::optional<std::string> text = scalar_text(value);
      if (!text) {
        fail(value.source(), "key '" + name + "' " + place() + " holds " + unsupported_kind(value) +
                                 ", which no option takes: use a string, number, boolean or an "
                                 "array of those (quote a date to pass it as a string)");
      }
      inputs.push_back(std::move(*text));
    }
    // The value is checked first: for `[[client]]` "an array of tables" says more than "no option".
    if (command != nullptr) {
      const CLI::Option* option = find_option(*command, name);
      if (option == nullptr) {
        fail(key.source(), "key '" + name + "' " + place() +
                               " matches no option (keys are option names without the dashes)");
      }
      if (!option->get_configurable()) {
        fail(key.source(),
             "key '" + name + "' " + place() + " is an option a config file cannot set");
      }
    }
    if (inputs.empty()) return;  // An empty array sets nothing: the option keeps its default.
    push_item(name, std::move(inputs));
  }

  void push_item(std::string name, std::vector<std::string> inputs) {
    CLI::ConfigItem item;
    item.parents = parents_;
    item.name = std::move(name);
    item.inputs = std::move(inputs);
    items_.push_back(std::move(item));
  }

  // The current table as written in a header: "client", "a.b".
  std::string table_name() const {
    std::string name;
    for (const std::string& parent : parents_) {
      if (!name.empty()) name += '.';
      name += parent;
    }
    return name;
  }

  // Where the current key is, for messages: "at the top level" or "in table [client]".
  std::string place() const {
    return parents_.empty() ? std::string("at the top level") : "in table [" + table_name() + "]";
  }

  [[noreturn]] void fail(const toml::source_region& region, const std::string& message) const {
    throw CLI::ConfigError(location(source_name_, region) + message);
  }

  std::string source_name_;
  std::vector<std::string> parents_;
  std::vector<CLI::ConfigItem> items_;
};

[[noreturn]] void throw_syntax_error(const std::string& source_name,
                                     const toml::parse_error& error) {
  // toml++ may quote what it saw, line break included; keep the message on one line.
  std::string description;
  for (const char character : error.description()) {
    if (character == '\n') {
      description += "\\n";
    } else if (character != '\r') {
      description += character;
    }
  }
  throw CLI::ConfigError(location(source_name, error.source()) +
                         "TOML syntax error: " + description);
}

// Whether -h/--help or --help-all was given to `app` or to a subcommand it ran, as CLI11 decides
// when it processes help after reading the config file.
bool help_requested(const CLI::App& app) {
  for (const CLI::Option* option : {app.get_help_ptr(), app.get_help_all_ptr()}) {
    if (option != nullptr && option->count() > 0) return true;
  }
  for (const CLI::App* subcommand : app.get_subcommands()) {
    if (help_requested(*subcommand)) return true;
  }
  return false;
}

// Parses `input`; toml++ reports syntax errors by exception or by result depending on how it was
// built (TOML_EXCEPTIONS), and either way they become CLI::ConfigError here.
toml::table parse_document(std::istream& input, const std::string& source_name) {
#if TOML_EXCEPTIONS
  try {
    return toml::parse(input, source_name);
  } catch (const toml::parse_error& error) {
    throw_syntax_error(source_name, error);
  }
#else
  toml::parse_result result = toml::parse(input, source_name);
  if (!result) throw_syntax_error(source_name, result.error());
  return std::move(result).table();
#endif
}

}  // namespace

std::vector<CLI::ConfigItem> TomlConfig::from_config(std::istream& input) const {
  // CLI11 reads the config file before it looks at --help; a broken file must not hide the help.
  if (app_ != nullptr && help_requested(*app_)) return {};
  const std::string name = source_name();
  // Like ssh with StrictModes: a file another user could write could point tether anywhere.
  if (app_ != nullptr && name != "<config>") {
    if (auto safe = transport::check_path_safety(name); !safe) throw CLI::ConfigError(safe.error());
  }
  const toml::table document = parse_document(input, name);
  return ItemReader(name).read(document, app_);
}

std::string TomlConfig::to_config(const CLI::App* app, bool default_also, bool write_description,
                                  std::string prefix) const {
  return CLI::ConfigTOML().to_config(app, default_also, write_description, std::move(prefix));
}

std::string TomlConfig::source_name() const {
  // CLI11 reads one file per parse (the --config option takes at most one value), and the option
  // holds it (or, when not given, its default) while the file is read.
  if (app_ != nullptr) {
    if (const CLI::Option* option = app_->get_config_ptr(); option != nullptr) {
      try {
        std::string name = option->as<std::string>();
        if (!name.empty()) return name;
      } catch (const CLI::Error&) {
        // Fall through to the generic name.
      }
    }
  }
  return "<config>";
}

CLI::Option* enable_config_file(CLI::App& app, const std::filesystem::path& default_file) {
  app.config_formatter(std::make_shared<TomlConfig>(app));
  app.allow_config_extras(CLI::config_extras_mode::error);
  CLI::Option* option = app.set_config("--config", default_file.string(), kConfigFileHelp);
  option->type_name("FILE");
  return option;
}

}  // namespace tether::command_line
