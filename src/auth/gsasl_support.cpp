#include "auth/gsasl_support.hpp"

#include <mutex>

#include "auth/user_store.hpp"

namespace tether::auth::detail {
namespace {

int dispatch(Gsasl* /*context*/, Gsasl_session* session, Gsasl_property property) {
  auto* exchange = static_cast<GsaslExchange*>(gsasl_session_hook_get(session));
  if (exchange == nullptr) return GSASL_NO_CALLBACK;
  try {
    return exchange->answer(session, property);
  } catch (...) {
    return GSASL_MALLOC_ERROR;  // never unwind through C
  }
}

class Context {
 public:
  Context() {
    if (gsasl_init(&context_) != GSASL_OK) {
      context_ = nullptr;
      return;
    }
    gsasl_callback_set(context_, dispatch);
  }
  ~Context() {
    if (context_ != nullptr) gsasl_done(context_);
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  [[nodiscard]] Gsasl* get() const { return context_; }

 private:
  Gsasl* context_ = nullptr;
};

}  // namespace

Gsasl* shared_context() {
  static Context context;  // initialized once, thread-safely
  return context.get();
}

GsaslExchange::~GsaslExchange() {
  end();
}

void GsaslExchange::end() {
  if (session_ != nullptr) {
    gsasl_finish(session_);
    session_ = nullptr;
  }
}

bool GsaslExchange::begin(bool server, const char* mechanism) {
  Gsasl* context = shared_context();
  if (context == nullptr) return false;
  const int status = server ? gsasl_server_start(context, mechanism, &session_)
                            : gsasl_client_start(context, mechanism, &session_);
  if (status != GSASL_OK) {
    session_ = nullptr;
    return false;
  }
  gsasl_session_hook_set(session_, this);
  return true;
}

GsaslExchange::StepResult GsaslExchange::run_step(std::span<const std::byte> input) {
  StepResult result;
  if (session_ == nullptr) return result;
  static const char kEmpty[1] = {0};
  char* output = nullptr;
  std::size_t output_size = 0;
  const char* data = input.empty() ? kEmpty : reinterpret_cast<const char*>(input.data());
  result.status = gsasl_step(session_, data, input.size(), &output, &output_size);
  if (output != nullptr) {
    try {
      const auto* bytes = reinterpret_cast<const std::byte*>(output);
      result.output.assign(bytes, bytes + output_size);
    } catch (...) {
      result.status = GSASL_MALLOC_ERROR;
    }
    gsasl_free(output);
  }
  return result;
}

std::string GsaslExchange::property(Gsasl_property property) const {
  if (session_ == nullptr) return {};
  const char* value = gsasl_property_fast(session_, property);
  return value == nullptr ? std::string() : std::string(value);
}

int set_base64_property(Gsasl_session* session, Gsasl_property property,
                        std::span<const std::byte> bytes) {
  const std::string text = encode_base64(bytes);
  return gsasl_property_set(session, property, text.c_str());
}

}  // namespace tether::auth::detail
