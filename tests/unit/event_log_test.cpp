// The JSON event log (--log-format json): each session event is one JSON object with its fields,
// every other message one object with its text, and what a peer chose arrives escaped.
#include <gtest/gtest.h>

#include <spdlog/sinks/ostream_sink.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "transport/event_log.hpp"

namespace tether::transport {
namespace {

namespace events = session::events;
using nlohmann::json;

session::SessionId sample_id() {
  session::SessionId id{};
  for (std::size_t index = 0; index < id.size(); ++index) id[index] = std::byte(0xa0 + index);
  return id;
}

constexpr const char* kSampleHex = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf";

TEST(EventLog, LifecycleEventsCarryTheirFields) {
  auto established = lifecycle_json("client", sample_id(), events::Established{sample_id()});
  ASSERT_TRUE(established);
  EXPECT_EQ(json(*established),
            (json{{"event", "established"}, {"side", "client"}, {"session", kSampleHex}}));

  auto suspended = lifecycle_json("server", sample_id(),
                                  events::Suspended{session::SuspendCause::kHeartbeatTimeout});
  ASSERT_TRUE(suspended);
  EXPECT_EQ((*suspended)["event"], "suspended");
  EXPECT_EQ((*suspended)["side"], "server");
  EXPECT_EQ((*suspended)["cause"], "heartbeat-timeout");

  auto resumed =
      lifecycle_json("client", sample_id(), events::Resumed{std::chrono::milliseconds(1234), 5678});
  ASSERT_TRUE(resumed);
  EXPECT_EQ((*resumed)["downtime_ms"], 1234);
  EXPECT_EQ((*resumed)["bytes_replayed"], 5678);

  auto closed = lifecycle_json("client", sample_id(),
                               events::Closed{wire::Reason::kShutdown, true, true, 42});
  ASSERT_TRUE(closed);
  EXPECT_EQ(json(*closed), (json{{"event", "closed"},
                                 {"side", "client"},
                                 {"session", kSampleHex},
                                 {"reason", "shutdown"},
                                 {"by_peer", true},
                                 {"transient", true},
                                 {"unacknowledged_bytes", 42}}));

  EXPECT_FALSE(lifecycle_json("client", sample_id(), events::Writable{}));
  EXPECT_FALSE(lifecycle_json("client", sample_id(), events::StreamOpened{4}));
}

TEST(EventLog, ParsesOnlyItsTwoFormats) {
  EXPECT_EQ(parse_log_format("text"), LogFormat::kText);
  EXPECT_EQ(parse_log_format("json"), LogFormat::kJson);
  EXPECT_FALSE(parse_log_format("JSON"));
  EXPECT_FALSE(parse_log_format(""));
}

// Runs `body` with the default logger writing into a string in `format`; returns its lines.
template <typename Body>
std::vector<std::string> logged_lines(LogFormat format, Body body) {
  std::ostringstream out;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
  logger->set_level(spdlog::level::info);
  spdlog::set_default_logger(logger);
  set_log_format(format);
  body();
  set_log_format(LogFormat::kText);
  spdlog::set_default_logger(previous);
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(EventLog, JsonFormatWritesOneObjectPerLine) {
  const auto lines = logged_lines(LogFormat::kJson, [] {
    EXPECT_TRUE(log_lifecycle_json("client", sample_id(),
                                   events::Closed{wire::Reason::kUnknownSession, true, false, 0}));
    EXPECT_FALSE(log_lifecycle_json("client", sample_id(), events::Writable{}));
    // A peer-chosen string: quotes, a newline, a control byte, bytes that are not UTF-8.
    spdlog::warn("refused {}", std::string("\"evil\"\n\x1b[31m\xff\xfe"));
    log_connect_failure({TransportErrorKind::kRefused, "cannot connect to 127.0.0.1:1: refused"});
    spdlog::debug("below the level: not written");
  });
  ASSERT_EQ(lines.size(), 3u);
  for (const auto& line : lines) {
    EXPECT_TRUE(json::accept(line)) << line;
    for (const char byte : line) EXPECT_TRUE(byte >= 0x20 && byte < 0x7f) << line;
  }
  const json closed = json::parse(lines[0]);
  EXPECT_EQ(closed["level"], "info");
  EXPECT_TRUE(closed["time"].is_string());
  EXPECT_EQ(closed["event"], "closed");
  EXPECT_EQ(closed["reason"], "unknown-session");
  EXPECT_EQ(closed["by_peer"], true);
  EXPECT_EQ(closed["transient"], false);
  EXPECT_EQ(closed["session"], kSampleHex);
  const json message = json::parse(lines[1]);
  EXPECT_EQ(message["level"], "warning");
  EXPECT_FALSE(message.contains("event"));
  EXPECT_EQ(message["message"].get<std::string>().substr(0, 17), "refused \"evil\"\n\x1b[");
  const json failure = json::parse(lines[2]);
  EXPECT_EQ(failure["event"], "connect-failed");
  EXPECT_EQ(failure["error"], "refused");
}

TEST(EventLog, TextFormatKeepsProseAndWritesNoJsonEvent) {
  const auto lines = logged_lines(LogFormat::kText, [] {
    json_event(spdlog::level::info, {{"event", "outcome"}});
    log_connect_failure({TransportErrorKind::kResolve, "cannot resolve nowhere.invalid"});
  });
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("client cannot resolve nowhere.invalid"), std::string::npos) << lines[0];
}

}  // namespace
}  // namespace tether::transport
