#include "transport/byte_stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>

#include <type_traits>
#include <utility>

#include <asio/experimental/as_tuple.hpp>

#include "crypto/primitives.hpp"
#include "transport/tls.hpp"

namespace tether::transport {
namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

// One implementation for both transports: `Next` is asio::ssl::stream<tcp::socket> or tcp::socket.
template <typename Next>
class AsioByteStream final : public ByteStream {
 public:
  template <typename... Arguments>
  explicit AsioByteStream(Arguments&&... arguments)
      : next_(std::forward<Arguments>(arguments)...) {}
  asio::awaitable<std::size_t> read_some(std::span<std::byte> buffer,
                                         std::error_code& error) override {
    auto [failure, count] =
        co_await next_.async_read_some(asio::buffer(buffer.data(), buffer.size()), kTuple);
    error = failure;
    co_return count;
  }
  asio::awaitable<void> write_all(std::span<const std::byte> bytes,
                                  std::error_code& error) override {
    auto [failure, count] =
        co_await asio::async_write(next_, asio::buffer(bytes.data(), bytes.size()), kTuple);
    (void)count;
    error = failure;
  }
  void close() override {
    std::error_code ignored;
    socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
  }
  const KeyingMaterial& keying_material() const override { return keying_; }
  asio::ip::tcp::socket& socket() override {
    if constexpr (std::is_same_v<Next, asio::ip::tcp::socket>) {
      return next_;
    } else {
      return next_.next_layer();
    }
  }
  Next& next() { return next_; }
  KeyingMaterial keying_{};

 private:
  Next next_;
};

using TlsStream = AsioByteStream<asio::ssl::stream<asio::ip::tcp::socket>>;
using PlainStream = AsioByteStream<asio::ip::tcp::socket>;

}  // namespace

asio::awaitable<Expected<std::unique_ptr<ByteStream>, std::string>> open_tls(
    asio::ip::tcp::socket socket, asio::ssl::context& context, Side side) {
  auto tls = std::make_unique<TlsStream>(std::move(socket), context);
  if (side == Side::kClient)
    prepare_client_connection(tls->next().native_handle());  // SNI, TLS resumption
  auto [error] = co_await tls->next().async_handshake(
      side == Side::kClient ? asio::ssl::stream_base::client : asio::ssl::stream_base::server,
      kTuple);
  if (error) {
    if (auto mismatch = fingerprint_mismatch(tls->next().native_handle()))
      co_return make_unexpected(*mismatch);
    co_return make_unexpected("TLS handshake failed: " + error.message());
  }
  tls->keying_ = export_keying_material(tls->next().native_handle());
  co_return std::unique_ptr<ByteStream>(std::move(tls));
}

asio::awaitable<Expected<std::unique_ptr<ByteStream>, std::string>> open_plain(
    asio::ip::tcp::socket socket, Side side) {
  auto plain = std::make_unique<PlainStream>(std::move(socket));
  std::array<std::byte, 32> mine{};
  std::array<std::byte, 32> theirs{};
  if (RAND_bytes(reinterpret_cast<unsigned char*>(mine.data()), static_cast<int>(mine.size())) !=
      1) {
    co_return make_unexpected(std::string("no randomness for the plain handshake"));
  }
  std::error_code error;
  co_await plain->write_all(mine, error);
  if (!error) {
    auto [failure, count] = co_await asio::async_read(
        plain->socket(), asio::buffer(theirs.data(), theirs.size()), kTuple);
    (void)count;
    error = failure;
  }
  if (error) co_return make_unexpected("plain handshake failed: " + error.message());
  const auto& client_nonce = side == Side::kClient ? mine : theirs;
  const auto& server_nonce = side == Side::kClient ? theirs : mine;
  plain->keying_ = crypto::hmac_sha256(
      crypto::label("tether v1 plain transport (insecure)"),
      {std::span<const std::byte>(client_nonce), std::span<const std::byte>(server_nonce)});
  co_return std::unique_ptr<ByteStream>(std::move(plain));
}

asio::awaitable<Expected<std::unique_ptr<ByteStream>, std::string>> open_byte_stream(
    asio::ip::tcp::socket socket, asio::ssl::context* tls, Side side) {
  // (No co_await inside ?: — g++ 12 miscompiles it.)
  if (tls != nullptr) co_return co_await open_tls(std::move(socket), *tls, side);
  co_return co_await open_plain(std::move(socket), side);
}

void tune_socket(asio::ip::tcp::socket& socket, std::chrono::milliseconds user_timeout) {
  std::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  const auto milliseconds = static_cast<unsigned int>(user_timeout.count());
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_USER_TIMEOUT, &milliseconds,
               sizeof milliseconds);
}

}  // namespace tether::transport
