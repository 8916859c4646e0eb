// Config file tests: a CLI::App shaped like tether's (server and client subcommands with string,
// repeated, integer, float and flag options) reads TOML files through TomlConfig; values land in
// the options, the command line overrides the file, and bad files give errors that say where.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "config_file.hpp"
#include "tests/support/temporary_directory.hpp"

namespace {

namespace fs = std::filesystem;
using tether::command_line::enable_config_file;
using tether::command_line::TomlConfig;
using tether::testing::TemporaryDirectory;
using Strings = std::vector<std::string>;

// tether's command line in miniature: the option kinds tether has, plus a float option and a
// nested subcommand (client tune) to cover what tether does not use yet.
struct TetherLikeCommand {
  explicit TetherLikeCommand(const fs::path& default_file = {}) {
    app.require_subcommand(1);
    app.add_flag("-v,--verbose", verbose, "Log connection-level detail");
    config_option = enable_config_file(app, default_file);

    server = app.add_subcommand("server", "Accept sessions");
    server->add_option("--listen", listen, "Address and port to listen on");
    server->add_option("--allow", allow, "Allowed target; repeat as needed");
    server->add_option("--allow-listen", allow_listen, "Allowed -R listener; repeat as needed");
    server->add_option("--connect-timeout", connect_timeout, "Seconds");
    server->add_option("--auth", auth, "Client authentication")->required();
    server->add_flag("--plain-insecure", server_plain, "No TLS");
    server->add_option("--heartbeat-interval", server_heartbeat_interval, "Milliseconds");
    server->add_option("--cert", certificate, "Certificate file");
    server->add_option("--key", key, "Private key file");
    server->add_option("--missing-heartbeats", server_missing_heartbeats, "Count");
    server->add_option("--linger", linger, "Seconds");

    client = app.add_subcommand("client", "Forward local ports");
    client->add_option("--server", server_address, "Server HOST:PORT")->required();
    client->add_option("--fingerprint", fingerprint, "sha256:HEX");
    client->add_option("--ca", ca, "CA file");
    client->add_option("--missing-heartbeats", missing_heartbeats, "Count");
    client->add_option("-L,--local", forwards, "Local forward; repeat as needed");
    client->add_option("--heartbeat-interval", heartbeat_interval, "Milliseconds");
    client->add_option("--backoff-factor", backoff_factor, "Reconnect backoff multiplier");
    client->add_flag("--exit-on-session-loss", exit_on_session_loss, "Exit with status 4");
    tune = client->add_subcommand("tune", "Nested subcommand");
    tune->add_option("--depth", depth, "A nested option");
  }

  // Parses `arguments` (without the program name).
  void parse(Strings arguments) {
    std::reverse(arguments.begin(), arguments.end());
    app.parse(std::move(arguments));
  }

  CLI::App app{"tether-like"};
  CLI::Option* config_option = nullptr;
  bool verbose = false;

  CLI::App* server = nullptr;
  std::string listen = "0.0.0.0:7443";
  Strings allow;
  Strings allow_listen;
  double connect_timeout = 10;
  std::string auth;
  bool server_plain = false;
  unsigned server_heartbeat_interval = 5000;
  std::string certificate;
  std::string key;
  unsigned server_missing_heartbeats = 3;
  unsigned linger = 600;

  CLI::App* client = nullptr;
  std::string server_address;
  std::string fingerprint;
  std::string ca;
  unsigned missing_heartbeats = 3;
  Strings forwards;
  unsigned heartbeat_interval = 5000;
  double backoff_factor = 2.0;
  bool exit_on_session_loss = false;

  CLI::App* tune = nullptr;
  int depth = 0;
};

class ConfigFileTest : public ::testing::Test {
 protected:
  // Writes `text` to `name` in the temporary directory and returns its path.
  std::string write(const std::string& name, const std::string& text) {
    const fs::path path = directory_.path() / name;
    std::ofstream(path) << text;
    return path.string();
  }

  // The message of the CLI::ConfigError that parsing `arguments` throws ("" if none is thrown).
  static std::string config_error(TetherLikeCommand& command, Strings arguments) {
    try {
      command.parse(std::move(arguments));
    } catch (const CLI::ConfigError& error) {
      return error.what();
    }
    ADD_FAILURE() << "no CLI::ConfigError";
    return "";
  }

  TemporaryDirectory directory_;
};

TEST_F(ConfigFileTest, ValuesFromTheFileLandInTheOptions) {
  const std::string file = write("tether.toml", R"(# a client configuration
[client]
server = "vpn.example.com:7443"
fingerprint = "sha256:00ff"
local = ["8080:127.0.0.1:80", "2222:db.internal:22"]
heartbeat-interval = 1000
backoff-factor = 1.5
exit-on-session-loss = true
)");
  TetherLikeCommand command;
  command.parse({"--config", file, "client"});
  EXPECT_EQ(command.server_address, "vpn.example.com:7443");
  EXPECT_EQ(command.fingerprint, "sha256:00ff");
  EXPECT_EQ(command.forwards, (Strings{"8080:127.0.0.1:80", "2222:db.internal:22"}));
  EXPECT_EQ(command.heartbeat_interval, 1000u);
  EXPECT_DOUBLE_EQ(command.backoff_factor, 1.5);
  EXPECT_TRUE(command.exit_on_session_loss);
  EXPECT_TRUE(command.client->parsed());
  EXPECT_FALSE(command.server->parsed());
  EXPECT_EQ(command.config_option->count(), 1u);
  EXPECT_EQ(command.config_option->as<std::string>(), file);
}

TEST_F(ConfigFileTest, TheCommandLineOverridesAScalar) {
  const std::string file = write("tether.toml", R"([client]
server = "from-file:1"
heartbeat-interval = 1000
)");
  TetherLikeCommand command;
  command.parse({"--config", file, "client", "--heartbeat-interval", "250"});
  EXPECT_EQ(command.heartbeat_interval, 250u);
  EXPECT_EQ(command.server_address, "from-file:1");  // Not on the command line: from the file.
}

TEST_F(ConfigFileTest, TheCommandLineReplacesARepeatedOptionsArray) {
  const std::string file = write("tether.toml", R"([client]
server = "host:1"
local = ["1:a:1", "2:b:2"]
)");
  TetherLikeCommand command;
  command.parse({"--config", file, "client", "-L", "3:c:3"});
  EXPECT_EQ(command.forwards, (Strings{"3:c:3"}));  // Replaced, not extended.
}

TEST_F(ConfigFileTest, ARepeatedOptionTakesAnArrayAndASingleValue) {
  const std::string file = write("tether.toml", R"([server]
auth = "none"
allow = ["127.0.0.1:*", "db.internal:5432"]
[client]
server = "host:1"
L = "8080:localhost:80"  # a one-letter key names the short option
)");
  TetherLikeCommand server_command;
  server_command.parse({"--config", file, "server"});
  EXPECT_EQ(server_command.allow, (Strings{"127.0.0.1:*", "db.internal:5432"}));
  TetherLikeCommand client_command;
  client_command.parse({"--config", file, "client"});
  EXPECT_EQ(client_command.forwards, (Strings{"8080:localhost:80"}));
}

TEST_F(ConfigFileTest, AnEmptyArrayLeavesTheDefault) {
  const std::string file = write("tether.toml", "[server]\nauth = \"none\"\nallow = []\n");
  TetherLikeCommand command;
  command.parse({"--config", file, "server"});
  EXPECT_TRUE(command.allow.empty());
}

TEST_F(ConfigFileTest, FlagsComeFromBooleans) {
  const std::string file = write("tether.toml", R"([server]
auth = "none"
plain-insecure = true
[client]
server = "host:1"
exit-on-session-loss = false
)");
  TetherLikeCommand server_command;
  server_command.parse({"--config", file, "server"});
  EXPECT_TRUE(server_command.server_plain);
  EXPECT_EQ(server_command.auth, "none");  // A required option satisfied by the file.
  TetherLikeCommand client_command;
  client_command.parse({"--config", file, "client", "--exit-on-session-loss"});
  EXPECT_TRUE(client_command.exit_on_session_loss);  // The command-line flag wins over false.
}

// The authentication and lifetime options of issues #14/#15 as tether declares them (strings, a
// signed duration with units, a checked choice); config_auth_test.sh runs the real binary's.
struct AuthOptions {
  explicit AuthOptions(TetherLikeCommand& command) {
    CLI::App& server = *command.server;
    server.add_option("--users", users);
    server.add_option("--jwks", jwks);
    server.add_option("--audience", audience);
    server.add_option("--token-deny-list", deny_list);
    server.add_option("--metrics-listen", metrics_listen);
    server.add_option("--max-reauth", max_reauth_ms)
        ->transform(CLI::AsNumberWithUnit(
            std::map<std::string, std::int64_t>{{"ms", 1}, {"s", 1000}, {"h", 3600 * 1000}},
            CLI::AsNumberWithUnit::CASE_SENSITIVE, "DURATION"));
    server.add_option("--expiry-enforcement", enforcement)
        ->check(CLI::IsMember({"immediate", "on-use"}));
    command.client->add_option("--refresh-window-factor", refresh_window_factor);
    command.client->add_option("--token-command", token_command);
  }
  std::string users, jwks, audience, deny_list, metrics_listen, enforcement = "immediate";
  std::int64_t max_reauth_ms = 0;
  double refresh_window_factor = 0.8;
  std::string token_command;
};

TEST_F(ConfigFileTest, AuthenticationAndLifetimeOptionsComeFromTheFile) {
  const std::string file = write("tether.toml", R"([server]
auth = "SCRAM-SHA-256-PLUS,PLAIN"
users = "/etc/tether/users"
jwks = "/etc/tether/jwks.json"
audience = "tether"
token-deny-list = "/etc/tether/deny"
metrics-listen = "127.0.0.1:9464"
max-reauth = "-1h"
expiry-enforcement = "on-use"
[client]
server = "host:1"
token-command = "get-token --audience tether"
refresh-window-factor = 0.9
)");
  TetherLikeCommand server_command;
  AuthOptions server_options(server_command);
  server_command.parse({"--config", file, "server"});
  EXPECT_EQ(server_command.auth, "SCRAM-SHA-256-PLUS,PLAIN");
  EXPECT_EQ(server_options.users, "/etc/tether/users");
  EXPECT_EQ(server_options.jwks, "/etc/tether/jwks.json");
  EXPECT_EQ(server_options.audience, "tether");
  EXPECT_EQ(server_options.deny_list, "/etc/tether/deny");
  EXPECT_EQ(server_options.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(server_options.max_reauth_ms, -3600 * 1000);  // the unit's transform applies
  EXPECT_EQ(server_options.enforcement, "on-use");
  TetherLikeCommand client_command;
  AuthOptions client_options(client_command);
  client_command.parse({"--config", file, "client"});
  EXPECT_EQ(client_options.token_command, "get-token --audience tether");
  EXPECT_DOUBLE_EQ(client_options.refresh_window_factor, 0.9);
}

TEST_F(ConfigFileTest, ABadCheckedValueInTheFileIsRefusedNamingTheOption) {
  const auto message_for = [&](const std::string& line) -> std::string {
    const std::string file = write("bad.toml", "[server]\nauth = \"PLAIN\"\n" + line + "\n");
    TetherLikeCommand command;
    AuthOptions options(command);
    try {
      command.parse({"--config", file, "server"});
    } catch (const CLI::ParseError& error) {
      return error.what();
    }
    return "(accepted)";
  };
  const std::string enforcement = message_for("expiry-enforcement = \"sometimes\"");
  EXPECT_NE(enforcement.find("--expiry-enforcement: sometimes not in {immediate,on-use}"),
            std::string::npos)
      << enforcement;
  const std::string reauth = message_for("max-reauth = \"forever\"");
  EXPECT_NE(reauth.find("--max-reauth"), std::string::npos) << reauth;
  // A number option given a word: CLI11's conversion error names the option.
  const std::string file =
      write("client.toml", "[client]\nserver = \"h:1\"\nrefresh-window-factor = \"often\"\n");
  TetherLikeCommand command;
  AuthOptions options(command);
  try {
    command.parse({"--config", file, "client"});
    ADD_FAILURE() << "a word for --refresh-window-factor was accepted";
  } catch (const CLI::ConversionError& error) {
    EXPECT_NE(std::string(error.what()).find("refresh-window-factor"), std::string::npos)
        << error.what();
  }
}

TEST_F(ConfigFileTest, TopLevelKeysSetTheMainCommandsOptions) {
  const std::string file = write("tether.toml", "verbose = true\n[client]\nserver = \"host:1\"\n");
  TetherLikeCommand command;
  command.parse({"--config", file, "client"});
  EXPECT_TRUE(command.verbose);
}

TEST_F(ConfigFileTest, OneFileServesBothSubcommands) {
  const std::string file = write("tether.toml", R"([server]
auth = "none"
heartbeat-interval = 700
[client]
server = "host:1"
heartbeat-interval = 900
)");
  TetherLikeCommand command;
  command.parse({"--config", file, "client"});
  EXPECT_EQ(command.heartbeat_interval, 900u);
  EXPECT_FALSE(command.server->parsed());
}

TEST_F(ConfigFileTest, NestedTablesSetNestedSubcommands) {
  const std::string file = write("tether.toml", R"([client]
server = "host:1"
[client.tune]
depth = 3
)");
  TetherLikeCommand command;
  command.parse({"--config", file, "client", "tune"});
  EXPECT_EQ(command.depth, 3);
  EXPECT_EQ(command.server_address, "host:1");
}

TEST_F(ConfigFileTest, DottedKeysAndInlineTablesAreTables) {
  const std::string file =
      write("tether.toml", "client.server = \"host:1\"\nserver = { auth = \"none\" }\n");
  TetherLikeCommand command;
  command.parse({"--config", file, "client"});
  EXPECT_EQ(command.server_address, "host:1");
}

TEST_F(ConfigFileTest, AnUnknownKeyIsAnErrorNamingItAndItsTable) {
  const std::string file = write("tether.toml", R"([client]
server = "host:1"
fingerprnt = "sha256:00"
)");
  TetherLikeCommand command;
  const std::string message = config_error(command, {"--config", file, "client"});
  EXPECT_NE(message.find(file + ":3:1:"), std::string::npos) << message;
  EXPECT_NE(message.find("'fingerprnt'"), std::string::npos) << message;
  EXPECT_NE(message.find("[client]"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, AnUnknownKeyInAnotherSubcommandsTableIsAlsoAnError) {
  const std::string file = write("tether.toml", R"([server]
lisen = "0.0.0.0:1"
[client]
server = "host:1"
)");
  TetherLikeCommand command;
  const std::string message = config_error(command, {"--config", file, "client"});
  EXPECT_NE(message.find("'lisen' in table [server]"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, AnUnknownTopLevelKeyIsAnError) {
  const std::string file = write("tether.toml", "verbosity = 2\n");
  TetherLikeCommand command;
  const std::string message = config_error(command, {"--config", file, "client"});
  EXPECT_NE(message.find("'verbosity' at the top level"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, AnUnknownTableIsAnError) {
  const std::string file = write("tether.toml", "[clinet]\nserver = \"host:1\"\n");
  TetherLikeCommand command;
  const std::string message = config_error(command, {"--config", file, "client"});
  EXPECT_NE(message.find(file + ":1:"), std::string::npos) << message;
  EXPECT_NE(message.find("[clinet] matches no subcommand"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, AnOptionThatIsNotConfigurableIsAnError) {
  const std::string file = write("tether.toml", "config = \"other.toml\"\n");
  TetherLikeCommand command;
  const std::string message = config_error(command, {"--config", file, "client"});
  EXPECT_NE(message.find("'config'"), std::string::npos) << message;
  EXPECT_NE(message.find("cannot set"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, ASyntaxErrorGivesTheFileLineAndColumn) {
  const std::string file = write("tether.toml", R"([client]
server = "host:1"
fingerprint = "sha256:00
)");
  TetherLikeCommand command;
  const std::string message = config_error(command, {"--config", file, "client"});
  EXPECT_NE(message.find(file + ":3:"), std::string::npos) << message;
  EXPECT_NE(message.find("TOML syntax error"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;  // One line.
}

TEST_F(ConfigFileTest, ABrokenFileDoesNotHideTheHelp) {
  const std::string file = write("tether.toml", "[client]\nserver = \"host:1\nnope = 1\n");
  TetherLikeCommand command;
  EXPECT_THROW(command.parse({"--config", file, "client", "--help"}), CLI::CallForHelp);
  TetherLikeCommand top_level;
  EXPECT_THROW(top_level.parse({"--config", file, "--help"}), CLI::CallForHelp);
}

TEST_F(ConfigFileTest, ADateIsAnErrorNamingTheKey) {
  const std::string file = write("tether.toml", "[client]\nserver = 1979-05-27\n");
  TetherLikeCommand command;
  const std::string message = config_error(command, {"--config", file, "client"});
  EXPECT_NE(message.find(file + ":2:"), std::string::npos) << message;
  EXPECT_NE(message.find("'server' in table [client] holds a date"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, ATableInsideAnArrayIsAnErrorNamingTheKey) {
  const std::string file =
      write("tether.toml", "[client]\nserver = \"host:1\"\nlocal = [{ port = 80 }]\n");
  TetherLikeCommand command;
  const std::string message = config_error(command, {"--config", file, "client"});
  EXPECT_NE(message.find("'local' in table [client] holds a table inside an array"),
            std::string::npos)
      << message;
}

TEST_F(ConfigFileTest, AnArrayOfTablesIsAnError) {
  const std::string file = write("tether.toml", "[[client]]\nserver = \"host:1\"\n");
  TetherLikeCommand command;
  const std::string message = config_error(command, {"--config", file, "client"});
  EXPECT_NE(message.find("'client' at the top level holds a table inside an array"),
            std::string::npos)
      << message;
}

TEST_F(ConfigFileTest, AnArrayInsideAnArrayIsAnError) {
  const std::string file = write("tether.toml", "[client]\nlocal = [[\"1:a:1\"]]\n");
  TetherLikeCommand command;
  const std::string message = config_error(command, {"--config", file, "client"});
  EXPECT_NE(message.find("'local' in table [client] holds an array inside an array"),
            std::string::npos)
      << message;
}

TEST_F(ConfigFileTest, AValueOfTheWrongTypeForTheOptionIsCLI11sConversionError) {
  const std::string file =
      write("tether.toml", "[client]\nserver = \"host:1\"\nheartbeat-interval = \"often\"\n");
  TetherLikeCommand command;
  EXPECT_THROW(command.parse({"--config", file, "client"}), CLI::ConversionError);
}

TEST_F(ConfigFileTest, AMissingFileIsAnError) {
  TetherLikeCommand command;
  const std::string missing = (directory_.path() / "absent.toml").string();
  try {
    command.parse({"--config", missing, "client", "--server", "host:1"});
    ADD_FAILURE() << "no error for a missing --config file";
  } catch (const CLI::FileError& error) {
    EXPECT_NE(std::string(error.what()).find(missing), std::string::npos) << error.what();
  }
}

TEST_F(ConfigFileTest, OnlyOneConfigFileMayBeGiven) {
  const std::string first = write("first.toml", "");
  const std::string second = write("second.toml", "");
  TetherLikeCommand command;
  EXPECT_THROW(
      command.parse({"--config", first, "--config", second, "client", "--server", "host:1"}),
      CLI::ParseError);
}

TEST_F(ConfigFileTest, TheDefaultFileIsReadWhenItExists) {
  const std::string file = write("default.toml", "[client]\nserver = \"from-default:1\"\n");
  TetherLikeCommand command(file);
  command.parse({"client"});
  EXPECT_EQ(command.server_address, "from-default:1");
  EXPECT_EQ(command.config_option->count(), 1u);
}

TEST_F(ConfigFileTest, AnAbsentDefaultFileIsSkipped) {
  TetherLikeCommand command(directory_.path() / "absent.toml");
  command.parse({"client", "--server", "host:1"});
  EXPECT_EQ(command.server_address, "host:1");
  EXPECT_EQ(command.config_option->count(), 0u);
}

TEST_F(ConfigFileTest, AnExplicitFileReplacesTheDefault) {
  const std::string default_file = write("default.toml", "[client]\nserver = \"default:1\"\n");
  const std::string file = write("chosen.toml", "[client]\nserver = \"chosen:1\"\n");
  TetherLikeCommand command(default_file);
  command.parse({"--config", file, "client"});
  EXPECT_EQ(command.server_address, "chosen:1");
}

TEST_F(ConfigFileTest, ABrokenDefaultFileIsAnError) {
  const std::string file = write("default.toml", "[client\n");
  TetherLikeCommand command(file);
  const std::string message = config_error(command, {"client", "--server", "host:1"});
  EXPECT_NE(message.find(file + ":1:"), std::string::npos) << message;
}

TEST_F(ConfigFileTest, CLI11PrintsTheErrorAndExitsNonZero) {
  const std::string file = write("tether.toml", "[client]\nfingerprnt = \"x\"\n");
  TetherLikeCommand command;
  std::ostringstream output;
  std::ostringstream errors;
  try {
    command.parse({"--config", file, "client"});
    ADD_FAILURE() << "no error";
  } catch (const CLI::ParseError& error) {
    EXPECT_NE(command.app.exit(error, output, errors), 0);
  }
  EXPECT_NE(errors.str().find("'fingerprnt' in table [client]"), std::string::npos) << errors.str();
}

TEST_F(ConfigFileTest, TheHelpShowsTheOptionAndTheDefaultPath) {
  TetherLikeCommand command(directory_.path() / "tether.toml");
  const std::string help = command.app.help();
  EXPECT_NE(help.find("--config"), std::string::npos) << help;
  EXPECT_NE(help.find("command-line flags override it"), std::string::npos) << help;
  EXPECT_NE(help.find((directory_.path() / "tether.toml").string()), std::string::npos) << help;
}

TEST_F(ConfigFileTest, WrittenConfigurationReadsBack) {
  TetherLikeCommand original;
  original.parse({"-v", "client", "--server", "host:1", "-L", "1:a:1", "-L", "2:b:2",
                  "--heartbeat-interval", "1200", "--backoff-factor", "1.25",
                  "--exit-on-session-loss"});
  const std::string file = write("written.toml", original.app.config_to_str());
  TetherLikeCommand reread;
  reread.parse({"--config", file, "client"});
  EXPECT_TRUE(reread.verbose);
  EXPECT_EQ(reread.server_address, "host:1");
  EXPECT_EQ(reread.forwards, (Strings{"1:a:1", "2:b:2"}));
  EXPECT_EQ(reread.heartbeat_interval, 1200u);
  EXPECT_DOUBLE_EQ(reread.backoff_factor, 1.25);
  EXPECT_TRUE(reread.exit_on_session_loss);
}

// The example files in docs/examples use only options tether has (as far as this miniature knows).
TEST(ExampleFiles, ReadWithoutErrors) {
  const fs::path examples = fs::path(__FILE__).parent_path() / ".." / ".." / "docs" / "examples";
  TetherLikeCommand client_command;
  client_command.parse({"--config", (examples / "client.toml").string(), "client"});
  EXPECT_EQ(client_command.server_address, "vpn.example.com:7443");
  EXPECT_EQ(client_command.forwards.size(), 2u);
  TetherLikeCommand server_command;
  server_command.parse({"--config", (examples / "server.toml").string(), "server"});
  EXPECT_EQ(server_command.auth, "none");
  EXPECT_EQ(server_command.allow.size(), 4u);
  EXPECT_EQ(server_command.allow_listen.size(), 1u);
  EXPECT_DOUBLE_EQ(server_command.connect_timeout, 10);
  EXPECT_EQ(server_command.linger, 600u);
}

// The formatter alone, as CLI11 sees it: the items for each kind of value, in file order, each
// table bracketed by CLI11's "++" and "--" items.
TEST(TomlConfig, ConvertsValuesToCLI11Items) {
  std::istringstream input(R"(verbose = true
count = 42
ratio = 0.5
[client]
server = "host:1"
local = ["a", "b"]
negative = -7
)");
  const std::vector<CLI::ConfigItem> items = TomlConfig().from_config(input);
  std::vector<std::string> described;
  for (const CLI::ConfigItem& item : items) {
    std::string text = item.fullname() + "=";
    for (const std::string& value : item.inputs) text += "<" + value + ">";
    described.push_back(text);
  }
  EXPECT_EQ(described, (Strings{"verbose=<true>", "count=<42>", "ratio=<0.5>",
                                "client.++=", "client.server=<host:1>", "client.local=<a><b>",
                                "client.negative=<-7>", "client.--="}));
}

TEST(TomlConfig, WithoutAnAppCLI11StillReportsUnknownKeys) {
  CLI::App app{"plain"};
  std::string server;
  app.add_option("--server", server);
  app.config_formatter(std::make_shared<TomlConfig>());
  app.allow_config_extras(CLI::config_extras_mode::error);
  std::istringstream good("server = \"host:1\"\n");
  app.parse_from_stream(good);
  EXPECT_EQ(server, "host:1");
  std::istringstream bad("srever = \"host:1\"\n");
  EXPECT_THROW(app.parse_from_stream(bad), CLI::ConfigError);
}

TEST(TomlConfig, WithoutAnAppSyntaxErrorsNameTheInput) {
  std::istringstream input("a = \n");
  try {
    (void)TomlConfig().from_config(input);
    ADD_FAILURE() << "no error";
  } catch (const CLI::ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("<config>:1:"), std::string::npos) << error.what();
  }
}

}  // namespace
