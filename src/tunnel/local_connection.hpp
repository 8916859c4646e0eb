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
