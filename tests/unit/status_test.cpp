// The control socket and its status document: the socket's answers and ownership,
// query_control_socket, format_status (what `tether status` prints) and describe_session.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <asio.hpp>

#include "tests/support/seeded_random.hpp"
#include "transport/status.hpp"

namespace tether {
namespace {

class ControlSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory_ = std::filesystem::temp_directory_path() /
                 ("tether-control-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(directory_);
  }
  void TearDown() override { std::filesystem::remove_all(directory_); }
  std::filesystem::path directory_;
};

TEST_F(ControlSocketTest, AnswersStatusAndRejectsUnknownRequests) {
  asio::io_context io;
  const auto path = directory_ / "client-1.sock";
  transport::ControlSocket control(io, path, [] {
    return nlohmann::json{{"role", "client"}, {"sessions", nlohmann::json::array()}};
  });
  ASSERT_TRUE(control.start());
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::thread runner([&] { io.run_for(std::chrono::seconds(5)); });
  auto status = transport::query_control_socket(path);
  auto unknown = transport::query_control_socket(path, "reboot");
  io.stop();
  runner.join();
  ASSERT_TRUE(status) << status.error();
  EXPECT_EQ((*status)["role"], "client");
  ASSERT_TRUE(unknown) << unknown.error();
  EXPECT_NE((*unknown)["error"].get<std::string>().find("unknown request 'reboot'"),
            std::string::npos);
}

TEST_F(ControlSocketTest, PassesAdministrativeRequestsToTheAdministratorOnly) {
  asio::io_context io;
  const auto path = directory_ / "server-1.sock";
  std::vector<transport::ControlRequest> seen;
  transport::ControlSocket control(
      io, path,
      [] {
        return nlohmann::json{{"role", "server"}};
      },
      [&](const transport::ControlRequest& request) {
        seen.push_back(request);
        return nlohmann::json{{"revoked", 2}};
      });
  ASSERT_TRUE(control.start());
  std::thread runner([&] { io.run_for(std::chrono::seconds(5)); });
  auto revoke = transport::query_control_socket(path, "revoke user alice");
  auto malformed = transport::query_control_socket(path, "revoke user ");
  auto status = transport::query_control_socket(path, "status");
  io.stop();
  runner.join();
  ASSERT_TRUE(revoke) << revoke.error();
  EXPECT_EQ((*revoke)["revoked"], 2);
  ASSERT_TRUE(malformed) << malformed.error();
  EXPECT_TRUE(malformed->contains("error"));
  ASSERT_TRUE(status) << status.error();
  EXPECT_EQ((*status)["role"], "server");
  ASSERT_EQ(seen.size(), 1u);  // neither the malformed request nor status reached it
  EXPECT_EQ(seen[0].kind, transport::ControlRequest::Kind::kRevokeUser);
  EXPECT_EQ(seen[0].argument, "alice");
}

TEST_F(ControlSocketTest, AProcessWithoutAnAdministratorRefusesAdministrativeRequests) {
  asio::io_context io;
  const auto path = directory_ / "client-2.sock";
  transport::ControlSocket control(io, path, [] { return nlohmann::json::object(); });
  ASSERT_TRUE(control.start());
  std::thread runner([&] { io.run_for(std::chrono::seconds(5)); });
  auto reload = transport::query_control_socket(path, "reload");
  io.stop();
  runner.join();
  ASSERT_TRUE(reload) << reload.error();
  EXPECT_NE((*reload)["error"].get<std::string>().find("no administrative requests"),
            std::string::npos);
}

// SO_PEERCRED: a peer whose uid is not the one allowed is refused before its request is read,
// whatever the socket file's mode (here: the test's own uid is made "another user").
TEST_F(ControlSocketTest, RefusesAPeerOfAnotherUid) {
  asio::io_context io;
  const auto path = directory_ / "server-2.sock";
  int administered = 0;
  transport::ControlSocket control(
      io, path,
      [] {
        return nlohmann::json{{"role", "server"}};
      },
      [&](const transport::ControlRequest&) {
        ++administered;
        return nlohmann::json{{"revoked", 1}};
      });
  control.set_allowed_uid(::geteuid() + 1);
  ASSERT_TRUE(control.start());
  std::thread runner([&] { io.run_for(std::chrono::seconds(5)); });
  auto revoke = transport::query_control_socket(path, "revoke user alice");
  auto status = transport::query_control_socket(path, "status");
  io.stop();
  runner.join();
  ASSERT_TRUE(revoke) << revoke.error();
  EXPECT_NE((*revoke)["error"].get<std::string>().find("permission denied"), std::string::npos);
  ASSERT_TRUE(status) << status.error();
  EXPECT_TRUE(status->contains("error"));
  EXPECT_EQ(administered, 0);
}

TEST(ControlRequest, ParsesTheKnownRequestsStrictly) {
  using Kind = transport::ControlRequest::Kind;
  EXPECT_EQ(transport::parse_control_request("status")->kind, Kind::kStatus);
  EXPECT_EQ(transport::parse_control_request("reload")->kind, Kind::kReload);
  const auto user = transport::parse_control_request("revoke user CN With Spaces");
  ASSERT_TRUE(user);
  EXPECT_EQ(user->kind, Kind::kRevokeUser);
  EXPECT_EQ(user->argument, "CN With Spaces");
  const auto session = transport::parse_control_request("revoke session 0123ABCDef");
  ASSERT_TRUE(session);
  EXPECT_EQ(session->kind, Kind::kRevokeSession);
  EXPECT_EQ(session->argument, "0123abcdef");
  EXPECT_EQ(transport::format_control_request(*session), "revoke session 0123abcdef");
  EXPECT_EQ(transport::format_control_request(*user), "revoke user CN With Spaces");
  for (const char* bad :
       {"", "Status", "status ", " status", "reload now", "revoke", "revoke user", "revoke user ",
        "revoke  user alice", "revoke user a\tb", "revoke user a\x1b[2J", "revoke session 1234567",
        "revoke session 0123456789abcdef0123456789abcdef0", "revoke session 0123456z",
        "revoke session  01234567", "revoke group admins"}) {
    EXPECT_FALSE(transport::parse_control_request(bad)) << bad;
  }
  EXPECT_FALSE(transport::parse_control_request("revoke user " + std::string(257, 'a')));
  EXPECT_TRUE(transport::parse_control_request("revoke user " + std::string(256, 'a')));
  EXPECT_FALSE(
      transport::parse_control_request(std::string(transport::kMaxControlRequest + 1, 's')));
  // The refusal of an unknown request escapes it.
  const auto hostile = transport::parse_control_request("\x1b]0;owned\x07");
  ASSERT_FALSE(hostile);
  EXPECT_EQ(hostile.error().find('\x1b'), std::string::npos);
}

TEST_F(ControlSocketTest, ReplacesAStaleSocketButNotALiveOne) {
  asio::io_context io;
  const auto path = directory_ / "server-2.sock";
  {
    transport::ControlSocket first(io, path, [] { return nlohmann::json::object(); });
    ASSERT_TRUE(first.start());
    std::thread runner([&] { io.run_for(std::chrono::seconds(5)); });
    transport::ControlSocket second(io, path, [] { return nlohmann::json::object(); });
    auto refused = second.start();
    io.stop();
    runner.join();
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().find("in use by another tether process"), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(path));  // removed by its owner
  // A file left by a dead process (a socket nobody listens on) is replaced.
  {
    asio::local::stream_protocol::acceptor orphan(
        io, asio::local::stream_protocol::endpoint(path.string()));
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  io.restart();
  transport::ControlSocket third(io, path, [] { return nlohmann::json::object(); });
  EXPECT_TRUE(third.start());
}

TEST(QueryControlSocket, MissingSocketIsAnError) {
  auto status = transport::query_control_socket("/nonexistent/tether.sock");
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().find("cannot connect to /nonexistent/tether.sock"), std::string::npos);
}

TEST(FormatStatus, ShowsStateOutageBytesAndDowntime) {
  const auto status = nlohmann::json::parse(R"({
    "role": "client", "pid": 42, "server": "vpn:7443",
    "sessions": [{"id": "00112233445566778899aabbccddeeff", "state": "suspended",
                  "current_outage_ms": 1500.0, "rtt_ms": 0.42, "streams": 3, "paths": 1,
                  "bytes_written": 3145728, "bytes_acknowledged": 2097152,
                  "bytes_buffered": 1048576, "bytes_received": 512, "bytes_replayed": 0,
                  "resumes": 2, "downtime_ms": 1530.0, "heartbeat_interval_ms": 5000.0,
                  "missing_heartbeats_allowed": 3}]})");
  const auto text = transport::format_status(status);
  EXPECT_NE(text.find("client (pid 42), server vpn:7443, 1 session"), std::string::npos) << text;
  EXPECT_NE(text.find("session 0011223344556677 suspended for 1500 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("rtt 0.42 ms, 3 streams"), std::string::npos) << text;
  EXPECT_NE(text.find("written 3.0 MiB (acknowledged 2.0 MiB, buffered 1.0 MiB)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("resumes 2, downtime 1530 ms"), std::string::npos) << text;
}

TEST(DescribeSession, ReportsAConnectingClientSession) {
  testing::SeededRandom random(7);
  const auto now = session::Clock::now();
  session::Session client(session::SessionConfig{}, random, now);
  const auto described = transport::describe_session(client, now);
  EXPECT_EQ(described["state"], "connecting");
  EXPECT_EQ(described["id"].get<std::string>().size(), 32u);
  EXPECT_TRUE(described["rtt_ms"].is_null());
  EXPECT_EQ(described["bytes_buffered"], 0);
}

}  // namespace
}  // namespace tether
