// ByteStream is one transport connection as the runtime sees it: a TLS 1.3 stream (the default) or
// a plain TCP stream (tests only, asked for explicitly), with the keying material that binds the
// session.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include "session/authenticator.hpp"
#include "tether/expected.hpp"
#include "transport/transport_error.hpp"

namespace tether::transport {

using KeyingMaterial = std::array<std::byte, 32>;

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // Reads at least one byte; an error (including end of stream) ends the connection. At most one
  // read_some at a time; it may run while a write_all is pending. Like Asio's own operations,
  // read_some and write_all complete through the executor, never before the first suspension.
  virtual asio::awaitable<std::size_t> read_some(std::span<std::byte> buffer,
                                                 std::error_code& error) = 0;
  // Reactor-style reading, for a caller that lends one buffer to many connections: wait_readable
  // completes (through the executor) once read_available may have bytes, or with an error when the
  // connection is gone; read_available then returns what can be read now without waiting: zero
  // with no error when nothing complete arrived (a partial TLS record; wait again), an error when
  // the stream ended. Neither holds the caller's buffer across a suspension, and a stream waiting
  // in wait_readable holds no read buffer of its own either. Not mixed with a pending read_some.
  virtual asio::awaitable<void> wait_readable(std::error_code& error) = 0;
  virtual std::size_t read_available(std::span<std::byte> buffer, std::error_code& error) = 0;
  // Completes once every byte is handed to the kernel, or with an error. At most one write_all at a
  // time.
  virtual asio::awaitable<void> write_all(std::span<const std::byte> bytes,
                                          std::error_code& error) = 0;
  // Closes at once; pending operations complete with an error.
  virtual void close() = 0;
  // Bytes of buffers the stream holds itself now (ciphertext read and not yet decrypted, ciphertext
  // not yet sent, and their spare capacity), not counting OpenSSL's own. Zero while idle.
  [[nodiscard]] virtual std::size_t held_bytes() const = 0;
  [[nodiscard]] virtual const KeyingMaterial& keying_material() const = 0;
  // What authentication may use of this connection: the keying material, and for TLS the
  // RFC 9266 channel binding and confidentiality (see session::ConnectionSecurity).
  [[nodiscard]] virtual session::ConnectionSecurity security() const;
  // Server side, TLS verifying client certificates: why the connection has no certificate identity
  // (client_certificate_problem); empty otherwise.
  [[nodiscard]] virtual std::string peer_certificate_problem() const { return {}; }
  virtual asio::ip::tcp::socket& socket() = 0;
};

// The two ends of a connection: the client dials, the server accepts.
enum class Side : std::uint8_t { kClient, kServer };

// TLS 1.3 with AES-GCM should encrypt at most about 2^24.5 full records under one key (RFC 8446
// section 5.5), which a fast tunnel reaches within an hour; a TLS ByteStream therefore updates its
// sending key (a KeyUpdate message) after every this many bytes of plaintext: 64 GiB, 4 million
// full records.
inline constexpr std::uint64_t kKeyUpdateInterval = std::uint64_t{1} << 36;

// Completes the TLS handshake on a connected socket and exports the keying material. A client
// context must come from make_client_context (it carries the trusted host and the TLS session to
// resume). The error says what failed (kFingerprintMismatch: its message names the fingerprint the
// server presented). The stream batches: write_all encrypts all its bytes and sends the records
// with one socket write; read_some reads up to 256 KiB of records with one socket read and returns
// as much plaintext as they hold and the buffer takes (read_available likewise). Idle, a stream
// holds no buffers: its ciphertext input buffer is allocated when the socket is readable and given
// back once drained unless bulk data is arriving, and OpenSSL's record buffers are released after
// each record (SSL_MODE_RELEASE_BUFFERS) except while bulk data arrives. `key_update_interval`
// (bytes, at least 1) exists for tests.
asio::awaitable<Expected<std::unique_ptr<ByteStream>, TransportError>> open_tls(
    asio::ip::tcp::socket socket, asio::ssl::context& context, Side side,
    std::uint64_t key_update_interval = kKeyUpdateInterval);

// Plain TCP for tests: each end sends 32 random bytes and the keying material is derived from both.
// There is no confidentiality and no authentication: anyone on the path can take the session over.
asio::awaitable<Expected<std::unique_ptr<ByteStream>, TransportError>> open_plain(
    asio::ip::tcp::socket socket, Side side);

// open_tls when `tls` is set, open_plain otherwise.
asio::awaitable<Expected<std::unique_ptr<ByteStream>, TransportError>> open_byte_stream(
    asio::ip::tcp::socket socket, asio::ssl::context* tls, Side side);

// TCP_NODELAY, and TCP_USER_TIMEOUT so that the kernel gives up on unacknowledged data no later
// than the heartbeat budget would.
void tune_socket(asio::ip::tcp::socket& socket, std::chrono::milliseconds user_timeout);
// Sets the connection's TCP_USER_TIMEOUT: how long the kernel keeps retransmitting unacknowledged
// bytes before it gives the connection up. Once a session is established the runtime sets it from
// the negotiated heartbeat (session::kernel_user_timeout), on both sides.
void set_user_timeout(asio::ip::tcp::socket& socket, std::chrono::milliseconds user_timeout);
// The connection's TCP_USER_TIMEOUT as the kernel holds it, or nullopt when it cannot be read.
[[nodiscard]] std::optional<std::chrono::milliseconds> user_timeout(asio::ip::tcp::socket& socket);

}  // namespace tether::transport
