// ByteStream tests over real loopback TCP: the batching TLS stream against itself and against
// asio's SSL stream (large transfers both ways at once, every read size, resumption, KeyUpdate in
// both directions, close_notify, truncation, corrupted records, handshake failures, close), reads
// when readable (wait_readable, read_available) and the buffers an idle stream holds, and the plain
// stream.
#include <gtest/gtest.h>

#include <openssl/ssl.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>

#include "tests/support/temporary_directory.hpp"
#include "transport/byte_stream.hpp"
#include "transport/tls.hpp"

namespace tether::transport {
namespace {

using tether::testing::TemporaryDirectory;
using Bytes = std::vector<std::byte>;
using AsioTls = asio::ssl::stream<asio::ip::tcp::socket>;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

Bytes random_bytes(std::size_t size, std::uint32_t seed) {
  std::mt19937 generator(seed);
  Bytes bytes(size);
  for (auto& byte : bytes) byte = static_cast<std::byte>(generator());
  return bytes;
}

Bytes text_bytes(std::string_view text) {
  const auto view = std::as_bytes(std::span<const char>(text.data(), text.size()));
  return Bytes(view.begin(), view.end());
}

// How a reader or writer sizes its operations: fixed, or random between 1 and `size` (inclusive).
struct Sizes {
  std::size_t size = 64u << 10;
  bool random = false;
  std::uint32_t seed = 1;
};

// Writes `bytes` with write_all calls of the given sizes. Returns the first error.
asio::awaitable<std::error_code> write_in_pieces(ByteStream& stream, const Bytes& bytes,
                                                 Sizes sizes) {
  std::mt19937 generator(sizes.seed);
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    std::size_t piece = sizes.random ? 1 + generator() % sizes.size : sizes.size;
    piece = std::min(piece, bytes.size() - offset);
    std::error_code error;
    co_await stream.write_all(std::span(bytes).subspan(offset, piece), error);
    if (error) co_return error;
    offset += piece;
  }
  co_return std::error_code{};
}

// Reads until `count` bytes arrived (or an error) with read_some calls of the given sizes.
asio::awaitable<Bytes> read_count(ByteStream& stream, std::size_t count, Sizes sizes,
                                  std::error_code& error) {
  std::mt19937 generator(sizes.seed);
  Bytes received;
  Bytes buffer(sizes.size);
  while (received.size() < count) {
    const std::size_t wanted = sizes.random ? 1 + generator() % sizes.size : sizes.size;
    const std::size_t got = co_await stream.read_some(std::span(buffer).first(wanted), error);
    if (error) break;
    EXPECT_GT(got, 0u);
    received.insert(received.end(), buffer.begin(), buffer.begin() + static_cast<long>(got));
  }
  co_return received;
}

// The same with wait_readable and read_available (the runtime's way: the buffer is lent only while
// bytes are there); a read may return nothing (a partial record), never an error before the end.
asio::awaitable<Bytes> read_count_when_readable(ByteStream& stream, std::size_t count, Sizes sizes,
                                                std::error_code& error) {
  std::mt19937 generator(sizes.seed);
  Bytes received;
  Bytes buffer(sizes.size);
  while (received.size() < count) {
    co_await stream.wait_readable(error);
    if (error) break;
    const std::size_t wanted = sizes.random ? 1 + generator() % sizes.size : sizes.size;
    const std::size_t got = stream.read_available(std::span(buffer).first(wanted), error);
    if (error) break;
    received.insert(received.end(), buffer.begin(), buffer.begin() + static_cast<long>(got));
  }
  co_return received;
}

// Reads from an asio SSL stream until `count` bytes arrived or an error.
asio::awaitable<Bytes> read_count(AsioTls& stream, std::size_t count, std::error_code& error) {
  Bytes received(count);
  auto [failure, got] = co_await asio::async_read(stream, asio::buffer(received), kTuple);
  error = failure;
  received.resize(got);
  co_return received;
}

class ByteStreamTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    directory_ = new TemporaryDirectory();
    other_directory_ = new TemporaryDirectory();
    auto fingerprint = generate_identity(directory_->path());
    ASSERT_TRUE(fingerprint.has_value()) << fingerprint.error();
    fingerprint_ = *fingerprint;
    auto other = generate_identity(other_directory_->path());
    ASSERT_TRUE(other.has_value()) << other.error();
    other_fingerprint_ = *other;
  }
  static void TearDownTestSuite() {
    delete directory_;
    delete other_directory_;
  }
  void SetUp() override {
    server_ = server_context();
    client_ = client_context(fingerprint_);
  }

  std::shared_ptr<asio::ssl::context> server_context() {
    auto context = make_server_context(directory_->path() / kCertificateFileName,
                                       directory_->path() / kKeyFileName);
    EXPECT_TRUE(context.has_value()) << context.error();
    return context.value_or(nullptr);
  }
  std::shared_ptr<asio::ssl::context> client_context(const std::string& fingerprint) {
    ServerTrust trust;
    trust.fingerprint = fingerprint;
    trust.host = "localhost";
    auto context = make_client_context(trust);
    EXPECT_TRUE(context.has_value()) << context.error();
    return context.value_or(nullptr);
  }

  // A connected pair of TCP sockets over loopback.
  struct Sockets {
    asio::ip::tcp::socket client;
    asio::ip::tcp::socket server;
  };
  Sockets socket_pair() {
    asio::ip::tcp::acceptor acceptor(io_, {asio::ip::address_v4::loopback(), 0});
    asio::ip::tcp::socket client(io_);
    client.connect(acceptor.local_endpoint());
    asio::ip::tcp::socket server(io_);
    acceptor.accept(server);
    return {std::move(client), std::move(server)};
  }

  // Runs the io_context until everything spawned has finished.
  void run() {
    io_.run();
    io_.restart();
  }

  template <typename Function>
  void spawn(Function function) {
    asio::co_spawn(io_, std::move(function), [](std::exception_ptr exception) {
      if (exception) std::rethrow_exception(exception);
    });
  }

  using Opened = Expected<std::unique_ptr<ByteStream>, TransportError>;

  // Both ends of one connection as open_tls left them.
  struct OpenedPair {
    Opened client;
    Opened server;
  };

  // Opens TLS with open_tls on both ends of a fresh connection.
  OpenedPair open_pair(asio::ssl::context& server, asio::ssl::context& client,
                       std::uint64_t client_key_update = kKeyUpdateInterval) {
    Sockets sockets = socket_pair();
    std::optional<Opened> client_end;
    std::optional<Opened> server_end;
    spawn([&, socket = std::move(sockets.client)]() mutable -> asio::awaitable<void> {
      client_end = co_await open_tls(std::move(socket), client, Side::kClient, client_key_update);
    });
    spawn([&, socket = std::move(sockets.server)]() mutable -> asio::awaitable<void> {
      server_end = co_await open_tls(std::move(socket), server, Side::kServer);
    });
    run();
    return {std::move(*client_end), std::move(*server_end)};
  }

  // Our client (open_tls) and an asio SSL server, both handshakes done (check `ours` first). The
  // server counts the KeyUpdate messages it receives.
  struct AgainstAsio {
    explicit AgainstAsio(asio::ip::tcp::socket socket, asio::ssl::context& context)
        : peer(std::move(socket), context) {}
    Opened ours = make_unexpected(TransportError{TransportErrorKind::kHandshake, "not opened"});
    AsioTls peer;
    std::error_code peer_error;
    int key_updates_received = 0;
  };
  std::unique_ptr<AgainstAsio> against_asio_server(
      asio::ssl::context& server, asio::ssl::context& client,
      std::uint64_t key_update_interval = kKeyUpdateInterval) {
    Sockets sockets = socket_pair();
    auto connection = std::make_unique<AgainstAsio>(std::move(sockets.server), server);
    SSL_set_msg_callback(connection->peer.native_handle(), &count_key_updates);
    SSL_set_msg_callback_arg(connection->peer.native_handle(), connection.get());
    AgainstAsio* raw = connection.get();
    spawn([&, raw, socket = std::move(sockets.client)]() mutable -> asio::awaitable<void> {
      raw->ours = co_await open_tls(std::move(socket), client, Side::kClient, key_update_interval);
    });
    spawn([raw]() -> asio::awaitable<void> {
      auto [error] = co_await raw->peer.async_handshake(asio::ssl::stream_base::server, kTuple);
      raw->peer_error = error;
    });
    run();
    return connection;
  }

  // SSL_set_msg_callback for AgainstAsio: counts received KeyUpdate handshake messages.
  static void count_key_updates(int write, int /*version*/, int content_type, const void* data,
                                std::size_t length, SSL* /*ssl*/, void* argument) {
    const auto* bytes = static_cast<const unsigned char*>(data);
    if (write == 0 && content_type == SSL3_RT_HANDSHAKE && length > 0 &&
        bytes[0] == SSL3_MT_KEY_UPDATE) {
      ++static_cast<AgainstAsio*>(argument)->key_updates_received;
    }
  }

  // Sends `upstream` from `left` to `right` and `downstream` from `right` to `left` at the same
  // time, both ends writing and reading in the given sizes; expects no error and both intact.
  void exchange(ByteStream& left, ByteStream& right, const Bytes& upstream, const Bytes& downstream,
                Sizes write_sizes, Sizes read_sizes) {
    Bytes left_received;
    Bytes right_received;
    std::error_code errors[4];
    spawn([&]() -> asio::awaitable<void> {
      errors[0] = co_await write_in_pieces(left, upstream, write_sizes);
    });
    spawn([&]() -> asio::awaitable<void> {
      errors[1] = co_await write_in_pieces(right, downstream, write_sizes);
    });
    spawn([&]() -> asio::awaitable<void> {
      right_received = co_await read_count(right, upstream.size(), read_sizes, errors[2]);
    });
    spawn([&]() -> asio::awaitable<void> {
      left_received = co_await read_count(left, downstream.size(), read_sizes, errors[3]);
    });
    run();
    for (const auto& error : errors) EXPECT_FALSE(error) << error.message();
    EXPECT_TRUE(right_received == upstream);
    EXPECT_TRUE(left_received == downstream);
  }

  // The same between our stream and an asio SSL peer: `ours_sends` goes from `ours` (writing and
  // reading in the given sizes) to `peer`, and `peer_sends` back, at the same time.
  void exchange_with_asio(ByteStream& ours, AsioTls& peer, const Bytes& ours_sends,
                          const Bytes& peer_sends, Sizes write_sizes, Sizes read_sizes) {
    Bytes ours_received;
    Bytes peer_received;
    std::error_code errors[4];
    spawn([&]() -> asio::awaitable<void> {
      errors[0] = co_await write_in_pieces(ours, ours_sends, write_sizes);
    });
    spawn([&]() -> asio::awaitable<void> {
      auto [error, count] = co_await asio::async_write(peer, asio::buffer(peer_sends), kTuple);
      (void)count;
      errors[1] = error;
    });
    spawn([&]() -> asio::awaitable<void> {
      peer_received = co_await read_count(peer, ours_sends.size(), errors[2]);
    });
    spawn([&]() -> asio::awaitable<void> {
      ours_received = co_await read_count(ours, peer_sends.size(), read_sizes, errors[3]);
    });
    run();
    for (const auto& error : errors) EXPECT_FALSE(error) << error.message();
    EXPECT_TRUE(peer_received == ours_sends);
    EXPECT_TRUE(ours_received == peer_sends);
  }

  asio::io_context io_;
  // Fresh for each test: our server's context and a client context that pins its identity.
  std::shared_ptr<asio::ssl::context> server_;
  std::shared_ptr<asio::ssl::context> client_;
  static inline TemporaryDirectory* directory_ = nullptr;
  static inline TemporaryDirectory* other_directory_ = nullptr;
  static inline std::string fingerprint_;
  static inline std::string other_fingerprint_;
};

// ---- The TLS stream against itself
// ---------------------------------------------------------------

TEST_F(ByteStreamTest, HandshakeGivesBothEndsTheSameFreshKeyingMaterial) {
  OpenedPair first = open_pair(*server_, *client_);
  ASSERT_TRUE(first.client.has_value()) << first.client.error();
  ASSERT_TRUE(first.server.has_value()) << first.server.error();
  EXPECT_EQ((*first.client)->keying_material(), (*first.server)->keying_material());
  EXPECT_NE((*first.client)->keying_material(), KeyingMaterial{});
  EXPECT_TRUE((*first.client)->socket().is_open());

  OpenedPair second = open_pair(*server_, *client_);
  ASSERT_TRUE(second.client.has_value()) << second.client.error();
  ASSERT_TRUE(second.server.has_value()) << second.server.error();
  EXPECT_EQ((*second.client)->keying_material(), (*second.server)->keying_material());
  EXPECT_NE((*second.client)->keying_material(), (*first.client)->keying_material());
}

TEST_F(ByteStreamTest, LargeTransfersBothWaysAtOnceArriveIntactWhateverTheReadAndWriteSizes) {
  struct Case {
    Sizes write;
    Sizes read;
    std::size_t bytes;  // each way
  };
  const Case cases[] = {
      {{128u << 10, false, 1}, {64u << 10, false, 2}, 24u << 20},  // the runtime's sizes
      {{300u << 10, true, 3}, {100u << 10, true, 4}, 24u << 20},   // anything up to many records
      {{1u << 20, false, 5}, {1, false, 6}, 256u << 10},           // one byte per read
      {{1, false, 7}, {256u << 10, false, 8}, 64u << 10},          // one byte per write
  };
  for (std::size_t index = 0; index < std::size(cases); ++index) {
    SCOPED_TRACE("case " + std::to_string(index));
    const Case& each = cases[index];
    OpenedPair opened = open_pair(*server_, *client_);
    ASSERT_TRUE(opened.client.has_value()) << opened.client.error();
    ASSERT_TRUE(opened.server.has_value()) << opened.server.error();
    exchange(**opened.client, **opened.server, random_bytes(each.bytes, 11),
             random_bytes(each.bytes, 12), each.write, each.read);
  }
}

TEST_F(ByteStreamTest, BulkAndTinyPhasesAlternateOnOneConnection) {
  // Bulk reads grow the input buffer, tiny ones shrink it again, flushes of a few bytes give large
  // output buffers back: none of it may lose or reorder a byte.
  OpenedPair opened = open_pair(*server_, *client_);
  ASSERT_TRUE(opened.client.has_value()) << opened.client.error();
  ASSERT_TRUE(opened.server.has_value()) << opened.server.error();
  ByteStream& left = **opened.client;
  ByteStream& right = **opened.server;
  for (std::uint32_t phase = 0; phase < 3; ++phase) {
    const Bytes bulk = random_bytes(4u << 20, 200 + phase);
    Bytes received;
    std::error_code errors[2];
    spawn([&]() -> asio::awaitable<void> {
      errors[0] = co_await write_in_pieces(left, bulk, {128u << 10, false, 1});
    });
    spawn([&]() -> asio::awaitable<void> {
      received = co_await read_count(right, bulk.size(), {}, errors[1]);
    });
    run();
    for (const auto& error : errors) EXPECT_FALSE(error) << error.message();
    EXPECT_TRUE(received == bulk);

    std::error_code ping_error;
    spawn([&]() -> asio::awaitable<void> {
      for (std::uint32_t round = 0; round < 20 && !ping_error; ++round) {
        const Bytes ping = random_bytes(1 + round, 300 + round);
        co_await right.write_all(ping, ping_error);
        const Bytes got = co_await read_count(left, ping.size(), {}, ping_error);
        EXPECT_TRUE(got == ping) << "round " << round;
        co_await left.write_all(got, ping_error);
        const Bytes back = co_await read_count(right, got.size(), {}, ping_error);
        EXPECT_TRUE(back == ping) << "round " << round;
      }
    });
    run();
    EXPECT_FALSE(ping_error) << ping_error.message();
  }
}

TEST_F(ByteStreamTest, ReadsWhenReadableDeliverEveryByteInOrderWhateverTheSizes) {
  struct Case {
    Sizes write;
    Sizes read;
    std::size_t bytes;
  };
  const Case cases[] = {
      {{128u << 10, false, 1}, {64u << 10, false, 2}, 8u << 20},  // the runtime's sizes
      {{300u << 10, true, 3}, {5000, true, 4}, 8u << 20},         // records split across reads
      {{1, false, 5}, {64u << 10, false, 6}, 16u << 10},          // one byte per record
  };
  for (std::size_t index = 0; index < std::size(cases); ++index) {
    SCOPED_TRACE("case " + std::to_string(index));
    const Case& each = cases[index];
    OpenedPair opened = open_pair(*server_, *client_);
    ASSERT_TRUE(opened.client.has_value()) << opened.client.error();
    ASSERT_TRUE(opened.server.has_value()) << opened.server.error();
    const Bytes upstream = random_bytes(each.bytes, 21);
    Bytes received;
    std::error_code errors[2];
    spawn([&]() -> asio::awaitable<void> {
      errors[0] = co_await write_in_pieces(**opened.client, upstream, each.write);
    });
    spawn([&]() -> asio::awaitable<void> {
      received =
          co_await read_count_when_readable(**opened.server, upstream.size(), each.read, errors[1]);
    });
    run();
    for (const auto& error : errors) EXPECT_FALSE(error) << error.message();
    EXPECT_TRUE(received == upstream);
  }
}

TEST_F(ByteStreamTest, ReadWhenReadableReportsTheEndAfterTheData) {
  auto connection = against_asio_server(*server_, *client_);
  ASSERT_TRUE(connection->ours.has_value()) << connection->ours.error();
  ByteStream& ours = **connection->ours;
  const Bytes last = text_bytes("the last words");
  Bytes received;
  std::error_code read_error;
  spawn([&]() -> asio::awaitable<void> {
    co_await asio::async_write(connection->peer, asio::buffer(last), kTuple);
    co_await connection->peer.async_shutdown(kTuple);
  });
  spawn([&]() -> asio::awaitable<void> {
    received = co_await read_count_when_readable(ours, 1u << 20, {}, read_error);
    ours.close();
  });
  run();
  EXPECT_TRUE(received == last);
  EXPECT_EQ(read_error, asio::error::eof) << read_error.message();
}

TEST_F(ByteStreamTest, AnIdleStreamHoldsNoBuffersAfterBulkAndTinyTraffic) {
  // Per idle connection a server holds what its stream keeps: after bulk data and then a tiny
  // message each way, a stream waiting for input keeps no input or output buffer.
  OpenedPair opened = open_pair(*server_, *client_);
  ASSERT_TRUE(opened.client.has_value()) << opened.client.error();
  ASSERT_TRUE(opened.server.has_value()) << opened.server.error();
  ByteStream& left = **opened.client;
  ByteStream& right = **opened.server;
  const Bytes bulk = random_bytes(4u << 20, 31);
  const Bytes ping = text_bytes("ping");
  std::error_code errors[6];
  Bytes received;
  spawn([&]() -> asio::awaitable<void> {
    errors[0] = co_await write_in_pieces(left, bulk, {128u << 10, false, 1});
    co_await left.write_all(ping, errors[1]);
  });
  spawn([&]() -> asio::awaitable<void> {
    received = co_await read_count_when_readable(right, bulk.size() + ping.size(), {}, errors[2]);
    co_await right.write_all(ping, errors[3]);
  });
  spawn([&]() -> asio::awaitable<void> {
    const Bytes back = co_await read_count_when_readable(left, ping.size(), {}, errors[4]);
    EXPECT_TRUE(back == ping);
  });
  run();
  for (const auto& error : errors) EXPECT_FALSE(error) << error.message();
  ASSERT_EQ(received.size(), bulk.size() + ping.size());
  // Both ends wait for more input; meanwhile neither holds a buffer.
  std::size_t held[2] = {1, 1};
  spawn([&]() -> asio::awaitable<void> { co_await left.wait_readable(errors[5]); });
  spawn([&]() -> asio::awaitable<void> { co_await right.wait_readable(errors[5]); });
  spawn([&]() -> asio::awaitable<void> {
    asio::steady_timer timer(io_, std::chrono::milliseconds(50));
    co_await timer.async_wait(kTuple);
    held[0] = left.held_bytes();
    held[1] = right.held_bytes();
    left.close();
    right.close();
  });
  run();
  EXPECT_EQ(held[0], 0u);
  EXPECT_EQ(held[1], 0u);
}

TEST_F(ByteStreamTest, SendsAKeyUpdateAfterEachIntervalAndTheDataStillArrives) {
  OpenedPair opened = open_pair(*server_, *client_, /*client_key_update=*/1u << 20);
  ASSERT_TRUE(opened.client.has_value()) << opened.client.error();
  ASSERT_TRUE(opened.server.has_value()) << opened.server.error();
  exchange(**opened.client, **opened.server, random_bytes(8u << 20, 21), random_bytes(8u << 20, 22),
           {256u << 10, false, 1}, {});
}

TEST_F(ByteStreamTest, WrongPinFailsNamingBothFingerprintsAndTheServerSeesAHandshakeFailure) {
  auto client = client_context(other_fingerprint_);
  OpenedPair opened = open_pair(*server_, *client);
  ASSERT_FALSE(opened.client.has_value());
  EXPECT_EQ(opened.client.error().kind, TransportErrorKind::kFingerprintMismatch);
  EXPECT_EQ(opened.client.error().message, "server certificate fingerprint " + fingerprint_ +
                                               " does not match the expected " +
                                               other_fingerprint_);
  ASSERT_FALSE(opened.server.has_value());
  EXPECT_EQ(opened.server.error().kind, TransportErrorKind::kHandshake);
  EXPECT_EQ(opened.server.error().message.rfind("TLS handshake failed: ", 0), 0u)
      << opened.server.error();
}

TEST_F(ByteStreamTest, PeerThatHangsUpDuringTheHandshakeIsAStreamTruncatedFailure) {
  Sockets sockets = socket_pair();
  sockets.server.close();
  std::optional<Opened> client_end;
  spawn([&, socket = std::move(sockets.client)]() mutable -> asio::awaitable<void> {
    client_end = co_await open_tls(std::move(socket), *client_, Side::kClient);
  });
  run();
  ASSERT_FALSE(client_end->has_value());
  EXPECT_EQ(client_end->error().kind, TransportErrorKind::kHandshake);
  EXPECT_EQ(client_end->error().message, "TLS handshake failed: stream truncated");
}

TEST_F(ByteStreamTest, NonTlsPeerFailsTheHandshakeWithoutThrowing) {
  Sockets sockets = socket_pair();
  const std::string junk = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
  asio::write(sockets.client, asio::buffer(junk));
  std::optional<Opened> server_end;
  spawn([&, socket = std::move(sockets.server)]() mutable -> asio::awaitable<void> {
    server_end = co_await open_tls(std::move(socket), *server_, Side::kServer);
  });
  run();
  ASSERT_FALSE(server_end->has_value());
  EXPECT_EQ(server_end->error().message.rfind("TLS handshake failed: ", 0), 0u)
      << server_end->error();
  EXPECT_EQ(server_end->error().message.find("stream truncated"), std::string::npos)
      << server_end->error();
}

TEST_F(ByteStreamTest, ReadsAndWritesCompleteThroughTheExecutorEvenWhenNothingWaitsForTheSocket) {
  OpenedPair opened = open_pair(*server_, *client_);
  ASSERT_TRUE(opened.client.has_value()) << opened.client.error();
  ASSERT_TRUE(opened.server.has_value()) << opened.server.error();
  ByteStream& writer = **opened.server;
  ByteStream& reader = **opened.client;
  const Bytes twenty = random_bytes(20, 17);
  std::vector<std::string> order;
  std::error_code errors[4];
  Bytes first(10);
  Bytes second(10);
  spawn([&]() -> asio::awaitable<void> {
    co_await writer.write_all(twenty, errors[0]);
    co_await reader.read_some(first, errors[1]);  // one record: 10 bytes stay decryptable
    // The second read needs no socket read; it still must not complete inside co_spawn, which
    // starts the coroutine at once (a runtime starts a reader, then registers the connection).
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          const std::size_t count = co_await reader.read_some(second, errors[2]);
          order.push_back("read " + std::to_string(count));
        },
        asio::detached);
    order.push_back("spawned reader");
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          co_await writer.write_all({}, errors[3]);
          order.push_back("wrote nothing");
        },
        asio::detached);
    order.push_back("spawned writer");
  });
  run();
  for (const auto& error : errors) EXPECT_FALSE(error) << error.message();
  EXPECT_EQ(order, (std::vector<std::string>{"spawned reader", "spawned writer", "read 10",
                                             "wrote nothing"}));
  Bytes both = first;
  both.insert(both.end(), second.begin(), second.end());
  EXPECT_TRUE(both == twenty);
}

TEST_F(ByteStreamTest, CloseCompletesAPendingReadWithAnErrorAndLaterCallsFailToo) {
  OpenedPair opened = open_pair(*server_, *client_);
  ASSERT_TRUE(opened.client.has_value()) << opened.client.error();
  ASSERT_TRUE(opened.server.has_value()) << opened.server.error();
  ByteStream& stream = **opened.client;
  std::error_code read_error;
  bool read_done = false;
  spawn([&]() -> asio::awaitable<void> {
    Bytes buffer(1024);
    co_await stream.read_some(buffer, read_error);
    read_done = true;
  });
  asio::post(io_, [&] { stream.close(); });
  run();
  EXPECT_TRUE(read_done);
  EXPECT_TRUE(read_error);
  std::error_code write_error;
  std::error_code second_read_error;
  spawn([&]() -> asio::awaitable<void> {
    const Bytes bytes = text_bytes("late");
    co_await stream.write_all(bytes, write_error);
    Bytes buffer(16);
    co_await stream.read_some(buffer, second_read_error);
  });
  run();
  EXPECT_TRUE(write_error);
  EXPECT_TRUE(second_read_error);
}

// ---- Against asio's SSL stream
// --------------------------------------------------------------------

TEST_F(ByteStreamTest, OurClientInteroperatesWithAnAsioServerAndResumesItsTlsSession) {
  for (const bool resumed : {false, true}) {
    auto connection = against_asio_server(*server_, *client_);
    ASSERT_TRUE(connection->ours.has_value()) << connection->ours.error();
    ASSERT_FALSE(connection->peer_error) << connection->peer_error.message();
    ByteStream& ours = **connection->ours;
    AsioTls& peer = connection->peer;
    EXPECT_EQ(ours.keying_material(), export_keying_material(peer.native_handle()));
    EXPECT_EQ(SSL_session_reused(peer.native_handle()) == 1, resumed);

    // 6 MiB each way at once; reading processes the server's session tickets on the way.
    exchange_with_asio(ours, peer, random_bytes(6u << 20, 31), random_bytes(6u << 20, 32),
                       {128u << 10, false, 1}, {100u << 10, true, 5});
  }
}

TEST_F(ByteStreamTest, AnAsioClientReachesOurServer) {
  Sockets sockets = socket_pair();
  AsioTls peer(std::move(sockets.client), *client_);
  prepare_client_connection(peer.native_handle());
  std::optional<Opened> server_end;
  std::error_code peer_error;
  spawn([&, socket = std::move(sockets.server)]() mutable -> asio::awaitable<void> {
    server_end = co_await open_tls(std::move(socket), *server_, Side::kServer);
  });
  spawn([&]() -> asio::awaitable<void> {
    auto [error] = co_await peer.async_handshake(asio::ssl::stream_base::client, kTuple);
    peer_error = error;
  });
  run();
  ASSERT_FALSE(peer_error) << peer_error.message();
  ASSERT_TRUE(server_end->has_value()) << server_end->error();
  ByteStream& ours = ***server_end;
  EXPECT_EQ(ours.keying_material(), export_keying_material(peer.native_handle()));
  // Our server sends downstream, the asio client upstream.
  exchange_with_asio(ours, peer, /*ours_sends=*/random_bytes(3u << 20, 42),
                     /*peer_sends=*/random_bytes(3u << 20, 41), {200u << 10, true, 3}, {});
}

TEST_F(ByteStreamTest, PeerKeyUpdateRequestIsAnsweredAndBothDirectionsKeepWorking) {
  auto connection = against_asio_server(*server_, *client_);
  ASSERT_TRUE(connection->ours.has_value()) << connection->ours.error();
  ByteStream& ours = **connection->ours;
  AsioTls& peer = connection->peer;
  for (int round = 0; round < 3; ++round) {
    ASSERT_EQ(SSL_key_update(peer.native_handle(), SSL_KEY_UPDATE_REQUESTED), 1);
    const Bytes downstream = random_bytes(1u << 20, 50 + static_cast<std::uint32_t>(round));
    const Bytes upstream = random_bytes(1u << 20, 60 + static_cast<std::uint32_t>(round));
    Bytes up_received;
    Bytes down_received;
    std::error_code errors[4];
    spawn([&]() -> asio::awaitable<void> {
      auto [error, count] = co_await asio::async_write(peer, asio::buffer(downstream), kTuple);
      (void)count;
      errors[0] = error;
    });
    spawn([&]() -> asio::awaitable<void> {
      down_received = co_await read_count(ours, downstream.size(), {}, errors[1]);
      // Written after our side processed the request, so under our updated key.
      errors[2] = co_await write_in_pieces(ours, upstream, {128u << 10, false, 1});
    });
    spawn([&]() -> asio::awaitable<void> {
      up_received = co_await read_count(peer, upstream.size(), errors[3]);
    });
    run();
    for (const auto& error : errors) EXPECT_FALSE(error) << error.message();
    EXPECT_TRUE(down_received == downstream);
    EXPECT_TRUE(up_received == upstream);
    EXPECT_EQ(connection->key_updates_received, round + 1);
  }
}

TEST_F(ByteStreamTest, OurKeyUpdatesReachAnAsioPeerOncePerInterval) {
  auto connection = against_asio_server(*server_, *client_, /*key_update_interval=*/1u << 20);
  ASSERT_TRUE(connection->ours.has_value()) << connection->ours.error();
  const Bytes upstream = random_bytes(8u << 20, 71);
  Bytes received;
  std::error_code write_error;
  std::error_code read_error;
  spawn([&]() -> asio::awaitable<void> {
    write_error = co_await write_in_pieces(**connection->ours, upstream, {512u << 10, false, 1});
  });
  spawn([&]() -> asio::awaitable<void> {
    received = co_await read_count(connection->peer, upstream.size(), read_error);
  });
  run();
  EXPECT_FALSE(write_error) << write_error.message();
  EXPECT_FALSE(read_error) << read_error.message();
  EXPECT_TRUE(received == upstream);
  // A write that starts 1 MiB or more after the last update sends one first: 16 writes of 512 KiB
  // send 7 (before writes 3, 5, ... 15).
  EXPECT_EQ(connection->key_updates_received, 7);
}

TEST_F(ByteStreamTest, CloseNotifyEndsTheStreamWithEndOfFileAfterTheData) {
  auto connection = against_asio_server(*server_, *client_);
  ASSERT_TRUE(connection->ours.has_value()) << connection->ours.error();
  ByteStream& ours = **connection->ours;
  AsioTls& peer = connection->peer;
  const Bytes last = text_bytes("the last words");
  Bytes received;
  std::error_code read_error;
  spawn([&]() -> asio::awaitable<void> {
    co_await asio::async_write(peer, asio::buffer(last), kTuple);
    // Sends close_notify, then waits for ours, which never comes: the close below ends the wait.
    co_await peer.async_shutdown(kTuple);
  });
  spawn([&]() -> asio::awaitable<void> {
    received = co_await read_count(ours, 1u << 20, {}, read_error);
    ours.close();
  });
  run();
  EXPECT_TRUE(received == last);
  EXPECT_EQ(read_error, asio::error::eof) << read_error.message();
}

TEST_F(ByteStreamTest, TransportEndWithoutCloseNotifyIsStreamTruncatedAfterTheData) {
  auto connection = against_asio_server(*server_, *client_);
  ASSERT_TRUE(connection->ours.has_value()) << connection->ours.error();
  ByteStream& ours = **connection->ours;
  AsioTls& peer = connection->peer;
  const Bytes last = random_bytes(100000, 81);
  Bytes received;
  std::error_code read_error;
  spawn([&]() -> asio::awaitable<void> {
    co_await asio::async_write(peer, asio::buffer(last), kTuple);
    peer.next_layer().close();
  });
  spawn([&]() -> asio::awaitable<void> {
    received = co_await read_count(ours, 1u << 20, {}, read_error);
  });
  run();
  EXPECT_TRUE(received == last);
  EXPECT_EQ(read_error, asio::ssl::error::stream_truncated) << read_error.message();
}

TEST_F(ByteStreamTest, ForgedRecordIsAnErrorForReadingAndThenForWriting) {
  auto connection = against_asio_server(*server_, *client_);
  ASSERT_TRUE(connection->ours.has_value()) << connection->ours.error();
  ByteStream& ours = **connection->ours;
  AsioTls& peer = connection->peer;
  const Bytes good = text_bytes("intact");
  // An application-data record of 32 bytes that no key produced.
  Bytes forged = {std::byte{0x17}, std::byte{0x03}, std::byte{0x03}, std::byte{0x00},
                  std::byte{0x20}};
  const Bytes noise = random_bytes(32, 91);
  forged.insert(forged.end(), noise.begin(), noise.end());
  Bytes received;
  std::error_code read_error;
  std::error_code write_error;
  spawn([&]() -> asio::awaitable<void> {
    co_await asio::async_write(peer, asio::buffer(good), kTuple);
    co_await asio::async_write(peer.next_layer(), asio::buffer(forged), kTuple);
  });
  spawn([&]() -> asio::awaitable<void> {
    received = co_await read_count(ours, 1u << 20, {}, read_error);
    const Bytes reply = text_bytes("reply");
    co_await ours.write_all(reply, write_error);
  });
  run();
  EXPECT_TRUE(received == good);
  ASSERT_TRUE(read_error);
  EXPECT_EQ(read_error.category(), asio::error::get_ssl_category()) << read_error.message();
  EXPECT_EQ(write_error, read_error) << write_error.message();
}

// ---- Plain TCP
// ------------------------------------------------------------------------------------

TEST_F(ByteStreamTest, PlainStreamsAgreeOnKeyingMaterialAndCarryBytes) {
  Sockets sockets = socket_pair();
  std::optional<Opened> client_end;
  std::optional<Opened> server_end;
  spawn([&, socket = std::move(sockets.client)]() mutable -> asio::awaitable<void> {
    client_end = co_await open_plain(std::move(socket), Side::kClient);
  });
  spawn([&, socket = std::move(sockets.server)]() mutable -> asio::awaitable<void> {
    server_end = co_await open_plain(std::move(socket), Side::kServer);
  });
  run();
  ASSERT_TRUE(client_end->has_value()) << client_end->error();
  ASSERT_TRUE(server_end->has_value()) << server_end->error();
  EXPECT_EQ((**client_end)->keying_material(), (**server_end)->keying_material());
  const Bytes upstream = random_bytes(1u << 20, 101);
  Bytes received;
  std::error_code write_error;
  std::error_code read_error;
  spawn([&]() -> asio::awaitable<void> {
    write_error = co_await write_in_pieces(***client_end, upstream, {});
  });
  spawn([&]() -> asio::awaitable<void> {
    received = co_await read_count(***server_end, upstream.size(), {}, read_error);
  });
  run();
  EXPECT_FALSE(write_error) << write_error.message();
  EXPECT_FALSE(read_error) << read_error.message();
  EXPECT_TRUE(received == upstream);

  spawn([&]() -> asio::awaitable<void> {
    write_error = co_await write_in_pieces(***server_end, upstream, {});
    (**server_end)->close();
  });
  spawn([&]() -> asio::awaitable<void> {
    received =
        co_await read_count_when_readable(***client_end, upstream.size() + 1, {5000}, read_error);
  });
  run();
  EXPECT_FALSE(write_error) << write_error.message();
  EXPECT_EQ(read_error, asio::error::eof) << read_error.message();
  EXPECT_TRUE(received == upstream);
}

}  // namespace
}  // namespace tether::transport
