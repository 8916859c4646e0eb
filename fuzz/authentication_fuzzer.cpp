// Stateful fuzz target for in-band authentication: a ServerEndpoint whose authenticator holds the
// real mechanisms (SCRAM-SHA-256-PLUS, SCRAM-SHA-256 and PLAIN over an in-memory users table,
// EXTERNAL, OAUTHBEARER with an HS256 key), driven over many pending connections by hostile
// clients. The input chooses: accepts (channel binding, confidentiality, certificate identity and
// source from the input), Hellos (a real, unknown, empty or over-long mechanism; an initial
// response that is absent, empty, fuzzed, or built by a real client with a right or wrong
// credential), AuthResponses (the real client's answer, fuzzed, over-long), other frames
// mid-exchange, raw bytes, time steps (handshake timeout, throttle decay), closes and flushes.
// After every step it checks: the server's output decodes; before its session a connection gets
// only AuthChallenge, Welcome, Refuse or StatelessReset, and challenges are listed by
// take_ready_connections; a Welcome goes only to a connection whose exchange really succeeded (the
// real client with the right credential, whose finish() then verifies the server; or PLAIN /
// EXTERNAL bytes that an independent check finds right) and names the right principal; pending
// connections never exceed the limit; the handshake output stays in proportion to the frames
// received; the stats agree with what the harness saw. AddressSanitizer catches the rest.
#include <gsasl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "auth/base64url.hpp"
#include "auth/jwks.hpp"
#include "auth/jwt.hpp"
#include "auth/mechanism.hpp"
#include "auth/oauthbearer.hpp"
#include "auth/sasl_client.hpp"
#include "auth/sasl_server.hpp"
#include "auth/user_store.hpp"
#include "crypto/primitives.hpp"
#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "session/server_endpoint.hpp"
#include "wire/codec.hpp"

namespace {

using namespace tether;
using session::AuthenticationStep;
using session::ConnectionSecurity;
using session::PathId;
using session::Time;
using Status = AuthenticationStep::Status;

// TETHER_FUZZ_TRACE=1 prints each step and each frame the server sends.
const bool kTrace = std::getenv("TETHER_FUZZ_TRACE") != nullptr;

constexpr std::size_t kMaxPending = 8;
constexpr std::size_t kMaxConnections = 48;  // accepted over one input
constexpr std::size_t kMaxSteps = 256;
constexpr std::size_t kMaxPlainAttempts = 6;  // PLAIN runs PBKDF2 per attempt: keep inputs fast
// Handshake output per frame (or raw chunk) received: a challenge, a Welcome or a Refuse.
constexpr std::uint64_t kOutputPerFrame = 4096;
constexpr std::string_view kAudience = "tether";
constexpr std::string_view kScope = "tunnel";
constexpr std::string_view kCertificateIdentity = "dave.example";

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto* data = reinterpret_cast<const std::byte*>(text.data());
  return {data, data + text.size()};
}
std::string text_of(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Offers every mechanism, as auth/credentials.cpp composes them (OAUTHBEARER only over TLS).
class Authenticator final : public session::ServerAuthenticator {
 public:
  Authenticator(std::shared_ptr<auth::SaslServerAuthenticator> sasl,
                std::shared_ptr<const auth::TokenVerifier> tokens)
      : sasl_(std::move(sasl)), tokens_(std::move(tokens)) {}
  [[nodiscard]] std::vector<std::string> mechanisms() const override {
    auto names = sasl_->mechanisms();
    names.insert(names.begin() + 3, "OAUTHBEARER");
    return names;
  }
  [[nodiscard]] std::unique_ptr<session::ServerAuthentication> start(
      std::string_view mechanism, const ConnectionSecurity& security) override {
    if (mechanism == "OAUTHBEARER") {
      if (!security.confidential) return nullptr;
      return std::make_unique<auth::OAuthBearerServer>(tokens_);
    }
    return sasl_->start(mechanism, security);
  }

 private:
  std::shared_ptr<auth::SaslServerAuthenticator> sasl_;
  std::shared_ptr<const auth::TokenVerifier> tokens_;
};

// Made once: the users (alice enabled, bob disabled), the key, the authenticator, the clients'
// credentials (shared, so that each runs PBKDF2 once and then reuses its salted password).
struct Fixture {
  std::vector<std::byte> salt = std::vector<std::byte>(16, std::byte{7});
  auth::ScramVerifier alice;
  std::vector<std::byte> hmac_key = std::vector<std::byte>(32, std::byte{0x33});
  std::chrono::system_clock::time_point wall =
      std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 20454);  // 2026
  std::shared_ptr<Authenticator> authenticator;
  // alice/pencil (right), alice/wrong, bob/hunter2 (disabled), mallory/x (unknown).
  std::array<std::shared_ptr<auth::ScramCredential>, 4> credentials = {
      std::make_shared<auth::ScramCredential>("alice", "pencil"),
      std::make_shared<auth::ScramCredential>("alice", "wrong"),
      std::make_shared<auth::ScramCredential>("bob", "hunter2"),
      std::make_shared<auth::ScramCredential>("mallory", "x")};
  std::map<std::string, bool> plain_passwords;  // password -> whether it is alice's (cache)

  Fixture() {
    auth::UserStore store;
    alice = *auth::make_verifier("pencil", salt, auth::kMinimumScramIterations);
    store.set("alice", alice);
    store.set("bob", *auth::make_verifier("hunter2", salt, auth::kMinimumScramIterations));
    store.set_disabled("bob", true);
    auth::SaslServerConfig config;
    config.users = std::make_shared<auth::UserDirectory>(std::move(store));
    config.mechanisms.push_back(auth::Mechanism::kExternal);
    config.fake_verifier_secret.assign(32, std::byte{42});
    const std::vector<std::byte> fake_secret = config.fake_verifier_secret;
    auto sasl = std::make_shared<auth::SaslServerAuthenticator>(std::move(config));
    // The wrong credentials never verify a server, so their clients would run PBKDF2 in every
    // exchange: give them their salted passwords now (for alice's salt, and the fake verifiers'
    // salts of the disabled and the unknown user), as a client that had them would.
    remember(*credentials[1], salt);
    remember(*credentials[2], auth::fake_verifier(fake_secret, "bob", alice.iterations).salt);
    remember(*credentials[3], auth::fake_verifier(fake_secret, "mallory", alice.iterations).salt);

    const std::string document = R"({"keys":[{"kty":"oct","alg":"HS256","kid":"k1","k":")" +
                                 auth::base64url_encode(hmac_key) + R"("}]})";
    auto set = auth::JsonWebKeySet::parse(document);
    FUZZ_CHECK(set.has_value());
    auth::TokenPolicy policy;
    policy.audience = kAudience;
    policy.required_scope = kScope;
    const auto now = wall;
    auto verifier = auth::TokenVerifier::create(
        auth::TokenVerifier::fixed_keys(
            std::make_shared<const auth::JsonWebKeySet>(std::move(*set))),
        policy, [now] { return now; });
    FUZZ_CHECK(verifier.has_value());
    authenticator = std::make_shared<Authenticator>(
        std::move(sasl), std::make_shared<const auth::TokenVerifier>(std::move(*verifier)));
  }

  void remember(auth::ScramCredential& credential, const std::vector<std::byte>& user_salt) const {
    std::array<unsigned char, 32> salted{};
    const std::string& password = credential.password();
    FUZZ_CHECK(PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                                 reinterpret_cast<const unsigned char*>(user_salt.data()),
                                 static_cast<int>(user_salt.size()),
                                 static_cast<int>(alice.iterations), EVP_sha256(),
                                 static_cast<int>(salted.size()), salted.data()) == 1);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    for (const unsigned char byte : salted) {
      hex += kHex[byte >> 4];
      hex += kHex[byte & 15];
    }
    credential.remember(auth::encode_base64(user_salt), std::to_string(alice.iterations), hex);
  }

  // A token signed with the key (or not): kind 0 valid, 1 expired, 2 another audience, 3 a bad
  // signature, 4 no scope, 5 not yet valid, else not a JWS.
  [[nodiscard]] std::string token(unsigned kind) const {
    const auto seconds = [&](std::chrono::hours offset) {
      return std::to_string(
          std::chrono::duration_cast<std::chrono::seconds>((wall + offset).time_since_epoch())
              .count());
    };
    if (kind > 5) return "abc.def.ghi";
    std::string claims = R"({"sub":"carol","aud":")" +
                         std::string(kind == 2 ? "elsewhere" : kAudience) + R"(","exp":)" +
                         seconds(kind == 1 ? std::chrono::hours(-2) : std::chrono::hours(1));
    if (kind != 4) claims += R"(,"scope":"read )" + std::string(kScope) + R"(")";
    if (kind == 5) claims += R"(,"nbf":)" + seconds(std::chrono::hours(1));
    claims += "}";
    const std::string input =
        auth::base64url_encode(std::string_view(R"({"alg":"HS256","kid":"k1"})")) + "." +
        auth::base64url_encode(std::string_view(claims));
    auto mac = crypto::hmac_sha256(hmac_key, {crypto::label(input)});
    if (kind == 3) mac[0] ^= std::byte{1};
    return input + "." + auth::base64url_encode(std::span<const std::byte>(mac));
  }

  // Whether `password` is alice's, as the server's check (PBKDF2 with her salt) would find.
  bool alice_password(const std::string& password) {
    if (auto it = plain_passwords.find(password); it != plain_passwords.end()) return it->second;
    const auto derived = auth::make_verifier(password, salt, alice.iterations);
    const bool match = derived && derived->stored_key == alice.stored_key;
    if (plain_passwords.size() < 4096) plain_passwords.emplace(password, match);
    return match;
  }
};

Fixture& fixture() {
  static Fixture instance;
  return instance;
}

// The principal a PLAIN message (RFC 4616: authzid NUL authcid NUL passwd) rightly authenticates,
// checked independently of the server: the authcid SASLprep'd (as GNU SASL's server does) is alice,
// the password derives her StoredKey, the authzid is empty or the same.
std::optional<std::string> plain_principal(std::span<const std::byte> message) {
  const std::string text = text_of(message);
  const auto first = text.find('\0');
  if (first == std::string::npos) return std::nullopt;
  const auto second = text.find('\0', first + 1);
  if (second == std::string::npos || text.find('\0', second + 1) != std::string::npos)
    return std::nullopt;
  const std::string authzid = text.substr(0, first);
  const std::string authcid = text.substr(first + 1, second - first - 1);
  const std::string password = text.substr(second + 1);
  char* prepared = nullptr;
  if (gsasl_saslprep(authcid.c_str(), GSASL_ALLOW_UNASSIGNED, &prepared, nullptr) != GSASL_OK)
    return std::nullopt;
  const std::string name = prepared;
  gsasl_free(prepared);
  if (name != "alice" || authcid.size() != std::strlen(authcid.c_str())) return std::nullopt;
  if (!authzid.empty() && authzid != name) return std::nullopt;
  if (!fixture().alice_password(password)) return std::nullopt;
  return name;
}

class Input : public fuzz::FuzzInput {
 public:
  using FuzzInput::FuzzInput;
};

struct Connection {
  ConnectionSecurity security;
  bool hello_sent = false;
  std::string mechanism;                                  // of the first Hello the harness built
  std::unique_ptr<session::ClientAuthentication> client;  // the real client, if one runs
  bool genuine = false;                 // every credential-carrying byte so far came from `client`
  std::optional<std::string> expected;  // the principal the real client's exchange earns
  std::optional<std::vector<std::byte>> answer;  // the real client's answer to the last challenge
  bool deferred_start = false;  // Hello without the initial response: the client sends it later
  std::vector<std::byte> start_message;
  std::vector<std::byte> stream;   // every byte fed to the server before the session
  std::vector<std::byte> inbound;  // server bytes not decoded yet
  std::uint64_t sends = 0;         // frames (or raw chunks) fed to the server
  std::uint64_t handshake_out = 0;
  bool welcomed = false;
  bool refused = false;
  bool done = false;
};

struct World {
  fuzz::FixedRandom random{11};
  session::Secret static_key{};
  Time now = Time{} + std::chrono::hours(1);
  session::ServerEndpoint server{session::SessionConfig{}, static_key, random, make_limits()};
  std::map<PathId, Connection> connections;
  PathId next_id = 1;
  std::size_t plain_attempts = 0;
  std::uint64_t welcomes = 0;
  std::uint64_t genuine_welcomes_expected = 0;

  static session::ServerLimits make_limits() {
    session::ServerLimits limits;
    limits.max_pending_connections = kMaxPending;
    limits.max_sessions_per_source = 4;
    limits.source_throttle = {3, std::chrono::seconds(60)};
    limits.user_throttle = {4, std::chrono::seconds(60)};
    return limits;
  }

  World() { server.set_authenticator(fixture().authenticator); }

  Connection* pick(Input& input) {
    std::vector<std::pair<const PathId, Connection>*> live;
    for (auto& entry : connections) {
      if (!entry.second.done) live.push_back(&entry);
    }
    if (live.empty()) return nullptr;
    return &live[input.u8() % live.size()]->second;
  }
  PathId id_of(const Connection& connection) const {
    for (const auto& [id, entry] : connections) {
      if (&entry == &connection) return id;
    }
    return 0;
  }

  void accept(Input& input) {
    if (connections.size() >= kMaxConnections) return;
    const PathId id = next_id++;
    Connection connection;
    const std::uint8_t flags = input.u8();
    connection.security.keying_material.assign(32, std::byte{0x5a});
    for (std::size_t index = 0; index < 8; ++index)
      connection.security.keying_material[index] = static_cast<std::byte>(id >> (8 * index));
    if ((flags & 1) != 0) {
      connection.security.channel_binding.assign(32, std::byte{0xcb});
      connection.security.channel_binding[0] = static_cast<std::byte>(id);
    }
    connection.security.confidential = (flags & 2) != 0;
    if ((flags & 4) != 0) connection.security.peer_certificate_identity = kCertificateIdentity;
    static constexpr std::string_view kSources[] = {"192.0.2.1", "192.0.2.2", ""};
    const std::string_view source = kSources[(flags >> 3) % 3];
    server.accept(id, connection.security, now, source);
    connections.emplace(id, std::move(connection));
  }

  void send(PathId id, Connection& connection, std::span<const std::byte> bytes) {
    if (bytes.empty()) return;
    ++connection.sends;
    // What the handshake reads (bytes after it belong to the session, or are dropped).
    if (server.is_pending(id)) {
      connection.stream.insert(connection.stream.end(), bytes.begin(), bytes.end());
    }
    server.receive(id, bytes, now);
  }
  void send_frame(PathId id, Connection& connection, const wire::Frame& frame) {
    std::vector<std::byte> bytes;
    wire::encode_frame(frame, bytes);
    send(id, connection, bytes);
  }

  // ---- the client's side of the exchange

  void hello(Input& input, PathId id, Connection& connection) {
    static const std::string kLong(300, 'A');
    static const std::string kVeryLong(20000, 'S');
    static const std::string_view kMechanisms[] = {"SCRAM-SHA-256-PLUS",
                                                   "SCRAM-SHA-256",
                                                   "PLAIN",
                                                   "OAUTHBEARER",
                                                   "EXTERNAL",
                                                   "SCRAM-SHA-256-PLUS",
                                                   "SCRAM-SHA-256",
                                                   "SCRAM-SHA-1",
                                                   "",
                                                   "plain",
                                                   kLong,
                                                   kVeryLong,
                                                   "PLAIN\0X"};
    const std::uint8_t choice = input.u8();
    std::string mechanism(kMechanisms[choice % std::size(kMechanisms)]);
    if (choice % std::size(kMechanisms) == 12) mechanism.assign("PLAIN\0X", 7);
    if (mechanism == "PLAIN" && plain_attempts >= kMaxPlainAttempts) mechanism = "SCRAM-SHA-256";
    if (mechanism == "PLAIN") ++plain_attempts;

    wire::Hello hello;
    hello.version = input.u8() < 250 ? wire::kProtocolVersion : input.u8();
    hello.capabilities = input.u8();
    hello.heartbeat_interval_ms = input.u16();
    hello.missing_heartbeats_allowed = input.u8() % 8;
    hello.mechanism = mechanism;

    const std::uint8_t mode = input.u8();
    const bool first = !connection.hello_sent;
    std::unique_ptr<session::ClientAuthentication> client;
    std::optional<std::string> expected;
    if (mode % 4 == 0) client = make_client(input, mechanism, connection.security, expected);
    if (client != nullptr) {
      AuthenticationStep start = client->start();
      if (start.status == Status::kContinue) {
        if ((mode & 0x10) != 0) {
          connection.deferred_start = true;  // absent initial response; the client answers later
          connection.start_message = std::move(start.output);
        } else {
          hello.initial_response = std::move(start.output);
        }
      } else {
        client.reset();
      }
    }
    if (client == nullptr) {
      switch (mode % 4) {
        case 2:
          break;  // absent
        case 3:
          hello.initial_response.emplace();  // empty
          break;
        default: {
          const auto bytes = input.bytes(input.u8() < 240 ? input.u8() : input.u16());
          hello.initial_response.emplace(bytes.begin(), bytes.end());
          break;
        }
      }
      if (mode >= 0xf0) hello.initial_response.emplace(16385, std::byte{'a'});  // over the limit
    }
    if (first) {
      connection.hello_sent = true;
      connection.mechanism = mechanism;
      connection.genuine = client != nullptr;
      connection.expected = client != nullptr ? expected : std::nullopt;
      connection.client = std::move(client);
      if (connection.client == nullptr) connection.deferred_start = false;
    } else {
      // A second Hello: whatever it carries is not the client's (once the handshake is over it
      // goes to the session, and changes nothing).
      if (server.is_pending(id)) connection.genuine = false;
    }
    if (kTrace) {
      std::fprintf(stderr, "  hello %s, %s initial response, real client %d, expects %s\n",
                   mechanism.substr(0, 32).c_str(), hello.initial_response ? "an" : "no",
                   connection.client != nullptr, connection.expected.value_or("-").c_str());
    }
    send_frame(id, connection, hello);
  }

  // A real client for `mechanism` with a credential chosen by the input (nullptr when none fits);
  // `expected` is set to the principal its exchange rightly earns.
  std::unique_ptr<session::ClientAuthentication> make_client(Input& input,
                                                             const std::string& mechanism,
                                                             const ConnectionSecurity& security,
                                                             std::optional<std::string>& expected) {
    Fixture& fixed = fixture();
    const std::uint8_t choice = input.u8();
    ConnectionSecurity client_security = security;
    // Sometimes the client sees another channel binding (a man in the middle): -PLUS must fail.
    const bool bound_elsewhere = (choice & 0x80) != 0 && !security.channel_binding.empty();
    if (bound_elsewhere) client_security.channel_binding[1] ^= std::byte{1};
    const auto named = auth::mechanism_named(mechanism);
    if (!named) return nullptr;
    if (*named == auth::Mechanism::kOAuthBearer) {
      const unsigned kind = choice % 8;
      const std::string authzid = (choice & 0x40) == 0 ? "" : (choice & 0x20) ? "carol" : "eve";
      const std::string token = fixed.token(kind);
      // Over TLS only: elsewhere the mechanism is not offered.
      if (kind == 0 && (authzid.empty() || authzid == "carol") && security.confidential)
        expected = "carol";
      return std::make_unique<auth::OAuthBearerClient>(
          [token]() -> Expected<std::string, std::string> { return token; }, authzid);
    }
    auth::SaslClientConfig config;
    config.credential = fixed.credentials[choice % 4];
    if ((choice & 0x40) != 0) config.authorization_identity = (choice & 0x20) ? "alice" : "bob";
    if (*named == auth::Mechanism::kExternal) {
      config.credential.reset();
      if ((choice & 0x40) != 0)
        config.authorization_identity = (choice & 0x20) ? kCertificateIdentity : "eve";
      if (!security.peer_certificate_identity.empty() &&
          (config.authorization_identity.empty() ||
           config.authorization_identity == security.peer_certificate_identity))
        expected = security.peer_certificate_identity;
    } else if (choice % 4 == 0 &&
               (config.authorization_identity.empty() ||
                config.authorization_identity == "alice") &&
               !(bound_elsewhere && *named == auth::Mechanism::kScramSha256Plus)) {
      expected = "alice";
    }
    return auth::start_sasl_client(*named, config, client_security);
  }

  void respond(Input& input, PathId id, Connection& connection) {
    const std::uint8_t mode = input.u8();
    if (mode < 160 && connection.answer && connection.genuine) {
      wire::AuthResponse response{std::move(*connection.answer)};
      connection.answer.reset();
      send_frame(id, connection, response);
      return;
    }
    wire::AuthResponse response;
    if (mode >= 250) {
      response.data.assign(16385, std::byte{'b'});  // over the limit
    } else if (mode >= 240) {
      response.data = bytes_of("\x01");  // OAUTHBEARER's acknowledgement
    } else {
      const auto bytes = input.bytes(input.u8() < 240 ? input.u8() : input.u16());
      response.data.assign(bytes.begin(), bytes.end());
    }
    if (server.is_pending(id)) connection.genuine = false;
    connection.answer.reset();
    send_frame(id, connection, response);
  }

  void other_frame(Input& input, PathId id, Connection& connection) {
    std::vector<std::byte> bytes;
    switch (input.u8() % 8) {
      case 0:
        wire::encode_frame(wire::Ping{input.u16()}, bytes);
        break;
      case 1: {
        wire::Resume resume;
        resume.session_id[0] = std::byte{input.u8()};
        wire::encode_frame(resume, bytes);
        break;
      }
      case 2: {
        wire::FastClose close;
        close.reason = wire::Reason::kShutdown;
        wire::encode_frame(close, bytes);
        break;
      }
      case 3:
        wire::encode_frame(wire::AuthChallenge{bytes_of("r=x")}, bytes);
        break;
      case 4:
        wire::encode_frame(wire::Refuse{wire::Reason::kAuthFailed, false, "no"}, bytes);
        break;
      case 5:
        wire::encode_frame(wire::Ack{}, bytes);
        break;
      case 6: {  // an ignorable frame of an unknown type
        bytes = {static_cast<std::byte>(0x80 | input.u8()), std::byte{1}, std::byte{0}};
        break;
      }
      default:
        wire::encode_frame(wire::Abort{wire::Reason::kShutdown, false}, bytes);
        break;
    }
    send(id, connection, bytes);
  }

  // ---- what the server sends

  void take(PathId id, Connection& connection, std::size_t max_bytes) {
    std::vector<std::byte> out;
    server.take_outgoing(id, out, max_bytes, now);
    connection.inbound.insert(connection.inbound.end(), out.begin(), out.end());
    decode(connection);
  }

  void decode(Connection& connection) {
    wire::DecodeLimits limits;
    limits.max_payload = 16u << 20;
    limits.max_list_entries = 1u << 20;
    std::size_t offset = 0;
    while (offset < connection.inbound.size()) {
      auto decoded = wire::decode_frame(std::span(connection.inbound).subspan(offset), limits);
      FUZZ_CHECK(decoded.has_value());  // the server only ever sends well-formed frames
      if (!decoded->has_value()) break;
      const std::size_t consumed = (*decoded)->consumed;
      if (!connection.welcomed) connection.handshake_out += consumed;
      on_server_frame(connection, (*decoded)->frame);
      offset += consumed;
    }
    connection.inbound.erase(connection.inbound.begin(),
                             connection.inbound.begin() + static_cast<std::ptrdiff_t>(offset));
    FUZZ_CHECK(connection.handshake_out <= kOutputPerFrame * (connection.sends + 1));
  }

  void on_server_frame(Connection& connection, const wire::Frame& frame) {
    if (kTrace) {
      std::fprintf(stderr, "  server -> connection %llu: %s\n",
                   static_cast<unsigned long long>(id_of(connection)),
                   std::string(wire::to_string(wire::frame_type(frame))).c_str());
    }
    if (connection.welcomed) return;  // the session's frames: the session fuzzer's business
    // Before its session a connection gets nothing after a refusal.
    FUZZ_CHECK(!connection.refused);
    if (const auto* challenge = std::get_if<wire::AuthChallenge>(&frame)) {
      FUZZ_CHECK(connection.hello_sent);
      FUZZ_CHECK(challenge->data.size() <= session::SessionConfig{}.max_authentication_message);
      connection.answer.reset();
      if (connection.client != nullptr && connection.genuine) {
        if (connection.deferred_start) {
          connection.deferred_start = false;
          connection.answer = std::move(connection.start_message);
          return;
        }
        AuthenticationStep step = connection.client->step(challenge->data);
        if (step.status == Status::kContinue) {
          connection.answer = std::move(step.output);
        } else {
          connection.genuine = false;  // the client gives up
        }
      }
      return;
    }
    if (const auto* welcome = std::get_if<wire::Welcome>(&frame)) {
      check_welcome(connection, *welcome);
      return;
    }
    if (const auto* refuse = std::get_if<wire::Refuse>(&frame)) {
      // The real client with the right credential is never told its credential is wrong (it may
      // be throttled, timed out or out of room: transient refusals, or other reasons).
      if (connection.genuine && connection.expected) {
        FUZZ_CHECK(refuse->reason != wire::Reason::kAuthFailed || refuse->transient);
      }
      connection.refused = true;
      return;
    }
    if (std::get_if<wire::StatelessReset>(&frame) != nullptr) {
      connection.refused = true;
      return;
    }
    FUZZ_CHECK(false);  // nothing else comes before the session
  }

  void check_welcome(Connection& connection, const wire::Welcome& welcome) {
    FUZZ_CHECK(connection.hello_sent);
    FUZZ_CHECK(welcome.authenticated);
    FUZZ_CHECK(!welcome.principal.empty());
    connection.welcomed = true;
    ++welcomes;
    if (connection.genuine && connection.expected) {
      FUZZ_CHECK(welcome.principal == *connection.expected);
      // Mutual authentication: the server's final message convinces the real client.
      FUZZ_CHECK(connection.client->finish(welcome.server_final).status == Status::kSucceeded);
      return;
    }
    // Not the real client's exchange (or one that should have failed): only PLAIN or EXTERNAL
    // bytes that carry a right credential may succeed. Read back what the server was sent.
    FUZZ_CHECK(rightly_authenticated(connection, welcome.principal));
  }

  // Whether the bytes fed to this connection hold a Hello for PLAIN or EXTERNAL and a message that
  // rightly authenticates `principal`.
  bool rightly_authenticated(const Connection& connection, const std::string& principal) const {
    wire::DecodeLimits limits;
    std::size_t offset = 0;
    std::optional<std::string> mechanism;
    std::vector<std::vector<std::byte>> messages;
    while (offset < connection.stream.size()) {
      auto decoded = wire::decode_frame(std::span(connection.stream).subspan(offset), limits);
      if (!decoded || !decoded->has_value()) break;
      offset += (*decoded)->consumed;
      if (const auto* hello = std::get_if<wire::Hello>(&(*decoded)->frame)) {
        if (!mechanism) mechanism = hello->mechanism;
        if (hello->initial_response) messages.push_back(*hello->initial_response);
      } else if (const auto* response = std::get_if<wire::AuthResponse>(&(*decoded)->frame)) {
        messages.push_back(response->data);
      }
    }
    if (!mechanism) return false;
    for (const auto& message : messages) {
      if (*mechanism == "PLAIN" && connection.security.confidential &&
          plain_principal(message) == principal)
        return true;
      if (*mechanism == "EXTERNAL" && !connection.security.peer_certificate_identity.empty() &&
          principal == connection.security.peer_certificate_identity &&
          (message.empty() || text_of(message) == principal))
        return true;
    }
    return false;
  }

  // ---- the runtime

  void drain() {
    for (int rounds = 0; rounds < 64; ++rounds) {
      std::vector<PathId> finished;
      while (auto event = server.poll_event()) {
        if (const auto* done = std::get_if<session::events::PathDone>(&event->event)) {
          finished.push_back(done->path);
        }
      }
      if (finished.empty()) return;
      for (const PathId id : finished) {
        auto it = connections.find(id);
        FUZZ_CHECK(it != connections.end());
        if (it->second.done) continue;
        take(id, it->second, std::numeric_limits<std::size_t>::max());  // flush, then close
        it->second.done = true;
        server.on_connection_closed(id, now);
      }
    }
  }

  // Flushes the connections the endpoint lists as ready; a connection still in its handshake that
  // is not listed has nothing to send.
  void flush_ready() {
    std::vector<PathId> ready;
    server.take_ready_connections(ready);
    const std::set<PathId> listed(ready.begin(), ready.end());
    for (const PathId id : ready) {
      auto it = connections.find(id);
      if (it == connections.end() || it->second.done) continue;
      take(id, it->second, std::numeric_limits<std::size_t>::max());
    }
    for (auto& [id, connection] : connections) {
      if (connection.done || listed.contains(id) || !server.is_pending(id)) continue;
      std::vector<std::byte> out;
      server.take_outgoing(id, out, std::numeric_limits<std::size_t>::max(), now);
      FUZZ_CHECK(out.empty());
    }
  }

  void check() {
    std::size_t pending = 0;
    for (const auto& [id, connection] : connections) {
      if (!connection.done && server.is_pending(id)) ++pending;
    }
    FUZZ_CHECK(pending <= kMaxPending);
    const auto& stats = server.stats();
    FUZZ_CHECK(stats.connections_accepted == connections.size());
    FUZZ_CHECK(stats.sessions_created <= stats.authentications_succeeded);
    FUZZ_CHECK(welcomes <= stats.sessions_created);
    FUZZ_CHECK(server.session_count() <= stats.sessions_created);
    FUZZ_CHECK(stats.pending_connections_refused <= stats.connections_accepted);
    FUZZ_CHECK(stats.authentications_succeeded + stats.authentication_failures +
                   stats.authentications_throttled <=
               stats.connections_accepted);
    for (const session::SessionId& id : server.session_ids()) {
      const session::Session* session = server.find(id);
      FUZZ_CHECK(session != nullptr);
      FUZZ_CHECK(!session->peer().principal.empty());
      FUZZ_CHECK(!session->peer().mechanism.empty());
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input input(data, size);
  World world;
  for (std::size_t step = 0; step < kMaxSteps && !input.empty(); ++step) {
    const std::uint8_t operation = input.u8() % 12;
    if (kTrace) {
      static constexpr const char* kNames[] = {"accept",      "hello",     "respond",  "respond",
                                               "other frame", "raw bytes", "time",     "close",
                                               "flush",       "read one",  "read all", "accept"};
      std::fprintf(stderr, "step %zu: %s\n", step, kNames[operation]);
    }
    switch (operation) {
      case 0:
      case 11:
        world.accept(input);
        break;
      case 1:
        if (Connection* connection = world.pick(input))
          world.hello(input, world.id_of(*connection), *connection);
        break;
      case 2:
      case 3:
        if (Connection* connection = world.pick(input))
          world.respond(input, world.id_of(*connection), *connection);
        break;
      case 4:
        if (Connection* connection = world.pick(input))
          world.other_frame(input, world.id_of(*connection), *connection);
        break;
      case 5:
        if (Connection* connection = world.pick(input)) {
          if (world.server.is_pending(world.id_of(*connection))) connection->genuine = false;
          world.send(world.id_of(*connection), *connection, input.bytes(input.u8()));
        }
        break;
      case 6: {  // time: milliseconds, past the handshake timeout, or past the throttles' window
        const std::uint8_t scale = input.u8();
        if (scale < 200) {
          world.now += std::chrono::milliseconds(input.u16());
        } else if (scale < 240) {
          world.now += std::chrono::seconds(11);
        } else {
          world.now += std::chrono::seconds(61);
        }
        const auto deadline = world.server.next_deadline();
        if (deadline && *deadline <= world.now) world.server.on_timeout(world.now);
        break;
      }
      case 7:
        if (Connection* connection = world.pick(input)) {
          connection->done = true;
          world.server.on_connection_closed(world.id_of(*connection), world.now);
        }
        break;
      case 8:
        world.flush_ready();
        break;
      case 9:
        if (Connection* connection = world.pick(input)) {
          const std::size_t max_bytes = input.u8() < 64 ? std::size_t{1} + input.u8()
                                                        : std::numeric_limits<std::size_t>::max();
          world.take(world.id_of(*connection), *connection, max_bytes);
        }
        break;
      default:
        for (auto& [id, connection] : world.connections) {
          if (!connection.done) world.take(id, connection, std::numeric_limits<std::size_t>::max());
        }
        break;
    }
    world.drain();
    world.check();
  }
  return 0;
}
