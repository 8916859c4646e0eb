// The control socket and its status document: the socket's answers and ownership,
// query_control_socket, format_status (what `tether status` prints) and describe_session.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

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
