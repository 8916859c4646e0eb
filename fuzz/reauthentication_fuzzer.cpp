// Stateful fuzz target for in-place re-authentication (PROTOCOL.md "Lifetime and
// re-authentication"): a ServerEndpoint with the real SCRAM-SHA-256 mechanism of tether_auth (an
// in-memory users table: alice's password never expires, erin's expires 8 s after the start; the
// wall clock follows the virtual clock) holds one authenticated session with a short lifetime. The
// input chooses the server's lifetime policy (max_reauthentication, audit only, immediate or on-use
// enforcement, the handshake timeout), whether the client offers re-authentication, and then steps:
// control-stream messages from the client (Reauthenticate with the right, another or a fuzzed
// mechanism and initial response, AuthResponse, AuthChallenge, Reauthenticated, Close, garbage,
// oversized ones, repeated starts), a real SCRAM client's exchange with the right or a wrong
// credential, application data on the client's streams, Acks and Pongs, time steps (the virtual
// clock fires every deadline on time), connection drops and resumes with a correct proof
// (mid-exchange, past the lifetime), and raw bytes.
// After every step it checks: the server's output decodes and stays in proportion to what it was
// sent; in enforcing mode the server's application receives no stream data once the session has
// been connected for more than the grace (the handshake timeout) past its lifetime's end (time
// while suspended does not count: neither an exchange's deadline nor a resume's grace gives more);
// a Reauthenticated (the endpoint's event and the control message) follows only an exchange that
// the real client ran from its Reauthenticate to its last AuthResponse with the session's own
// principal, names that principal and mechanism, and convinces the client (SCRAM's server
// signature). AddressSanitizer and UBSan catch the rest.
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "auth/mechanism.hpp"
#include "auth/sasl_client.hpp"
#include "auth/sasl_server.hpp"
#include "auth/user_store.hpp"
#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "session/key_schedule.hpp"
#include "session/server_endpoint.hpp"
#include "session/session.hpp"
#include "tests/support/session_pair.hpp"
#include "wire/codec.hpp"

namespace {

using namespace tether;
using session::AuthenticationStep;
using session::Duration;
using session::PathId;
using session::SessionId;
using session::Time;
using Status = AuthenticationStep::Status;
using std::chrono::milliseconds;
using std::chrono::seconds;

// TETHER_FUZZ_TRACE=1 prints each step and each frame the server sends.
const bool kTrace = std::getenv("TETHER_FUZZ_TRACE") != nullptr;
// TETHER_FUZZ_SKIP_KNOWN=1 lets pass the shapes of the findings reported and not fixed yet (see
// tests/unit/reauthentication_fuzz_findings_test.cpp), so that fuzzing looks for others: data
// delivered during an exchange in on-use mode, and within the grace of the latest resume or the
// deadline of an exchange started in that grace (twice the handshake timeout).
const bool kSkipKnown = std::getenv("TETHER_FUZZ_SKIP_KNOWN") != nullptr;

constexpr std::size_t kMaxSteps = 192;
constexpr std::size_t kMaxConnections = 24;
constexpr std::size_t kMaxRawBytes = 64u << 10;  // per input, over all floods
// Server output per byte it was sent, and per connection (a Welcome or ResumeAccept, the replay of
// the unacknowledged control stream, which the client's own messages filled), besides Pings.
constexpr std::uint64_t kAmplification = 8;
constexpr std::uint64_t kOutputPerConnection = 64u << 10;
constexpr std::string_view kMechanism = "SCRAM-SHA-256";
const Time kStart = Time{} + std::chrono::hours(1);
// erin's password expires this long after kStart.
constexpr Duration kErinLifetime = seconds(8);

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto* data = reinterpret_cast<const std::byte*>(text.data());
  return {data, data + text.size()};
}

// The virtual clock, which the users table's wall clock follows (the fixture outlives inputs).
Time g_now = kStart;
const std::chrono::system_clock::time_point kWallStart =
    std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 20454);  // 2026
std::chrono::system_clock::time_point wall_now() {
  return kWallStart +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(g_now - kStart);
}

// Offers SCRAM-SHA-256 (and the others of the SASL layer) as auth/credentials.cpp composes it.
class Authenticator final : public session::ServerAuthenticator {
 public:
  explicit Authenticator(std::shared_ptr<auth::SaslServerAuthenticator> sasl)
      : sasl_(std::move(sasl)) {}
  [[nodiscard]] std::vector<std::string> mechanisms() const override { return sasl_->mechanisms(); }
  [[nodiscard]] std::unique_ptr<session::ServerAuthentication> start(
      std::string_view mechanism, const session::ConnectionSecurity& security) override {
    return sasl_->start(mechanism, security);
  }

 private:
  std::shared_ptr<auth::SaslServerAuthenticator> sasl_;
};

// Made once: the users (alice; erin, whose password expires; bob, disabled), the authenticator,
// and the clients' credentials (their salted passwords remembered, so that no exchange runs
// PBKDF2 on the client).
struct Fixture {
  std::vector<std::byte> salt = std::vector<std::byte>(16, std::byte{7});
  std::uint32_t iterations = auth::kMinimumScramIterations;
  std::shared_ptr<Authenticator> authenticator;
  // 0 alice/pencil, 1 erin/sesame, 2 alice/wrong, 3 bob/hunter2 (disabled).
  std::array<std::shared_ptr<auth::ScramCredential>, 4> credentials = {
      std::make_shared<auth::ScramCredential>("alice", "pencil"),
      std::make_shared<auth::ScramCredential>("erin", "sesame"),
      std::make_shared<auth::ScramCredential>("alice", "wrong"),
      std::make_shared<auth::ScramCredential>("bob", "hunter2")};

  Fixture() {
    auth::UserStore store;
    store.set("alice", *auth::make_verifier("pencil", salt, iterations));
    store.set("erin", *auth::make_verifier("sesame", salt, iterations));
    FUZZ_CHECK(store.set_expiry("erin", wall_now() + kErinLifetime));
    store.set("bob", *auth::make_verifier("hunter2", salt, iterations));
    store.set_disabled("bob", true);
    auth::SaslServerConfig config;
    config.users = std::make_shared<auth::UserDirectory>(std::move(store));
    config.fake_verifier_secret.assign(32, std::byte{42});
    config.wall_clock = wall_now;
    const std::vector<std::byte> fake_secret = config.fake_verifier_secret;
    authenticator =
        std::make_shared<Authenticator>(std::make_shared<auth::SaslServerAuthenticator>(config));
    for (std::size_t index = 0; index < 3; ++index) remember(*credentials[index], salt);
    remember(*credentials[3], auth::fake_verifier(fake_secret, "bob", iterations).salt);
  }

  void remember(auth::ScramCredential& credential, const std::vector<std::byte>& user_salt) const {
    std::array<unsigned char, 32> salted{};
    const std::string& password = credential.password();
    FUZZ_CHECK(PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                                 reinterpret_cast<const unsigned char*>(user_salt.data()),
                                 static_cast<int>(user_salt.size()), static_cast<int>(iterations),
                                 EVP_sha256(), static_cast<int>(salted.size()),
                                 salted.data()) == 1);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (const unsigned char byte : salted) {
      hex += kHex[byte >> 4];
      hex += kHex[byte & 15];
    }
    credential.remember(auth::encode_base64(user_salt), std::to_string(iterations), hex);
  }

  [[nodiscard]] std::unique_ptr<session::ClientAuthentication> client(std::size_t which) const {
    auth::SaslClientConfig config;
    config.credential = credentials[which % credentials.size()];
    return auth::start_sasl_client(auth::Mechanism::kScramSha256, config, {});
  }
};

Fixture& fixture() {
  static Fixture instance;
  return instance;
}

class Input : public fuzz::FuzzInput {
 public:
  using FuzzInput::FuzzInput;
};

// The client's side of the session (the harness plays it, frame by frame).
struct Client {
  std::optional<SessionId> session;
  std::string principal;
  session::Secret resume_secret{};
  bool tainted = false;            // raw bytes reached the session: offsets are guesses
  std::uint64_t control_out = 0;   // next control-stream offset to the server
  std::uint64_t control_in = 0;    // server control-stream bytes received in order
  std::vector<std::byte> control;  // of those, not yet a whole message
  std::map<session::StreamId, std::uint64_t> sent;  // client streams: next offset
  session::StreamId next_stream = 1;
  // The real client's re-authentication, if one runs.
  std::unique_ptr<session::ClientAuthentication> exchange;
  bool exchange_genuine = false;  // every message of this exchange so far was the client's
  bool exchange_right = false;    // its credential is the session principal's (and valid)
  std::optional<std::vector<std::byte>> answer;  // its answer to the last challenge
  bool final_sent = false;                       // the answer sent was its last one (client-final)
  std::uint64_t server_successes = 0;            // Reauthenticated events the server emitted
  std::uint64_t client_successes = 0;            // Reauthenticated messages the harness read
};

struct Connection {
  std::vector<std::byte> keying;
  bool first_frame_sent = false;
  bool joined = false;  // Welcome or ResumeAccept seen
  bool resuming = false;
  session::Secret resume_secret{};  // what the Resume's proof used
  bool done = false;
  std::vector<std::byte> inbound;
};

struct World {
  session::SessionConfig config;
  fuzz::FixedRandom random{13};
  session::Secret static_key{};
  Time now = kStart;
  std::optional<session::ServerEndpoint> server;
  std::map<PathId, Connection> connections;
  PathId next_id = 1;
  std::optional<PathId> current;  // the connection the client uses
  Client client;
  bool offers_reauthentication = true;
  std::uint64_t bytes_in = 0;   // fed to the server
  std::uint64_t bytes_out = 0;  // taken from it, Pings aside
  std::size_t raw_bytes = 0;
  std::array<std::byte, 4096> scratch{};

  // The invariant's clock: the lifetime end it measures from, and how long the session has been
  // connected (not suspended) since then.
  std::optional<Time> measured_end;
  Duration connected_past_end{0};
  std::optional<Time> last_resume;  // when the latest ResumeAccept came

  explicit World(Input& input) {
    const std::uint8_t policy = input.u8();
    static constexpr std::optional<Duration> kMax[] = {
        std::nullopt, seconds(2), seconds(5), seconds(20), milliseconds(1500), seconds(-5)};
    config.max_reauthentication = kMax[policy % std::size(kMax)];
    config.lifetime_audit_only = (policy & 0x08) != 0 && (policy & 0x10) != 0;
    config.expiry_enforcement = (policy & 0x20) != 0 ? session::ExpiryEnforcement::kOnUse
                                                     : session::ExpiryEnforcement::kImmediate;
    if ((policy & 0x40) != 0) config.handshake_timeout = seconds(3);
    offers_reauthentication = (policy & 0x80) == 0 || (policy & 0x07) != 0;
    config.linger = seconds(60);
    g_now = now;
    session::ServerLimits limits;
    limits.max_sessions_per_source = 4;
    server.emplace(config, static_key, random, limits);
    server->set_authenticator(fixture().authenticator);
  }

  session::Session* server_session() {
    return client.session ? server->find(*client.session) : nullptr;
  }

  // ---- the transport

  PathId accept() {
    const PathId id = next_id++;
    Connection connection;
    connection.keying.assign(32, std::byte{0x5a});
    for (std::size_t index = 0; index < 8; ++index)
      connection.keying[index] = static_cast<std::byte>(id >> (8 * index));
    server->accept(id, connection.keying, now);
    connections.emplace(id, std::move(connection));
    return id;
  }

  void send(PathId id, std::span<const std::byte> bytes) {
    if (bytes.empty()) return;
    auto it = connections.find(id);
    if (it == connections.end() || it->second.done) return;
    it->second.first_frame_sent = true;
    bytes_in += bytes.size();
    server->receive(id, bytes, now);
  }
  void send_frame(PathId id, const wire::Frame& frame) {
    std::vector<std::byte> bytes;
    wire::encode_frame(frame, bytes);
    send(id, bytes);
  }
  // A control message at the client's control-stream offset (or, sometimes, elsewhere).
  void send_control(const wire::Frame& message, bool at_offset = true) {
    std::vector<std::byte> encoded;
    wire::encode_frame(message, encoded);
    send_control_bytes(encoded, at_offset ? client.control_out : 0);
    if (at_offset) client.control_out += encoded.size();
  }
  void send_control_bytes(std::span<const std::byte> message, std::uint64_t offset) {
    if (!current) return;
    wire::StreamData data;
    data.stream_id = session::kControlStream;
    data.offset = offset;
    data.data = message;
    send_frame(*current, data);
  }

  void close(PathId id) {
    auto it = connections.find(id);
    if (it == connections.end() || it->second.done) return;
    it->second.done = true;
    if (current == id) current.reset();
    server->on_connection_closed(id, now);
  }

  // ---- what the server sends

  void take(PathId id, std::size_t max_bytes = std::numeric_limits<std::size_t>::max()) {
    auto it = connections.find(id);
    if (it == connections.end() || it->second.done) return;
    std::vector<std::byte> out;
    server->take_outgoing(id, out, max_bytes, now);
    it->second.inbound.insert(it->second.inbound.end(), out.begin(), out.end());
    decode(id, it->second);
  }
  void take_all() {
    for (auto& [id, connection] : connections) {
      if (!connection.done) take(id);
    }
  }

  void decode(PathId id, Connection& connection) {
    wire::DecodeLimits limits;
    limits.max_payload = 16u << 20;
    limits.max_list_entries = 1u << 20;
    std::size_t offset = 0;
    while (offset < connection.inbound.size()) {
      auto decoded = wire::decode_frame(std::span(connection.inbound).subspan(offset), limits);
      FUZZ_CHECK(decoded.has_value());  // the server only ever sends well-formed frames
      if (!decoded->has_value()) break;
      const std::size_t consumed = (*decoded)->consumed;
      offset += consumed;
      if (std::get_if<wire::Ping>(&(*decoded)->frame) == nullptr) bytes_out += consumed;
      on_server_frame(id, connection, (*decoded)->frame);
    }
    connection.inbound.erase(connection.inbound.begin(),
                             connection.inbound.begin() + static_cast<std::ptrdiff_t>(offset));
    FUZZ_CHECK(bytes_out <= kOutputPerConnection * connections.size() + kAmplification * bytes_in);
  }

  void on_server_frame(PathId id, Connection& connection, const wire::Frame& frame) {
    if (kTrace) {
      std::fprintf(stderr, "  server -> connection %llu: %s\n", static_cast<unsigned long long>(id),
                   std::string(wire::to_string(wire::frame_type(frame))).c_str());
    }
    if (const auto* accept = std::get_if<wire::ResumeAccept>(&frame)) {
      FUZZ_CHECK(connection.resuming && client.session);
      const session::Secret expected = session::resume_proof(
          connection.resume_secret, session::Role::kServer, *client.session, connection.keying);
      FUZZ_CHECK(accept->proof == expected);
      client.resume_secret =
          session::ratchet_resume_secret(connection.resume_secret, connection.keying);
      connection.resuming = false;
      connection.joined = true;
      last_resume = now;
      return;
    }
    if (const auto* ping = std::get_if<wire::Ping>(&frame)) {
      if (connection.joined && id == current) send_frame(id, wire::Pong{ping->sequence});
      return;
    }
    const auto* data = std::get_if<wire::StreamData>(&frame);
    if (data == nullptr || data->stream_id != session::kControlStream || !connection.joined) return;
    // The control stream, in order (a resume replays what was not acknowledged).
    const std::uint64_t end = data->offset + data->data.size();
    if (data->offset > client.control_in || end <= client.control_in) return;
    const auto fresh =
        data->data.subspan(static_cast<std::size_t>(client.control_in - data->offset));
    client.control.insert(client.control.end(), fresh.begin(), fresh.end());
    client.control_in = end;
    std::size_t used = 0;
    while (used < client.control.size()) {
      auto decoded = wire::decode_frame(std::span(client.control).subspan(used), {});
      FUZZ_CHECK(decoded.has_value());  // the server's control messages are well formed
      if (!decoded->has_value()) break;
      used += (*decoded)->consumed;
      on_control_message((*decoded)->frame);
    }
    client.control.erase(client.control.begin(),
                         client.control.begin() + static_cast<std::ptrdiff_t>(used));
  }

  void on_control_message(const wire::Frame& message) {
    if (kTrace) {
      std::fprintf(stderr, "    control: %s\n",
                   std::string(wire::to_string(wire::frame_type(message))).c_str());
    }
    if (const auto* challenge = std::get_if<wire::AuthChallenge>(&message)) {
      FUZZ_CHECK(challenge->data.size() <= config.max_authentication_message);
      client.answer.reset();
      if (client.exchange != nullptr && client.exchange_genuine) {
        AuthenticationStep step = client.exchange->step(challenge->data);
        if (step.status == Status::kContinue) {
          client.answer = std::move(step.output);
        } else {
          client.exchange_genuine = false;  // the client gives up
        }
      }
      return;
    }
    if (const auto* done = std::get_if<wire::Reauthenticated>(&message)) {
      ++client.client_successes;
      FUZZ_CHECK(client.client_successes <= client.server_successes);
      // Only the real client's exchange with the right credential succeeds, and the server proves
      // it holds the verifier.
      FUZZ_CHECK(client.exchange != nullptr && client.exchange_genuine && client.exchange_right);
      FUZZ_CHECK(client.exchange->finish(done->server_final).status == Status::kSucceeded);
      client.exchange.reset();
      client.exchange_genuine = false;
      client.answer.reset();
      return;
    }
  }

  // ---- the runtime

  void drain() {
    for (int rounds = 0; rounds < 64; ++rounds) {
      std::vector<PathId> finished;
      while (auto event = server->poll_event()) {
        if (const auto* done = std::get_if<session::events::PathDone>(&event->event)) {
          finished.push_back(done->path);
        } else if (const auto* again =
                       std::get_if<session::events::Reauthenticated>(&event->event)) {
          FUZZ_CHECK(client.session && event->session == *client.session);
          FUZZ_CHECK(again->principal == client.principal);
          FUZZ_CHECK(again->mechanism == kMechanism);
          // The real client with the right credential sent every message, the last one its final.
          FUZZ_CHECK(client.exchange != nullptr && client.exchange_genuine &&
                     client.exchange_right && client.final_sent);
          FUZZ_CHECK(client.server_successes == client.client_successes);  // one per exchange
          ++client.server_successes;
          client.final_sent = false;
        }
      }
      if (finished.empty()) return;
      for (const PathId id : finished) {
        take(id);  // flush, then close
        close(id);
      }
    }
  }

  // The server application reads every stream the client wrote on; the invariant: in enforcing
  // mode, nothing after the grace past the lifetime's end.
  void read_application() {
    session::Session* session = server_session();
    if (session == nullptr) return;
    for (const auto& [stream, offset] : client.sent) {
      for (;;) {
        auto read = session->read(stream, scratch, now);
        if (!read || read->bytes == 0) break;
        if (config.lifetime_audit_only) continue;
        const auto end = session->lifetime_end();
        if (end && now > *end) {
          if (kTrace) {
            std::fprintf(stderr,
                         "  delivered %zu bytes %lld ms connected past the lifetime (%s, %s, "
                         "%zu connections)\n",
                         read->bytes,
                         static_cast<long long>(
                             std::chrono::duration_cast<milliseconds>(connected_past_end).count()),
                         config.expiry_enforcement == session::ExpiryEnforcement::kOnUse
                             ? "on use"
                             : "immediate",
                         session->reauthenticating() ? "exchange running" : "no exchange",
                         connections.size());
          }
          const bool known =
              kSkipKnown && ((config.expiry_enforcement == session::ExpiryEnforcement::kOnUse &&
                              session->reauthenticating()) ||
                             (last_resume && now - *last_resume <= 2 * config.handshake_timeout));
          if (!known) FUZZ_CHECK(connected_past_end <= config.handshake_timeout);
        }
      }
    }
  }

  // Moves the clock to `to`, counting connected time past the lifetime's end.
  void account(Time to) {
    session::Session* session = server_session();
    const std::optional<Time> end = session != nullptr ? session->lifetime_end() : std::nullopt;
    if (end != measured_end) {  // a new lifetime (or none): a new measure
      measured_end = end;
      connected_past_end = Duration{0};
    }
    if (end && session != nullptr && !session->suspended() && to > *end) {
      connected_past_end += to - std::max(now, *end);
    }
    now = to;
    g_now = now;
  }

  void after_event() {
    drain();
    read_application();
    account(now);
  }

  // Advances the virtual clock by `step`, firing every deadline on time.
  void advance(Duration step) {
    const Time target = now + step;
    for (int fired = 0; fired < 10000; ++fired) {
      const auto deadline = server->next_deadline();
      if (!deadline || *deadline > target) break;
      account(std::max(now, *deadline));
      server->on_timeout(now);
      after_event();
      // The client answers heartbeats as they come.
      if (current) take(*current);
      after_event();
    }
    account(target);
    const auto deadline = server->next_deadline();
    if (deadline && *deadline <= now) server->on_timeout(now);
    after_event();
  }

  // ---- the client

  // Connects and logs in with the real client (alice, or erin whose password expires).
  bool log_in(Input& input) {
    const std::uint8_t choice = input.u8();
    const std::size_t user = (choice & 1) != 0 ? 1 : 0;
    auto login = fixture().client(user);
    AuthenticationStep start = login->start();
    FUZZ_CHECK(start.status == Status::kContinue);
    const PathId id = accept();
    current = id;
    wire::Hello hello;
    hello.capabilities = static_cast<std::uint64_t>(wire::Capability::kResume);
    if (offers_reauthentication) {
      hello.capabilities |= static_cast<std::uint64_t>(wire::Capability::kReauthentication);
    }
    hello.heartbeat_interval_ms = 1000 + 1000u * (choice >> 4);
    hello.missing_heartbeats_allowed = 3;
    hello.mechanism = kMechanism;
    hello.initial_response = std::move(start.output);
    send_frame(id, hello);
    std::vector<std::byte> out;
    server->take_outgoing(id, out, std::numeric_limits<std::size_t>::max(), now);
    auto challenge = wire::decode_frame(out, {});
    FUZZ_CHECK(challenge && challenge->has_value());
    const auto* first = std::get_if<wire::AuthChallenge>(&(*challenge)->frame);
    FUZZ_CHECK(first != nullptr);
    AuthenticationStep step = login->step(first->data);
    FUZZ_CHECK(step.status == Status::kContinue);
    send_frame(id, wire::AuthResponse{std::move(step.output)});
    out.clear();
    server->take_outgoing(id, out, std::numeric_limits<std::size_t>::max(), now);
    wire::DecodeLimits limits;
    limits.max_payload = 16u << 20;
    limits.max_list_entries = 1u << 20;
    auto decoded = wire::decode_frame(out, limits);
    FUZZ_CHECK(decoded && decoded->has_value());
    const auto* welcome = std::get_if<wire::Welcome>(&(*decoded)->frame);
    FUZZ_CHECK(welcome != nullptr);
    FUZZ_CHECK(login->finish(welcome->server_final).status == Status::kSucceeded);
    FUZZ_CHECK(welcome->principal == (user == 1 ? "erin" : "alice"));
    FUZZ_CHECK(
        welcome->session_lifetime_ms > 0 || (!config.max_reauthentication && user == 0) ||
        (config.max_reauthentication && *config.max_reauthentication <= Duration{0} && user == 0));
    Connection& connection = connections.at(id);
    connection.joined = true;
    connection.inbound.assign(out.begin() + static_cast<std::ptrdiff_t>((*decoded)->consumed),
                              out.end());
    client.session = welcome->session_id;
    client.principal = welcome->principal;
    client.resume_secret =
        session::derive_session_keys(welcome->session_id, connection.keying).resume_secret;
    decode(id, connection);
    after_event();
    return server_session() != nullptr;
  }

  // Starts a re-authentication: the real client (right or wrong credential), or a fuzzed one.
  void reauthenticate(Input& input) {
    const std::uint8_t mode = input.u8();
    wire::Reauthenticate message;
    message.mechanism = kMechanism;
    if (mode < 160) {
      // The real client: the session principal's credential, or another one's.
      const std::size_t own = client.principal == "erin" ? 1 : 0;
      std::size_t which = own;
      if (mode >= 128) which = (own + 1 + mode % 3) % 4;  // another user, a wrong password
      client.exchange = fixture().client(which);
      AuthenticationStep start = client.exchange->start();
      FUZZ_CHECK(start.status == Status::kContinue);
      client.exchange_genuine = true;
      // The right credential (erin's only while her password lasts: the server refuses it after).
      client.exchange_right = which == own;
      client.answer.reset();
      client.final_sent = false;
      message.initial_response = std::move(start.output);
      if ((mode & 0x40) != 0 && mode < 128) {
        // Absent initial response: the real client cannot go on (SCRAM is client-first).
        message.initial_response.reset();
        client.exchange_genuine = false;
      }
    } else {
      client.exchange_genuine = false;
      client.final_sent = false;
      static const std::string kLong(21, 'S');
      static constexpr std::string_view kOthers[] = {"SCRAM-SHA-256-PLUS", "PLAIN", "",
                                                     "scram-sha-256"};
      if (mode >= 200 && mode < 220) {
        message.mechanism = mode % 5 == 4 ? kLong : std::string(kOthers[mode % 4]);
      }
      switch (mode % 4) {
        case 0:
          break;  // absent
        case 1:
          message.initial_response.emplace(config.max_authentication_message + 1, std::byte{'a'});
          break;
        default: {
          const auto bytes = input.bytes(input.u8());
          message.initial_response.emplace(bytes.begin(), bytes.end());
          break;
        }
      }
    }
    send_control(message);
  }

  void respond(Input& input) {
    const std::uint8_t mode = input.u8();
    if (mode < 160 && client.answer && client.exchange_genuine) {
      wire::AuthResponse response{std::move(*client.answer)};
      client.answer.reset();
      client.final_sent = true;  // SCRAM's client-final is its only answer
      send_control(response);
      return;
    }
    client.exchange_genuine = false;
    client.final_sent = false;
    wire::AuthResponse response;
    if (mode >= 240) {
      response.data.assign(config.max_authentication_message + 1, std::byte{'b'});
    } else {
      const auto bytes = input.bytes(input.u8());
      response.data.assign(bytes.begin(), bytes.end());
    }
    send_control(response);
  }

  // Control messages a client never sends, and malformed ones.
  void other_control(Input& input) {
    const std::uint8_t mode = input.u8();
    switch (mode % 8) {
      case 0: {
        const auto bytes = input.bytes(input.u8());
        send_control(wire::AuthChallenge{std::vector<std::byte>(bytes.begin(), bytes.end())});
        break;
      }
      case 1:
        send_control(wire::Reauthenticated{input.u16(), bytes_of("v=abc")});
        break;
      case 2:
        send_control(wire::Close{wire::Reason::kShutdown});
        break;
      case 3: {  // garbage on the control stream
        const auto bytes = input.bytes(input.u8() % 64);
        send_control_bytes(bytes, client.control_out);
        client.control_out += bytes.size();
        break;
      }
      case 4: {  // an oversized message's header, then (maybe) part of it
        std::vector<std::byte> header = {std::byte{0x11}, std::byte{0xc0}, std::byte{0x00},
                                         std::byte{0x40}, std::byte{0x01}};
        send_control_bytes(header, client.control_out);
        client.control_out += header.size();
        break;
      }
      case 5:  // a message at a wrong offset (retransmitted or ahead)
        send_control(wire::Reauthenticate{std::string(kMechanism), std::nullopt}, false);
        break;
      case 6:
        send_control(wire::ResetStream{input.u8() % 8u, input.u16()});
        break;
      default: {  // control-stream data with a FIN, or a 0x11/0x12 frame off the control stream
        std::vector<std::byte> encoded;
        wire::encode_frame(wire::Reauthenticate{std::string(kMechanism), std::nullopt}, encoded);
        if (!current) break;
        if ((mode & 0x80) != 0) {
          send(*current, encoded);  // as a frame of its own
        } else {
          wire::StreamData data;
          data.stream_id = session::kControlStream;
          data.offset = client.control_out;
          data.fin = true;
          data.data = encoded;
          send_frame(*current, data);
          client.control_out += encoded.size();
        }
        break;
      }
    }
  }

  void stream_data(Input& input) {
    if (!current) return;
    const std::uint8_t flags = input.u8();
    session::StreamId stream = client.next_stream;
    if ((flags & 1) == 0 && !client.sent.empty()) {
      auto it = client.sent.begin();
      std::advance(it, input.u8() % client.sent.size());
      stream = it->first;
    }
    const bool opening = !client.sent.contains(stream);
    if (opening) client.next_stream += 2;
    wire::StreamData data;
    data.stream_id = stream;
    data.offset = client.sent[stream];
    data.open = opening;
    data.priority = 1;
    data.data = std::span(scratch).first(1 + input.u8() % 255);
    client.sent[stream] = data.offset + data.data.size();
    send_frame(*current, data);
  }

  void acknowledge() {
    if (!current) return;
    wire::Ack ack;
    ack.entries.push_back(wire::AckEntry{session::kControlStream, client.control_in, 0});
    send_frame(*current, ack);
  }

  // The connection drops (the transport closes it at both ends).
  void drop() {
    if (current) close(*current);
  }

  // A new connection resumes the session with a correct proof (or, rarely, a forged one).
  void resume(Input& input) {
    if (!client.session || connections.size() >= kMaxConnections) return;
    const std::uint8_t mode = input.u8();
    if (current && (mode & 1) == 0) close(*current);  // as a client that lost its connection
    const PathId id = accept();
    Connection& connection = connections.at(id);
    wire::Resume frame;
    frame.session_id = *client.session;
    frame.proof = session::resume_proof(client.resume_secret, session::Role::kClient,
                                        *client.session, connection.keying);
    if (mode >= 248) frame.proof[mode % 32] ^= std::byte{1};
    frame.received.push_back({session::kControlStream, client.control_in});
    connection.resuming = true;
    connection.resume_secret = client.resume_secret;
    current = id;
    send_frame(id, frame);
  }

  void raw(Input& input) {
    if (!current) return;
    const auto bytes = input.bytes(input.u8());
    raw_bytes += bytes.size();
    if (raw_bytes > kMaxRawBytes) return;
    client.tainted = true;
    send(*current, bytes);
  }
};

// The other client: tether's own client Session (its re-authentication schedule, its holding of
// data, its resumes), joined to an endpoint by SessionPair, with the input choosing the
// application's writes, time, connection drops, a network that goes away and comes back, one lost
// direction, and raw bytes a stranger slips into the connection. The same invariant holds; a
// Reauthenticated on the server comes only while the client runs its exchange.
class RealPair final : public tether::testing::SessionPair {
 public:
  RealPair(const session::SessionConfig& client_settings,
           const session::SessionConfig& server_settings)
      : SessionPair(client_settings, server_settings, std::make_unique<fuzz::FixedRandom>(21),
                    std::make_unique<fuzz::FixedRandom>(22),
                    std::make_unique<fuzz::FixedRandom>(23), kStart),
        policy(server_settings) {
    server.set_authenticator(fixture().authenticator);
  }

  session::SessionConfig policy;  // the server's
  std::string principal;
  std::optional<SessionId> session_id;
  bool network_down = false;
  std::size_t pending_paths = 0;
  std::optional<session::StreamId> stream;
  std::optional<Time> measured_end;
  Duration connected_past_end{0};
  std::optional<Time> last_resume;
  std::uint64_t server_successes = 0;
  std::uint64_t client_successes = 0;
  std::array<std::byte, 4096> scratch{};

  session::Session* server_session() { return session_id ? server.find(*session_id) : nullptr; }

  void on_client_event(const session::Event& event) override {
    if (const auto* established = std::get_if<session::events::Established>(&event)) {
      session_id = established->session_id;
    }
    if (std::holds_alternative<session::events::Reauthenticated>(event)) ++client_successes;
  }
  void on_server_event(const session::SessionEvent& event) override {
    if (std::holds_alternative<session::events::Resumed>(event.event)) last_resume = now;
    if (const auto* again = std::get_if<session::events::Reauthenticated>(&event.event)) {
      FUZZ_CHECK(session_id && event.session == *session_id);
      FUZZ_CHECK(again->principal == principal);
      FUZZ_CHECK(again->mechanism == kMechanism);
      // Only the client's own exchange, which it then checks: every server success is one the
      // client has seen succeed (the pair drains the client's events first), or is running.
      ++server_successes;
      if (kTrace) std::fprintf(stderr, "  server: reauthenticated %s\n", again->principal.c_str());
      FUZZ_CHECK(server_successes <= client_successes + (client.reauthenticating() ? 1u : 0u));
    }
  }
  void on_path_wanted() override {
    if (network_down || connections.size() >= kMaxConnections) {
      ++pending_paths;
      return;
    }
    open_connection();
  }

  void read_application() {
    session::Session* session = server_session();
    if (session == nullptr || !stream) return;
    for (;;) {
      auto read = session->read(*stream, scratch, now);
      if (!read || read->bytes == 0) break;
      if (policy.lifetime_audit_only) continue;
      const auto end = session->lifetime_end();
      if (!end || now <= *end) continue;
      if (kTrace) {
        std::fprintf(stderr, "  delivered %zu bytes %lld ms connected past the lifetime\n",
                     read->bytes,
                     static_cast<long long>(
                         std::chrono::duration_cast<milliseconds>(connected_past_end).count()));
      }
      const bool known =
          kSkipKnown && last_resume && now - *last_resume <= 2 * policy.handshake_timeout;
      if (!known) FUZZ_CHECK(connected_past_end <= policy.handshake_timeout);
    }
  }
  void account(Time to) {
    session::Session* session = server_session();
    const std::optional<Time> end = session != nullptr ? session->lifetime_end() : std::nullopt;
    if (end != measured_end) {
      measured_end = end;
      connected_past_end = Duration{0};
    }
    if (end && session != nullptr && !session->suspended() && to > *end) {
      connected_past_end += to - std::max(now, *end);
    }
    now = std::max(now, to);
    g_now = now;
  }
  void settle() {
    pump(4096);
    read_application();
    account(now);
  }
  void advance(Duration step) {
    const Time target = now + step;
    settle();
    for (int fired = 0; fired < 10000; ++fired) {
      const std::optional<Time> next = next_deadline();
      if (!next || *next > target) break;
      account(*next);
      fire_timers();
      settle();
    }
    account(target);
    settle();
  }

  void run(Input& input) {
    settle();
    for (std::size_t step = 0; step < kMaxSteps && !input.empty(); ++step) {
      const std::uint8_t operation = input.u8() % 10;
      if (kTrace) {
        static constexpr const char* kNames[] = {
            "write",     "time (ms)",    "time (s)",   "to the lifetime's end",
            "drop",      "network down", "network up", "lose a direction",
            "raw bytes", "time (ms)"};
        std::fprintf(
            stderr, "real client, step %zu at %lld ms: %s\n", step,
            static_cast<long long>(std::chrono::duration_cast<milliseconds>(now - kStart).count()),
            kNames[operation]);
      }
      switch (operation) {
        case 0: {
          if (!stream) {
            auto opened = client.open_stream(1, now);
            if (opened) stream = *opened;
          }
          if (stream) (void)client.write(*stream, std::span(scratch).first(1 + input.u8()), now);
          break;
        }
        case 1:
        case 9:
          advance(milliseconds(input.u16() % 4000));
          break;
        case 2:
          advance(seconds(1 + input.u8() % 64));
          break;
        case 3: {
          const session::Session* session = server_session();
          std::optional<Time> end = session != nullptr ? session->lifetime_end() : std::nullopt;
          const auto offset = milliseconds(static_cast<std::int8_t>(input.u8()) * 8);
          if (end && *end + offset > now) advance(*end + offset - now);
          break;
        }
        case 4:
          if (const auto path = client.data_path()) close_connection(*path);
          break;
        case 5:
          network_down = true;
          if (const auto path = client.data_path()) close_connection(*path);
          break;
        case 6:
          network_down = false;
          client.on_network_available(now);
          for (; pending_paths > 0 && connections.size() < kMaxConnections; --pending_paths)
            open_connection();
          break;
        case 7:
          if (const auto path = client.data_path()) {
            auto it = connections.find(*path);
            if (it != connections.end()) {
              const std::uint8_t which = input.u8();
              it->second.to_server = (which & 1) != 0 || (which & 2) == 0;
              it->second.to_client = (which & 1) == 0 || (which & 2) == 0;
            }
          }
          break;
        default:
          if (const auto path = client.data_path()) {
            const auto bytes = input.bytes(input.u8() % 64);
            if (!bytes.empty()) server.receive(*path, bytes, now);
          }
          break;
      }
      settle();
    }
  }
};

// Runs the real client against the endpoint: `choice` picked the user; the policy is the world's.
void run_real_client(Input& input, const session::SessionConfig& server_config,
                     std::uint8_t choice) {
  session::SessionConfig client_config;
  client_config.heartbeat_interval = seconds(1);
  client_config.missing_heartbeats_allowed = 3;
  const std::size_t user = (choice & 1) != 0 ? 1 : 0;
  auth::SaslClientConfig sasl;
  sasl.mechanism = auth::Mechanism::kScramSha256;
  sasl.credential = fixture().credentials[user];
  client_config.authenticator = std::make_shared<auth::SaslClientAuthenticator>(sasl);
  client_config.reauthenticate = (choice & 0x10) == 0 || (choice & 0x20) == 0;
  g_now = kStart;
  RealPair pair(client_config, server_config);
  pair.principal = user == 1 ? "erin" : "alice";
  pair.run(input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input input(data, size);
  World world(input);
  // One input in eight (by its login choice) runs tether's own client instead of the harness's.
  if (size > 1 && (data[1] & 0x0e) == 0x0e) {
    (void)input.u8();
    run_real_client(input, world.config, data[1]);
    return 0;
  }
  if (!world.log_in(input)) return 0;
  for (std::size_t step = 0; step < kMaxSteps && !input.empty(); ++step) {
    const std::uint8_t operation = input.u8() % 16;
    if (kTrace) {
      static constexpr const char* kNames[] = {"reauthenticate",
                                               "respond",
                                               "other control",
                                               "stream data",
                                               "time (ms)",
                                               "time (s)",
                                               "to the lifetime's end",
                                               "drop",
                                               "resume",
                                               "raw bytes",
                                               "acknowledge",
                                               "read (partial)",
                                               "respond",
                                               "stream data",
                                               "time (ms)",
                                               "flush"};
      std::fprintf(stderr, "step %zu at %lld ms: %s\n", step,
                   static_cast<long long>(
                       std::chrono::duration_cast<milliseconds>(world.now - kStart).count()),
                   kNames[operation]);
    }
    switch (operation) {
      case 0:
        world.reauthenticate(input);
        break;
      case 1:
      case 12:
        world.respond(input);
        break;
      case 2:
        world.other_control(input);
        break;
      case 3:
      case 13:
        world.stream_data(input);
        break;
      case 4:
      case 14:
        world.advance(milliseconds(input.u16() % 4000));
        break;
      case 5:
        world.advance(seconds(1 + input.u8() % 64));
        break;
      case 6: {  // just before or after the lifetime's end (or the next deadline)
        const session::Session* session = world.server_session();
        std::optional<Time> end = session != nullptr ? session->lifetime_end() : std::nullopt;
        if (!end || *end <= world.now) end = world.server->next_deadline();
        const auto offset = milliseconds(static_cast<std::int8_t>(input.u8()));
        if (end && *end + offset > world.now) world.advance(*end + offset - world.now);
        break;
      }
      case 7:
        world.drop();
        break;
      case 8:
        world.resume(input);
        break;
      case 9:
        world.raw(input);
        break;
      case 10:
        world.acknowledge();
        break;
      case 11:
        if (world.current) world.take(*world.current, 1 + input.u8());
        break;
      default:
        world.take_all();
        break;
    }
    world.after_event();
    if (world.current) world.take(*world.current);
    world.after_event();
  }
  return 0;
}
