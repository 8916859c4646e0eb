#include "tunnel/local_connection.hpp"

#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

#include <asio/experimental/as_tuple.hpp>

namespace tether::tunnel {
namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
// What write_room() says when the descriptor cannot tell (a terminal, a file).
constexpr std::size_t kUnknownRoom = 16u << 10;
// Unsent bytes a local TCP socket may hold (TCP_NOTSENT_LOWAT): beyond them bytes wait in the
// session, within the stream's receive window, and a target that does not read costs its own
// receive buffer and this much, not the whole send buffer (4 MiB on Linux by default).
constexpr int kLocalUnsentLimit = 256 << 10;

// Free room in the kernel's buffer behind `descriptor`, on the low side so that a write of that
// much is taken whole: for a socket, its send buffer less what it holds and less 1/16 for the
// kernel's own overhead per segment, and no more than the unsent-bytes limit leaves; for a pipe,
// its capacity less what it holds.
std::size_t room_of(int descriptor) {
  int queued = 0;
  int size = 0;
  socklen_t length = sizeof size;
  if (::getsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &size, &length) == 0) {
    int unsent = 0;
    int limit = 0;
    length = sizeof limit;
    if (::ioctl(descriptor, SIOCOUTQ, &queued) != 0) return kUnknownRoom;
    const long room = static_cast<long>(size) - size / 16 - queued;
    if (room <= 0) return 0;
    if (::getsockopt(descriptor, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &limit, &length) == 0 &&
        limit > 0 && ::ioctl(descriptor, SIOCOUTQNSD, &unsent) == 0) {
      return static_cast<std::size_t>(std::min<long>(room, std::max(0, limit - unsent)));
    }
    return static_cast<std::size_t>(room);
  }
  size = ::fcntl(descriptor, F_GETPIPE_SZ);
  if (size <= 0 || ::ioctl(descriptor, FIONREAD, &queued) != 0) return kUnknownRoom;
  return size > queued ? static_cast<std::size_t>(size - queued) : 0;
}

// Whether epoll accepts `descriptor` (it refuses regular files and /dev/null with EPERM).
bool pollable(int descriptor) {
  const int probe = ::epoll_create1(EPOLL_CLOEXEC);
  if (probe < 0) return true;
  epoll_event event{};
  event.events = EPOLLIN;
  const bool accepted =
      ::epoll_ctl(probe, EPOLL_CTL_ADD, descriptor, &event) == 0 || errno != EPERM;
  ::close(probe);
  return accepted;
}

template <typename Handle>
asio::awaitable<void> wait_for(Handle& handle, typename Handle::wait_type type,
                               std::error_code& error) {
  auto [result] = co_await handle.async_wait(type, kTuple);
  error = result;
}

class TcpConnection final : public LocalConnection {
 public:
  explicit TcpConnection(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {
    std::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    socket_.non_blocking(true, ignored);  // peek_now and write_now never wait
    const int limit = kLocalUnsentLimit;
    ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_NOTSENT_LOWAT, &limit, sizeof limit);
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

  asio::awaitable<void> wait_readable(std::error_code& error) override {
    co_await wait_for(socket_, asio::socket_base::wait_read, error);
  }
  asio::awaitable<void> wait_writable(std::error_code& error) override {
    co_await wait_for(socket_, asio::socket_base::wait_write, error);
  }
  std::size_t peek_now(std::span<std::byte> buffer, std::error_code& error) override {
    error.clear();
    const ssize_t count =
        ::recv(socket_.native_handle(), buffer.data(), buffer.size(), MSG_PEEK | MSG_DONTWAIT);
    if (count > 0) return static_cast<std::size_t>(count);
    if (count == 0) {
      if (!buffer.empty()) error = asio::error::eof;
      return 0;
    }
    error = errno == EAGAIN || errno == EWOULDBLOCK
                ? std::error_code(asio::error::would_block)
                : std::error_code(errno, std::system_category());
    return 0;
  }
  // TCP drops received bytes without copying them with MSG_TRUNC (tcp(7)).
  void discard(std::size_t count) override {
    while (count > 0) {
      const ssize_t taken =
          ::recv(socket_.native_handle(), nullptr, count, MSG_TRUNC | MSG_DONTWAIT);
      if (taken <= 0 && errno != EINTR) return;  // peeked bytes are there: not reached
      if (taken > 0) count -= static_cast<std::size_t>(taken);
    }
  }
  std::size_t write_now(std::span<const std::byte> bytes, std::error_code& error) override {
    return socket_.write_some(asio::buffer(bytes.data(), bytes.size()), error);
  }
  [[nodiscard]] std::size_t write_room() override { return room_of(socket_.native_handle()); }

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
      // Asio makes the descriptors non-blocking for its own operations anyway; peek_now and
      // write_now need it said.
      target->non_blocking(true, error);
      if (error) return error;
    }
    input_pollable_ = pollable(input_.native_handle());
    output_pollable_ = pollable(output_.native_handle());
    return {};
  }

  // A descriptor epoll refuses (/dev/null, a regular file) never makes a read or a write wait.
  asio::awaitable<void> wait_readable(std::error_code& error) override {
    error.clear();
    if (input_pollable_)
      co_await wait_for(input_, asio::posix::stream_descriptor::wait_read, error);
  }
  asio::awaitable<void> wait_writable(std::error_code& error) override {
    error.clear();
    if (output_pollable_)
      co_await wait_for(output_, asio::posix::stream_descriptor::wait_write, error);
  }
  // A pipe cannot be peeked: what was read and not yet discarded waits in `peeked_` (one
  // connection per process, at most one read).
  std::size_t peek_now(std::span<std::byte> buffer, std::error_code& error) override {
    error.clear();
    if (peeked_.empty()) {
      peeked_.resize(buffer.size());
      const std::size_t count =
          input_.read_some(asio::buffer(peeked_.data(), peeked_.size()), error);
      peeked_.resize(count);
      if (error) return 0;
    }
    const std::size_t count = std::min(peeked_.size(), buffer.size());
    std::copy_n(peeked_.begin(), count, buffer.begin());
    return count;
  }
  void discard(std::size_t count) override {
    peeked_.erase(peeked_.begin(),
                  peeked_.begin() + static_cast<std::ptrdiff_t>(std::min(count, peeked_.size())));
    if (peeked_.empty()) std::vector<std::byte>().swap(peeked_);
  }
  std::size_t write_now(std::span<const std::byte> bytes, std::error_code& error) override {
    return output_.write_some(asio::buffer(bytes.data(), bytes.size()), error);
  }
  [[nodiscard]] std::size_t write_room() override { return room_of(output_.native_handle()); }

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
  std::vector<std::byte> peeked_;
  bool input_pollable_ = true;
  bool output_pollable_ = true;
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
