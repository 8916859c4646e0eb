// StreamBridge: its memory (a stream that has not sent its header costs no buffer, and a target
// that never reads makes the bridge hold no more than what one write could not take), and the order
// of a reply and the target's data. The bridges run on a real io_context against the server side
// of an in-memory session pair (Loopback).
#include <gtest/gtest.h>

#include <malloc.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <asio.hpp>

#include "tests/unit/loopback.hpp"
#include "transport/runtime.hpp"
#include "tunnel/tunnel.hpp"

namespace tether {
namespace {

using test::Loopback;
namespace events = session::events;

class NoObserver final : public transport::SessionObserver {
 public:
  void on_event(const session::SessionId&, session::Session*, const session::Event&) override {}
  void on_fatal(const transport::TransportError&) override {}
};

// A runtime whose processing pass moves the Loopback's bytes: wake() from a bridge pumps both
// sessions, whose server events reach the bridges through Loopback::server_app.
class LoopbackRuntime final : public transport::RuntimeBase {
 public:
  LoopbackRuntime(asio::io_context& io, NoObserver& observer, Loopback& loopback)
      : RuntimeBase(io, observer), loopback_(loopback) {}
  void pump() {
    if (holding) return;
    loopback_.now = session::Clock::now();
    loopback_.pump();
  }
  // While set, nothing moves between the two sessions (no data, no acknowledgements).
  bool holding = false;

 private:
  void core_receive(session::PathId, std::span<const std::byte>) override {}
  std::size_t core_take(session::PathId, std::vector<std::byte>&, std::size_t) override {
    return 0;
  }
  void core_closed(session::PathId) override {}
  void core_ready(std::vector<session::PathId>& out) override { out.clear(); }  // no connections
  bool core_wants_input(session::PathId) override { return true; }
  std::optional<session::Time> core_deadline() override { return std::nullopt; }
  void core_timeout() override {}
  bool drain_events() override {
    pump();
    return false;
  }
  Loopback& loopback_;
};

std::size_t heap_in_use() {
  const auto info = ::mallinfo2();
  return info.uordblks + info.hblkhd;
}

class StreamBridgeTest : public ::testing::Test {
 protected:
  explicit StreamBridgeTest(session::SessionConfig config = test::test_config())
      : loopback_(config, config), runtime_(io_, observer_, loopback_) {
    loopback_.now = session::Clock::now();
    loopback_.server_app = [this](const session::SessionEvent& tagged) { on_server(tagged); };
    loopback_.establish();
  }

  void on_server(const session::SessionEvent& tagged) {
    const auto& event = tagged.event;
    if (const auto* opened = std::get_if<events::StreamOpened>(&event)) {
      auto bridge = std::make_shared<tunnel::StreamBridge>(
          io_, runtime_, [this] { return loopback_.server_session(); }, opened->stream, "test");
      bridges_[opened->stream] = bridge;
      bridge->start_acceptor([this](const tunnel::StreamRequest& request)
                                 -> Expected<tunnel::ConnectPlan, tunnel::Reply> {
        if (before_connect_) before_connect_();
        return tunnel::ConnectPlan{request, {}, tunnel::kDefaultConnectTimeout, {}};
      });
    } else if (const auto* readable = std::get_if<events::StreamReadable>(&event)) {
      if (auto it = bridges_.find(readable->stream); it != bridges_.end())
        it->second->on_readable();
    } else if (const auto* finished = std::get_if<events::StreamFinished>(&event)) {
      if (auto it = bridges_.find(finished->stream); it != bridges_.end())
        it->second->on_readable();
    } else if (std::holds_alternative<events::Writable>(event)) {
      for (auto& [id, bridge] : bridges_) bridge->on_writable();
    }
  }

  // Runs the io_context and the pair for a while.
  void run_for(std::chrono::milliseconds duration) {
    const auto until = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < until) {
      io_.run_for(std::chrono::milliseconds(5));
      io_.restart();
      runtime_.pump();
    }
  }

  asio::io_context io_;
  NoObserver observer_;
  Loopback loopback_;
  LoopbackRuntime runtime_;
  std::map<session::StreamId, std::shared_ptr<tunnel::StreamBridge>> bridges_;
  // Called when a bridge has its header, before it connects to the target.
  std::function<void()> before_connect_;
};

TEST_F(StreamBridgeTest, StreamsWithoutHeaderHoldNoBuffer) {
  constexpr std::size_t kStreams = 1000;
  run_for(std::chrono::milliseconds(20));
  const std::size_t before = heap_in_use();
  for (std::size_t index = 0; index < kStreams; ++index)
    ASSERT_TRUE(loopback_.client.open_stream(0, loopback_.now));
  run_for(std::chrono::milliseconds(100));
  ASSERT_EQ(bridges_.size(), kStreams);
  const std::size_t after = heap_in_use();
  for (const auto& [id, bridge] : bridges_) EXPECT_EQ(bridge->held_bytes(), 0u);
  // Both sessions' stream state, the bridges, their timers and coroutine frames: a few KiB per
  // stream, not a copy buffer (256 KiB each before).
  const std::size_t per_stream = (after > before ? after - before : 0) / kStreams;
  EXPECT_LT(per_stream, 8u << 10) << per_stream << " bytes per stream";
}

TEST_F(StreamBridgeTest, PartialHeaderHoldsOnlyItsBytes) {
  auto stream = loopback_.client.open_stream(0, loopback_.now);
  ASSERT_TRUE(stream);
  const auto header = tunnel::encode(
      tunnel::StreamRequest{tunnel::RequestKind::kConnect, std::string(200, 'h'), 80});
  ASSERT_TRUE(loopback_.client.write(*stream, std::span(header).first(100), loopback_.now));
  run_for(std::chrono::milliseconds(50));
  ASSERT_EQ(bridges_.size(), 1u);
  EXPECT_EQ(bridges_.begin()->second->held_bytes(), 100u);
}

// A stream the server's bridge ends as no longer granted (after a re-authentication) reaches the
// client as a reset that says so (kResetNotGranted, not the generic code), and the client's bridge
// aborts its local connection at once: the local program reads a reset, not a half-open socket.
TEST_F(StreamBridgeTest, NotGrantedResetReachesTheLocalProgramWithItsReason) {
  const auto loopback_address = asio::ip::make_address("127.0.0.1");
  asio::ip::tcp::acceptor target(io_, {loopback_address, 0});
  asio::ip::tcp::socket target_side(io_);
  target.async_accept(target_side, [](std::error_code) {});
  // The local program's connection to the client's -L port, and the client's end of it.
  asio::ip::tcp::acceptor local(io_, {loopback_address, 0});
  asio::ip::tcp::socket program(io_);
  program.connect(local.local_endpoint());
  asio::ip::tcp::socket client_side = local.accept();

  auto stream = loopback_.client.open_stream(0, loopback_.now);
  ASSERT_TRUE(stream);
  auto client_bridge = std::make_shared<tunnel::StreamBridge>(
      io_, runtime_, [this] { return &loopback_.client; }, *stream, "client test");
  std::optional<std::uint64_t> reset_code;
  loopback_.client_app = [&](const session::Event& event) {
    if (const auto* reset = std::get_if<events::StreamReset>(&event)) {
      reset_code = reset->error_code;
      client_bridge->on_reset(reset->error_code);
    } else if (std::holds_alternative<events::StreamReadable>(event) ||
               std::holds_alternative<events::StreamFinished>(event)) {
      client_bridge->on_readable();
    } else if (std::holds_alternative<events::Writable>(event)) {
      client_bridge->on_writable();
    }
  };
  client_bridge->start_initiator(tunnel::make_tcp_connection(std::move(client_side)),
                                 tunnel::StreamRequest{tunnel::RequestKind::kConnect, "127.0.0.1",
                                                       target.local_endpoint().port()});
  // Connected end to end: a byte from the program reaches the target.
  asio::write(program, asio::buffer("x", 1));
  std::array<char, 16> buffer{};
  std::size_t arrived = 0;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (arrived == 0 && std::chrono::steady_clock::now() < give_up) {
    run_for(std::chrono::milliseconds(5));
    std::error_code error;
    if (!target_side.is_open()) continue;
    target_side.non_blocking(true);
    arrived = target_side.read_some(asio::buffer(buffer), error);
  }
  ASSERT_EQ(arrived, 1u) << "the stream never connected";
  ASSERT_EQ(bridges_.size(), 1u);

  bridges_.begin()->second->close("no longer granted", tunnel::kResetNotGranted);
  run_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(reset_code.has_value()) << "no reset reached the client";
  EXPECT_EQ(*reset_code, tunnel::kResetNotGranted);
  EXPECT_TRUE(client_bridge->closed());
  EXPECT_EQ(tunnel::reset_reason(*reset_code).rfind("not granted", 0), 0u)
      << tunnel::reset_reason(*reset_code);
  // The program sees the end at once (a reset), without waiting for anything.
  program.non_blocking(true);
  std::error_code error;
  (void)program.read_some(asio::buffer(buffer), error);
  EXPECT_EQ(error, asio::error::connection_reset) << error.message();
}

session::SessionConfig small_window() {
  auto config = test::test_config();
  config.stream_receive_window = 256u << 10;
  return config;
}

class NeverReadingTarget : public StreamBridgeTest {
 protected:
  NeverReadingTarget() : StreamBridgeTest(small_window()) {}
};

TEST_F(NeverReadingTarget, BridgeHoldsAtMostWhatOneWriteLeft) {
  asio::ip::tcp::acceptor target(io_, {asio::ip::make_address("127.0.0.1"), 0});
  std::vector<asio::ip::tcp::socket> held;  // accepted and never read
  std::function<void()> accept = [&] {
    target.async_accept([&](std::error_code error, asio::ip::tcp::socket socket) {
      if (error) return;
      held.push_back(std::move(socket));
      accept();
    });
  };
  accept();
  constexpr std::size_t kStreams = 4;
  std::vector<session::StreamId> streams;
  for (std::size_t index = 0; index < kStreams; ++index) {
    auto stream = loopback_.client.open_stream(0, loopback_.now);
    ASSERT_TRUE(stream);
    const auto header = tunnel::encode(tunnel::StreamRequest{
        tunnel::RequestKind::kConnect, "127.0.0.1", target.local_endpoint().port()});
    ASSERT_EQ(*loopback_.client.write(*stream, header, loopback_.now), header.size());
    streams.push_back(*stream);
  }
  // Far more than the kernel's buffers and the receive window take.
  const std::vector<std::byte> chunk(64u << 10, std::byte{'x'});
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  std::size_t written = 0;
  std::size_t last_round = 0;
  while (std::chrono::steady_clock::now() < until) {
    last_round = 0;
    for (auto stream : streams) {
      auto accepted = loopback_.client.write(stream, chunk, loopback_.now);
      if (accepted) last_round += *accepted;
    }
    written += last_round;
    run_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(held.size(), kStreams);
  // Everything on the way is full: the targets' buffers, the receive windows, the client's bound.
  ASSERT_EQ(last_round, 0u) << "the transfer did not stall";
  ASSERT_GT(written, kStreams * small_window().stream_receive_window);
  for (const auto& [id, bridge] : bridges_) {
    EXPECT_FALSE(bridge->closed());
    // The copy goes through the shared scratch buffer; what the socket refused stays with the
    // bridge, and the bridge took from the session only what the socket had room for.
    EXPECT_LE(bridge->held_bytes(), 16u << 10) << "stream " << id;
  }
}

session::SessionConfig small_send_window() {
  auto config = test::test_config();
  config.max_unacknowledged_bytes = 64u << 10;
  return config;
}

class ReplyUnderSendBounds : public StreamBridgeTest {
 protected:
  ReplyUnderSendBounds() : StreamBridgeTest(small_send_window()) {}
};

// The session takes only part of the bridge's reply (WouldBlock under its send bounds) while the
// target has already sent data: the rest of the reply still reaches the client first, whole, and
// the target's data after it (before, the rest was dropped and the client read a broken reply).
TEST_F(ReplyUnderSendBounds, TheTargetsDataNeverOvertakesAPartlyTakenReply) {
  const std::string greeting = "the target speaks first";
  asio::ip::tcp::acceptor target(io_, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket accepted(io_);
  bool greeted = false;
  target.async_accept(accepted, [&](std::error_code error) {
    if (error) return;
    asio::async_write(accepted, asio::buffer(greeting),
                      [&](std::error_code failure, std::size_t) { greeted = !failure; });
  });

  // A stream that takes the session's send window up to two bytes, which nobody acknowledges
  // while the pair is held: a 3-byte reply then fits only in part.
  auto filler = loopback_.client.open_stream(0, loopback_.now);
  ASSERT_TRUE(filler);
  auto stream = loopback_.client.open_stream(0, loopback_.now);
  ASSERT_TRUE(stream);
  const std::size_t window = small_send_window().max_unacknowledged_bytes;
  before_connect_ = [&] {
    session::Session* server = loopback_.server_session();
    ASSERT_NE(server, nullptr);
    const std::vector<std::byte> fill(window - 2, std::byte{'f'});
    ASSERT_EQ(*server->write(*filler, fill, loopback_.now), fill.size());
    runtime_.holding = true;
  };
  const auto header = tunnel::encode(tunnel::StreamRequest{
      tunnel::RequestKind::kConnect, "127.0.0.1", target.local_endpoint().port()});
  ASSERT_EQ(*loopback_.client.write(*stream, header, loopback_.now), header.size());
  run_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(runtime_.holding) << "the bridge never got its header";
  // Held: the bridge connects, sends its reply (partly taken) and reads the target's data.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  while (std::chrono::steady_clock::now() < until) {
    io_.run_for(std::chrono::milliseconds(5));
    io_.restart();
  }
  ASSERT_TRUE(greeted);
  runtime_.holding = false;

  // Released: acknowledgements make room; the client drains both streams.
  std::vector<std::byte> received;
  std::vector<std::byte> scratch(64u << 10);
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < give_up && received.size() < 3 + greeting.size()) {
    run_for(std::chrono::milliseconds(5));
    (void)loopback_.client.read(*filler, scratch, loopback_.now);
    auto result = loopback_.client.read(*stream, scratch, loopback_.now);
    ASSERT_TRUE(result);
    received.insert(received.end(), scratch.begin(),
                    scratch.begin() + static_cast<std::ptrdiff_t>(result->bytes));
  }
  std::size_t consumed = 0;
  auto reply = tunnel::parse_reply(received, consumed);
  ASSERT_TRUE(reply) << reply.error();
  ASSERT_TRUE(reply->has_value()) << received.size() << " bytes received, no whole reply";
  EXPECT_EQ((*reply)->status, tunnel::ReplyStatus::kConnected);
  const std::string after(reinterpret_cast<const char*>(received.data()) + consumed,
                          received.size() - consumed);
  EXPECT_EQ(after, greeting);
}

}  // namespace
}  // namespace tether
