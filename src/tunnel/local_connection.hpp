// LocalConnection is the local end of one tunnelled stream: an accepted or dialled TCP socket, or
// the process's own standard input and output (`tether stdio`).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <system_error>

#include <asio.hpp>

#include "tether/expected.hpp"

namespace tether::tunnel {

class LocalConnection {
 public:
  virtual ~LocalConnection() = default;
  // Reads at least one byte; end of input is reported as asio::error::eof.
  virtual asio::awaitable<std::size_t> read_some(std::span<std::byte> buffer,
                                                 std::error_code& error) = 0;
  virtual asio::awaitable<void> write_all(std::span<const std::byte> bytes,
                                          std::error_code& error) = 0;
  // Completes when a read_now() or write_now() would make progress, or with an error (the
  // connection was closed).
  virtual asio::awaitable<void> wait_readable(std::error_code& error) = 0;
  virtual asio::awaitable<void> wait_writable(std::error_code& error) = 0;
  // Without waiting: copies the bytes that have arrived into `buffer` without taking them
  // (asio::error::would_block when none has, eof at the end), so that they stay in the kernel
  // until discard() takes them; and writes as many of `bytes` as the kernel takes now (0 and
  // would_block when none).
  virtual std::size_t peek_now(std::span<std::byte> buffer, std::error_code& error) = 0;
  // Takes the first `count` bytes that peek_now() showed.
  virtual void discard(std::size_t count) = 0;
  virtual std::size_t write_now(std::span<const std::byte> bytes, std::error_code& error) = 0;
  // An estimate of how many bytes write_now() would take now (free room in the socket's send
  // buffer or the pipe): what to take from the session so that almost none stays in our hands.
  [[nodiscard]] virtual std::size_t write_room() = 0;
  // Half-close: the local program reads end of input; reading from it goes on.
  virtual void shutdown_send() = 0;
  // Abortive close (TCP RST where the medium has one): the peer reset the stream.
  virtual void abort() = 0;
  // Orderly close of both directions; pending operations complete with an error.
  virtual void close() = 0;
};

// Takes over a connected socket and sets TCP_NODELAY on it.
[[nodiscard]] std::unique_ptr<LocalConnection> make_tcp_connection(asio::ip::tcp::socket socket);

// Reads `input` and writes `output` (for example 0 and 1). The descriptors must be pipes, sockets
// or terminals (anything epoll accepts); they are duplicated, so the caller's stay open until
// the connection closes its copies.
// The error says why a descriptor cannot be used.
[[nodiscard]] Expected<std::unique_ptr<LocalConnection>, std::string> make_stdio_connection(
    asio::io_context& io, int input, int output);

}  // namespace tether::tunnel
