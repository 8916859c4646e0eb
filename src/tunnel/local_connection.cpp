#include "tunnel/local_connection.hpp"

#include <unistd.h>

#include <cerrno>
#include <utility>

#include <asio/experimental/as_tuple.hpp>

namespace tether::tunnel {
namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

class TcpConnection final : public LocalConnection {
 public:
  explicit TcpConnection(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {
    std::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  }

  asio::awaitable<std::size_t> read_some(std::span<std::byte> buffer,
                                         std::error_code& error) override {
    auto [result, count] =
        co_await socket_.async_read_some(asio::buffer(buffer.data(), buffer.size()), kTuple);
    error = result;
    co_return count;
  }

  asio::awaitable<void> write_all(std::span<const std::byte> bytes,
                                  std::error_code& error) override {
    auto [result, count] =
        co_await asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()), kTuple);
    (void)count;
    error = result;
  }

  void shutdown_send() override {
    std::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  }

  void abort() override {
    std::error_code ignored;
    socket_.set_option(asio::socket_base::linger(true, 0), ignored);
    socket_.close(ignored);
  }

  void close() override {
    std::error_code ignored;
    socket_.close(ignored);
  }

 private:
  asio::ip::tcp::socket socket_;
};

class StdioConnection final : public LocalConnection {
 public:
  explicit StdioConnection(asio::io_context& io) : input_(io), output_(io) {}

  std::error_code open(int input, int output) {
    std::error_code error;
    for (auto [descriptor, target] : {std::pair{input, &input_}, std::pair{output, &output_}}) {
      const int copy = ::dup(descriptor);
      if (copy < 0) return {errno, std::system_category()};
      target->assign(copy, error);
      if (error) {
        ::close(copy);
        return error;
      }
    }
    return {};
  }

  asio::awaitable<std::size_t> read_some(std::span<std::byte> buffer,
                                         std::error_code& error) override {
    auto [result, count] =
        co_await input_.async_read_some(asio::buffer(buffer.data(), buffer.size()), kTuple);
    error = result;
    co_return count;
  }

  asio::awaitable<void> write_all(std::span<const std::byte> bytes,
                                  std::error_code& error) override {
    auto [result, count] =
        co_await asio::async_write(output_, asio::buffer(bytes.data(), bytes.size()), kTuple);
    (void)count;
    error = result;
  }

  // Closing our copy of the output is the only half-close a pipe has.
  void shutdown_send() override {
    std::error_code ignored;
    output_.close(ignored);
  }
  void abort() override { close(); }
  void close() override {
    std::error_code ignored;
    input_.close(ignored);
    output_.close(ignored);
  }

 private:
  asio::posix::stream_descriptor input_;
  asio::posix::stream_descriptor output_;
};

}  // namespace

std::unique_ptr<LocalConnection> make_tcp_connection(asio::ip::tcp::socket socket) {
  return std::make_unique<TcpConnection>(std::move(socket));
}

Expected<std::unique_ptr<LocalConnection>, std::string> make_stdio_connection(asio::io_context& io,
                                                                              int input,
                                                                              int output) {
  auto connection = std::make_unique<StdioConnection>(io);
  if (auto error = connection->open(input, output))
    return make_unexpected("cannot use standard input/output: " + error.message());
  return std::unique_ptr<LocalConnection>(std::move(connection));
}

}  // namespace tether::tunnel
