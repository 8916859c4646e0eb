#include "transport/byte_stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include <asio/experimental/as_tuple.hpp>

#include "crypto/primitives.hpp"
#include "transport/tls.hpp"

namespace tether::transport {

session::ConnectionSecurity ByteStream::security() const {
  session::ConnectionSecurity security;
  const KeyingMaterial& keying = keying_material();
  security.keying_material.assign(keying.begin(), keying.end());
  return security;
}

namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

// The input buffer (ciphertext read from the socket) exists only while there is ciphertext to read:
// it is allocated once the socket is readable and given back when drained, so that an idle
// connection (or an unauthenticated one waiting in its handshake) holds none. It is small while
// reads are small; a read that fills it makes it large: bulk data then comes in up to 256 KiB,
// about 16 full TLS records, per read, and the large buffer is kept between reads. A read of less
// than kTinyRead (heartbeats, acknowledgements) makes it small again.
constexpr std::size_t kSmallInput = 16u << 10;
constexpr std::size_t kLargeInput = 256u << 10;
constexpr std::size_t kTinyRead = 2u << 10;
// Bytes a TLS 1.3 record adds to at most 16 KiB of plaintext: header, content type, AEAD tag.
constexpr std::size_t kRecordPlaintext = 16u << 10;
constexpr std::size_t kRecordOverhead = 5 + 1 + 16;

// ---- Plain TCP
// ------------------------------------------------------------------------------------

// PlainStream is the insecure test transport: the socket's bytes as they are.
class PlainStream final : public ByteStream {
 public:
  explicit PlainStream(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  asio::awaitable<std::size_t> read_some(std::span<std::byte> buffer,
                                         std::error_code& error) override {
    auto [failure, count] =
        co_await socket_.async_read_some(asio::buffer(buffer.data(), buffer.size()), kTuple);
    error = failure;
    co_return count;
  }
  asio::awaitable<void> wait_readable(std::error_code& error) override {
    auto [failure] = co_await socket_.async_wait(asio::socket_base::wait_read, kTuple);
    error = failure;
  }
  std::size_t read_available(std::span<std::byte> buffer, std::error_code& error) override {
    error = {};
    if (buffer.empty()) return 0;
    std::error_code ignored;
    socket_.non_blocking(true, ignored);
    const std::size_t count = socket_.read_some(asio::buffer(buffer.data(), buffer.size()), error);
    if (error == asio::error::would_block || error == asio::error::try_again) error = {};
    return count;
  }
  asio::awaitable<void> write_all(std::span<const std::byte> bytes,
                                  std::error_code& error) override {
    auto [failure, count] =
        co_await asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()), kTuple);
    (void)count;
    error = failure;
  }
  void close() override {
    std::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }
  const KeyingMaterial& keying_material() const override { return keying_; }
  asio::ip::tcp::socket& socket() override { return socket_; }
  std::size_t held_bytes() const override { return 0; }
  KeyingMaterial keying_{};

 private:
  asio::ip::tcp::socket socket_;
};

// ---- TLS
// ------------------------------------------------------------------------------------------

struct SslDeleter {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPointer = std::unique_ptr<SSL, SslDeleter>;

// The error an OpenSSL call reported, as asio's SSL stream reports it (same categories and
// messages), given SSL_get_error's verdict. Takes the cause from this thread's OpenSSL error queue
// and leaves the queue empty.
std::error_code failure_of(int verdict) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  switch (verdict) {
    case SSL_ERROR_ZERO_RETURN:
      return asio::error::eof;  // the peer's close_notify
    case SSL_ERROR_SSL:
      return {static_cast<int>(code), asio::error::get_ssl_category()};
    case SSL_ERROR_SYSCALL:
      if (code == 0) return asio::ssl::error::unspecified_system_error;
      return {static_cast<int>(code), asio::error::get_ssl_category()};
    default:
      return asio::ssl::error::unexpected_result;
  }
}

// TlsStream is TLS 1.3 over a TCP socket with OpenSSL working on memory, not on the socket: a BIO
// of ours hands OpenSSL the ciphertext this class read and collects the ciphertext OpenSSL
// produces, and this class moves both with Asio in large batches (asio::ssl::stream moves one
// record per system call).
//
// Invariants: `input_[input_begin_, input_end_)` (of `input_size_` bytes, none while input_ is
// null) is ciphertext read from the socket that OpenSSL has not taken yet; OpenSSL reports "want
// read" only after taking all of it. The socket is in non-blocking mode: reads happen only after
// it reported readable (or as a try that may find nothing). `output_` is ciphertext not yet given
// to the kernel, in order; while `sending_`, `in_flight_` is being written and comes before it.
// Reading and writing share the SSL object, which is safe because every OpenSSL call completes
// synchronously between two suspensions of the single-threaded io_context. A TLS error ends both
// directions; the transport's end of stream or error ends the direction it hit (the other one fails
// on its own soon enough).
class TlsStream final : public ByteStream {
 public:
  TlsStream(asio::ip::tcp::socket socket, SslPointer ssl, std::uint64_t key_update_interval)
      : socket_(std::move(socket)),
        ssl_(std::move(ssl)),
        key_update_interval_(key_update_interval == 0 ? 1 : key_update_interval) {
    std::error_code ignored;
    socket_.non_blocking(true, ignored);
  }

  // Attaches the BIO that connects the SSL object to this stream. False if OpenSSL is out of
  // memory.
  bool attach() {
    BIO* bio = BIO_new(bio_method());
    if (bio == nullptr) return false;
    BIO_set_data(bio, this);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl_.get(), bio, bio);  // one reference, owned by the SSL from here on
    // SSL_write encrypts everything it is given; SSL_read goes on past post-handshake messages.
    // OpenSSL's record buffers (about 17 KiB each way) are released after each record, except
    // while bulk data arrives (see choose_record_buffers).
    SSL_clear_mode(ssl_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_set_mode(ssl_.get(), SSL_MODE_AUTO_RETRY | SSL_MODE_RELEASE_BUFFERS);
    return true;
  }

  SSL* ssl() const { return ssl_.get(); }

  // Runs the handshake to completion (including sending the handshake's last flight, and on a
  // server the session tickets). On failure, tries to tell the peer why (an alert) without waiting.
  asio::awaitable<std::error_code> handshake(Side side) {
    if (side == Side::kClient) {
      SSL_set_connect_state(ssl_.get());
    } else {
      SSL_set_accept_state(ssl_.get());
    }
    std::error_code error;
    while (true) {
      ERR_clear_error();
      const int result = SSL_do_handshake(ssl_.get());
      if (result == 1) break;
      const int verdict = SSL_get_error(ssl_.get(), result);
      if (verdict != SSL_ERROR_WANT_READ) {
        error = failure_of(verdict);
        send_without_waiting();
        co_return error;
      }
      co_await flush(error);
      if (error) co_return error;
      co_await fill_input(error);
      if (error) co_return error;
    }
    co_await flush(error);
    co_return error;
  }

  asio::awaitable<std::size_t> read_some(std::span<std::byte> buffer,
                                         std::error_code& error) override {
    error = {};
    bool suspended = false;
    while (true) {
      const std::size_t count = decrypt(buffer);
      send_without_waiting();  // what reading produced: a KeyUpdate of ours, an alert
      if (count > 0 || buffer.empty() || read_failure_) {
        // Like every Asio operation, complete through the executor, never inside the call: the
        // caller may not be ready for bytes yet (a runtime registers a new connection with its
        // core right after starting the connection's reader), and other work gets a turn between
        // reads served from the buffer.
        if (!suspended) co_await asio::post(socket_.get_executor(), asio::use_awaitable);
        if (count == 0) error = read_failure_;
        co_return count;
      }
      if (co_await fill_input(read_failure_)) suspended = true;
    }
  }

  asio::awaitable<void> wait_readable(std::error_code& error) override {
    error = {};
    // Ciphertext at hand, or plaintext OpenSSL decrypted that did not fit the last buffer (not
    // SSL_has_pending: a partial record OpenSSL holds needs the socket first).
    if (input_begin_ < input_end_ || SSL_pending(ssl_.get()) > 0 || read_failure_) {
      co_await asio::post(socket_.get_executor(), asio::use_awaitable);
      co_return;
    }
    release_idle_input();
    auto [failure] = co_await socket_.async_wait(asio::socket_base::wait_read, kTuple);
    if (closed_ && !failure) failure = asio::error::operation_aborted;
    error = failure;
  }

  std::size_t read_available(std::span<std::byte> buffer, std::error_code& error) override {
    error = {};
    while (true) {
      const std::size_t count = decrypt(buffer);
      send_without_waiting();
      if (count > 0 || buffer.empty() || read_failure_) {
        if (count == 0) error = read_failure_;
        return count;
      }
      if (!read_now(read_failure_)) {  // the socket has nothing more now
        release_idle_input();
        return 0;
      }
    }
  }

  asio::awaitable<void> write_all(std::span<const std::byte> bytes,
                                  std::error_code& error) override {
    error = {};
    if (!write_failure_ && !bytes.empty()) encrypt(bytes);
    if (write_failure_ || output_.empty()) {
      // Nothing to send: still complete through the executor.
      co_await asio::post(socket_.get_executor(), asio::use_awaitable);
      error = write_failure_;
      co_return;
    }
    co_await flush(error);
  }

  void close() override {
    closed_ = true;
    if (!read_failure_) read_failure_ = asio::error::operation_aborted;
    if (!write_failure_) write_failure_ = asio::error::operation_aborted;
    std::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  const KeyingMaterial& keying_material() const override { return keying_; }
  session::ConnectionSecurity security() const override {
    session::ConnectionSecurity security = ByteStream::security();
    security.channel_binding.assign(channel_binding_.begin(), channel_binding_.end());
    security.confidential = true;
    security.peer_certificate_identity = peer_certificate_identity_;
    if (!peer_certificate_identity_.empty() && peer_certificate_expiry_) {
      security.peer_certificate_lifetime =
          std::max(session::Duration::zero(),
                   std::chrono::duration_cast<session::Duration>(*peer_certificate_expiry_ -
                                                                 std::chrono::system_clock::now()));
    }
    return security;
  }
  asio::ip::tcp::socket& socket() override { return socket_; }
  std::string peer_certificate_problem() const override { return peer_certificate_problem_; }
  std::size_t held_bytes() const override {
    return input_size_ + output_.capacity() + in_flight_.capacity();
  }
  KeyingMaterial keying_{};
  KeyingMaterial channel_binding_{};
  // Server side: the verified client certificate's identity (client_certificate_identity), taken
  // once after the handshake (no post-handshake authentication is enabled, so it cannot change).
  std::string peer_certificate_identity_;
  // And its notAfter (client_certificate_expiry); security() gives the time left until it.
  std::optional<std::chrono::system_clock::time_point> peer_certificate_expiry_;
  std::string peer_certificate_problem_;  // client_certificate_problem, taken with the identity

 private:
  // Decrypts into `buffer` every record OpenSSL can complete from the ciphertext at hand, until the
  // buffer is full or OpenSSL wants more ciphertext. Post-handshake messages (session tickets,
  // KeyUpdate) are processed on the way. A close_notify or a TLS error is recorded in read_failure_
  // (a TLS error in write_failure_ too) and ends the loop. Returns the plaintext byte count.
  std::size_t decrypt(std::span<std::byte> buffer) {
    choose_record_buffers();
    std::size_t total = 0;
    while (total < buffer.size() && !read_failure_) {
      std::size_t count = 0;
      ERR_clear_error();
      const int result =
          SSL_read_ex(ssl_.get(), buffer.data() + total, buffer.size() - total, &count);
      if (result == 1) {
        total += count;
        continue;
      }
      const int verdict = SSL_get_error(ssl_.get(), result);
      if (verdict == SSL_ERROR_WANT_READ) break;
      if (verdict == SSL_ERROR_ZERO_RETURN) {
        read_failure_ = failure_of(verdict);
      } else {
        fail_both(failure_of(verdict));
      }
    }
    return total;
  }

  // Encrypts all of `bytes` into output_ (one SSL_write: without SSL_MODE_ENABLE_PARTIAL_WRITE and
  // with a BIO that takes everything, it makes every record at once), after a KeyUpdate when one is
  // due. A failure is recorded in both directions, and the alert OpenSSL made goes out if it can.
  void encrypt(std::span<const std::byte> bytes) {
    if (written_since_key_update_ >= key_update_interval_) {
      // Refused only while an earlier update is still to be sent; then the next write tries again.
      if (SSL_key_update(ssl_.get(), SSL_KEY_UPDATE_NOT_REQUESTED) == 1) {
        written_since_key_update_ = 0;
      } else {
        ERR_clear_error();
      }
    }
    const std::size_t records = bytes.size() / kRecordPlaintext + 2;  // + a KeyUpdate
    output_.reserve(output_.size() + bytes.size() + records * kRecordOverhead);
    std::size_t written = 0;
    ERR_clear_error();
    const int result = SSL_write_ex(ssl_.get(), bytes.data(), bytes.size(), &written);
    if (result != 1) {
      fail_both(failure_of(SSL_get_error(ssl_.get(), result)));
      send_without_waiting();
      return;
    }
    written_since_key_update_ += written;
  }

  // Bulk data is arriving while the input buffer is large: OpenSSL then keeps its record buffers
  // (allocating and freeing them per 16 KiB record would cost bulk throughput); otherwise it
  // releases them after each record, so that an idle connection holds none.
  void choose_record_buffers() {
    if (input_size_ == kLargeInput) {
      SSL_clear_mode(ssl_.get(), SSL_MODE_RELEASE_BUFFERS);
    } else {
      SSL_set_mode(ssl_.get(), SSL_MODE_RELEASE_BUFFERS);
    }
  }

  // One socket read, without waiting, into the input buffer (allocated, or resized as the previous
  // read suggests, see kSmallInput). OpenSSL asks for more ciphertext only after taking all of it
  // (should it not have, the rest is kept). Returns false if the socket had nothing; true if bytes
  // came or the read failed (recorded in `error` unless it holds an error already). The transport's
  // end of stream is reported as asio's SSL stream does: the peer stopped without a close_notify,
  // the stream is truncated.
  bool read_now(std::error_code& error) {
    const std::size_t kept = input_end_ - input_begin_;
    std::size_t wanted = input_size_ == 0 ? kSmallInput : input_size_;
    if (last_read_filled_) wanted = kLargeInput;
    if (last_read_ < kTinyRead) wanted = kSmallInput;
    if (wanted != input_size_ && kept < wanted) {
      auto resized = std::make_unique_for_overwrite<std::byte[]>(wanted);
      if (kept > 0) std::memcpy(resized.get(), input_.get() + input_begin_, kept);
      input_ = std::move(resized);
      input_size_ = wanted;
    } else if (kept > 0 && input_begin_ > 0) {
      std::memmove(input_.get(), input_.get() + input_begin_, kept);
    }
    input_begin_ = 0;
    input_end_ = kept;
    if (kept == input_size_) {  // OpenSSL refuses records long before this
      if (!error) error = asio::ssl::error::unexpected_result;
      return true;
    }
    std::error_code failure;
    const std::size_t count =
        socket_.read_some(asio::buffer(input_.get() + kept, input_size_ - kept), failure);
    if (failure == asio::error::would_block || failure == asio::error::try_again) {
      if (!closed_) return false;
      failure = asio::error::operation_aborted;
    }
    input_end_ += count;
    last_read_ = count;
    last_read_filled_ = input_end_ == input_size_;
    if (failure == asio::error::eof) failure = asio::ssl::error::stream_truncated;
    if (closed_ && !failure) failure = asio::error::operation_aborted;
    if (failure && !error) error = failure;
    return true;
  }

  // Reads at least once into the input buffer, waiting for the socket as long as it takes (see
  // read_now). Returns whether it waited.
  asio::awaitable<bool> fill_input(std::error_code& error) {
    bool waited = false;
    while (!read_now(error)) {
      release_idle_input();
      auto [failure] = co_await socket_.async_wait(asio::socket_base::wait_read, kTuple);
      waited = true;
      if (closed_ && !failure) failure = asio::error::operation_aborted;
      if (failure) {
        if (!error) error = failure;
        break;
      }
    }
    co_return waited;
  }

  // Gives the input buffer back while it holds nothing, unless bulk data is arriving (a large
  // buffer whose last read was not tiny): a waiting connection holds no input buffer.
  void release_idle_input() {
    if (input_ == nullptr || input_begin_ != input_end_) return;
    if (input_size_ == kLargeInput && last_read_ >= kTinyRead) return;
    input_.reset();
    input_size_ = 0;
    input_begin_ = 0;
    input_end_ = 0;
  }

  // Gives output_ to the kernel, waiting as long as it takes; new output produced meanwhile (by the
  // reader) goes out in the same call.
  asio::awaitable<void> flush(std::error_code& error) {
    while (!output_.empty() && !write_failure_) {
      in_flight_.swap(output_);
      output_.clear();
      sending_ = true;
      auto [failure, count] = co_await asio::async_write(
          socket_, asio::buffer(in_flight_.data(), in_flight_.size()), kTuple);
      (void)count;
      sending_ = false;
      if (failure && !write_failure_) write_failure_ = failure;
    }
    if (output_.empty() && in_flight_.size() < kSmallInput) {
      std::vector<std::byte>().swap(in_flight_);  // not bulk (any more): give the memory back
      std::vector<std::byte>().swap(output_);
    }
    error = write_failure_;
  }

  // Sends as much of output_ as the kernel takes right now, unless a flush is under way (which
  // will send it). What stays behind goes out with the next write_all: the peer waits for none of
  // it (an alert ends the connection anyway; a KeyUpdate reply only changes our sending key).
  void send_without_waiting() {
    if (output_.empty() || sending_ || closed_) return;
    const ssize_t sent = ::send(socket_.native_handle(), output_.data(), output_.size(),
                                MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && !write_failure_) {
        write_failure_ = std::error_code(errno, asio::error::get_system_category());
      }
      return;
    }
    output_.erase(output_.begin(), output_.begin() + sent);
  }

  void fail_both(std::error_code failure) {
    if (!read_failure_) read_failure_ = failure;
    if (!write_failure_) write_failure_ = failure;
  }

  // ---- The BIO between OpenSSL and this stream

  static int bio_read(BIO* bio, char* data, std::size_t size, std::size_t* read) {
    auto* stream = static_cast<TlsStream*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    const std::size_t available = stream->input_end_ - stream->input_begin_;
    if (available == 0) {
      BIO_set_retry_read(bio);  // "want read", never end of stream: fill_input handles that
      *read = 0;
      return 0;
    }
    const std::size_t count = available < size ? available : size;
    std::memcpy(data, stream->input_.get() + stream->input_begin_, count);
    stream->input_begin_ += count;
    *read = count;
    return 1;
  }

  static int bio_write(BIO* bio, const char* data, std::size_t size, std::size_t* written) {
    auto* stream = static_cast<TlsStream*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    try {
      const auto* bytes = reinterpret_cast<const std::byte*>(data);
      stream->output_.insert(stream->output_.end(), bytes, bytes + size);
    } catch (const std::bad_alloc&) {
      *written = 0;
      return 0;  // OpenSSL reports the write as failed
    }
    *written = size;
    return 1;
  }

  static long bio_control(BIO* /*bio*/, int command, long /*number*/, void* /*pointer*/) {
    // OpenSSL flushes after each handshake flight; flushing is flush()'s business, so it succeeds.
    return command == BIO_CTRL_FLUSH ? 1 : 0;
  }

  static BIO_METHOD* bio_method() {
    static BIO_METHOD* const method = [] {
      BIO_METHOD* created = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tether TLS");
      if (created == nullptr || BIO_meth_set_read_ex(created, &bio_read) != 1 ||
          BIO_meth_set_write_ex(created, &bio_write) != 1 ||
          BIO_meth_set_ctrl(created, &bio_control) != 1) {
        std::abort();  // OpenSSL cannot allocate a few bytes at start-up
      }
      return created;  // lives as long as the process
    }();
    return method;
  }

  asio::ip::tcp::socket socket_;
  SslPointer ssl_;
  std::unique_ptr<std::byte[]> input_;  // null while idle
  std::size_t input_size_ = 0;
  std::size_t input_begin_ = 0;
  std::size_t input_end_ = 0;
  std::size_t last_read_ = kSmallInput;  // neither tiny nor filling: keep the size
  bool last_read_filled_ = false;
  std::vector<std::byte> output_;
  std::vector<std::byte> in_flight_;
  bool sending_ = false;
  bool closed_ = false;
  std::error_code read_failure_;
  std::error_code write_failure_;
  std::uint64_t written_since_key_update_ = 0;
  std::uint64_t key_update_interval_;
};

}  // namespace

asio::awaitable<Expected<std::unique_ptr<ByteStream>, TransportError>> open_tls(
    asio::ip::tcp::socket socket, asio::ssl::context& context, Side side,
    std::uint64_t key_update_interval) {
  ERR_clear_error();
  SslPointer ssl(SSL_new(context.native_handle()));
  if (!ssl) {
    ERR_clear_error();
    co_return make_unexpected(
        TransportError{TransportErrorKind::kResources, "TLS handshake failed: out of memory"});
  }
  auto tls = std::make_unique<TlsStream>(std::move(socket), std::move(ssl), key_update_interval);
  if (!tls->attach()) {
    ERR_clear_error();
    co_return make_unexpected(
        TransportError{TransportErrorKind::kResources, "TLS handshake failed: out of memory"});
  }
  if (side == Side::kClient) prepare_client_connection(tls->ssl());  // SNI, TLS resumption
  const std::error_code error = co_await tls->handshake(side);
  if (error) {
    if (auto mismatch = fingerprint_mismatch(tls->ssl()))
      co_return make_unexpected(
          TransportError{TransportErrorKind::kFingerprintMismatch, *mismatch});
    co_return make_unexpected(
        TransportError{TransportErrorKind::kHandshake, "TLS handshake failed: " + error.message()});
  }
  tls->keying_ = export_keying_material(tls->ssl());
  tls->channel_binding_ = export_channel_binding(tls->ssl());
  if (side == Side::kServer) {
    tls->peer_certificate_identity_ = client_certificate_identity(tls->ssl());
    if (!tls->peer_certificate_identity_.empty())
      tls->peer_certificate_expiry_ = client_certificate_expiry(tls->ssl());
    tls->peer_certificate_problem_ = client_certificate_problem(tls->ssl());
  }
  co_return std::unique_ptr<ByteStream>(std::move(tls));
}

asio::awaitable<Expected<std::unique_ptr<ByteStream>, TransportError>> open_plain(
    asio::ip::tcp::socket socket, Side side) {
  auto plain = std::make_unique<PlainStream>(std::move(socket));
  std::array<std::byte, 32> mine{};
  std::array<std::byte, 32> theirs{};
  if (RAND_bytes(reinterpret_cast<unsigned char*>(mine.data()), static_cast<int>(mine.size())) !=
      1) {
    co_return make_unexpected(
        TransportError{TransportErrorKind::kResources, "no randomness for the plain handshake"});
  }
  std::error_code error;
  co_await plain->write_all(mine, error);
  if (!error) {
    auto [failure, count] = co_await asio::async_read(
        plain->socket(), asio::buffer(theirs.data(), theirs.size()), kTuple);
    (void)count;
    error = failure;
  }
  if (error)
    co_return make_unexpected(TransportError{TransportErrorKind::kHandshake,
                                             "plain handshake failed: " + error.message()});
  const auto& client_nonce = side == Side::kClient ? mine : theirs;
  const auto& server_nonce = side == Side::kClient ? theirs : mine;
  plain->keying_ = crypto::hmac_sha256(
      crypto::label("tether v1 plain transport (insecure)"),
      {std::span<const std::byte>(client_nonce), std::span<const std::byte>(server_nonce)});
  co_return std::unique_ptr<ByteStream>(std::move(plain));
}

asio::awaitable<Expected<std::unique_ptr<ByteStream>, TransportError>> open_byte_stream(
    asio::ip::tcp::socket socket, asio::ssl::context* tls, Side side) {
  // (No co_await inside ?: — g++ 12 miscompiles it.)
  if (tls != nullptr) co_return co_await open_tls(std::move(socket), *tls, side);
  co_return co_await open_plain(std::move(socket), side);
}

void tune_socket(asio::ip::tcp::socket& socket, std::chrono::milliseconds user_timeout) {
  std::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  set_user_timeout(socket, user_timeout);
}

void set_user_timeout(asio::ip::tcp::socket& socket, std::chrono::milliseconds user_timeout) {
  const auto milliseconds = static_cast<unsigned int>(
      std::clamp<std::chrono::milliseconds::rep>(user_timeout.count(), 0, INT_MAX));
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_USER_TIMEOUT, &milliseconds,
               sizeof milliseconds);
}

std::optional<std::chrono::milliseconds> user_timeout(asio::ip::tcp::socket& socket) {
  unsigned int milliseconds = 0;
  socklen_t size = sizeof milliseconds;
  if (::getsockopt(socket.native_handle(), IPPROTO_TCP, TCP_USER_TIMEOUT, &milliseconds, &size) !=
      0) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(milliseconds);
}

}  // namespace tether::transport
