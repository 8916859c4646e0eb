// GsaslExchange is the base of tether's GNU SASL exchanges: one process-wide Gsasl context (GNU
// SASL 2.2 is thread-safe with one context and one session per exchange), one session per exchange
// whose hook points back at its exchange, and a callback that asks that exchange for each property.
#pragma once

#include <gsasl.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace tether::auth::detail {

// Input larger than this is refused before GNU SASL sees it (SCRAM messages are a few hundred
// bytes; PLAIN and EXTERNAL carry a name, an authzid and a password).
inline constexpr std::size_t kMaximumSaslMessage = 4096;

// The shared context, or nullptr when gsasl_init failed (then no exchange can start).
[[nodiscard]] Gsasl* shared_context();

class GsaslExchange {
 public:
  GsaslExchange() = default;
  GsaslExchange(const GsaslExchange&) = delete;
  GsaslExchange& operator=(const GsaslExchange&) = delete;
  virtual ~GsaslExchange();

  // Answers one property GNU SASL asks for (gsasl_property_set on `session`), as a gsasl callback
  // does: GSASL_OK, GSASL_NO_CALLBACK, or an error. Must not throw.
  virtual int answer(Gsasl_session* session, Gsasl_property property) = 0;

 protected:
  // Starts the session for `mechanism` (server or client side); false when gsasl refuses.
  bool begin(bool server, const char* mechanism);
  struct StepResult {
    int status = GSASL_MALLOC_ERROR;
    std::vector<std::byte> output;
  };
  // gsasl_step with `input` (never null, even when empty); its output copied and freed.
  StepResult run_step(std::span<const std::byte> input);
  // A property's current value, or an empty string.
  [[nodiscard]] std::string property(Gsasl_property property) const;
  [[nodiscard]] Gsasl_session* session() const { return session_; }
  // Ends the session now (idempotent); the destructor does it too.
  void end();

 private:
  Gsasl_session* session_ = nullptr;
};

// Sets a property to the base64 of `bytes`.
int set_base64_property(Gsasl_session* session, Gsasl_property property,
                        std::span<const std::byte> bytes);

}  // namespace tether::auth::detail
