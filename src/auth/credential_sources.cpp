// The client credential sources (credential_sources.hpp).
#include "auth/credential_sources.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>

#include "auth/credentials.hpp"
#include "auth/token_refresher.hpp"
#include "wire/text_escape.hpp"

namespace tether::auth {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* certificate) const { X509_free(certificate); }
};

// An ASN.1 time as a wall-clock instant; nullopt when unreadable.
std::optional<WallTime> wall_time(const ASN1_TIME* time) {
  std::tm calendar{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &calendar) != 1) {
    ERR_clear_error();
    return std::nullopt;
  }
  const std::time_t seconds = ::timegm(&calendar);
  if (seconds == static_cast<std::time_t>(-1)) return std::nullopt;
  return WallClock::from_time_t(seconds);
}

std::string utc_text(WallTime time) {
  const std::time_t seconds = WallClock::to_time_t(time);
  std::tm calendar{};
  ::gmtime_r(&seconds, &calendar);
  char text[32];
  if (std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &calendar) == 0) return "?";
  return text;
}

std::string duration_text(WallClock::duration duration) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(duration).count();
  if (seconds < 120) return std::to_string(seconds) + " s";
  if (seconds < 2 * 3600) return std::to_string(seconds / 60) + " min";
  if (seconds < 2 * 86400) return std::to_string(seconds / 3600) + " h";
  return std::to_string(seconds / 86400) + " days";
}

}  // namespace

Expected<std::string, std::string> TokenFileCredential::token() {
  auto token = read_token_file(path_);
  if (!token) return token;
  const TokenTimes times = read_token_times(*token);
  const std::lock_guard lock(mutex_);
  subject_ = times.subject;
  issued_at_ = times.issued_at;
  expiry_ = times.expiry;
  return token;
}

std::string TokenFileCredential::principal() const {
  const std::lock_guard lock(mutex_);
  return subject_;
}

std::optional<WallTime> TokenFileCredential::start() const {
  const std::lock_guard lock(mutex_);
  return issued_at_;
}

std::optional<WallTime> TokenFileCredential::expiry() const {
  const std::lock_guard lock(mutex_);
  return expiry_;
}

Expected<CertificateCredential, std::string> CertificateCredential::load(
    const std::filesystem::path& path) {
  const std::string name = path.string();
  std::unique_ptr<BIO, BioFree> file(BIO_new_file(name.c_str(), "r"));
  if (!file) {
    ERR_clear_error();
    return make_unexpected("--cert: cannot read " + name);
  }
  std::unique_ptr<X509, X509Free> certificate(
      PEM_read_bio_X509(file.get(), nullptr, nullptr, nullptr));
  if (!certificate) {
    ERR_clear_error();
    return make_unexpected("--cert: " + name + " holds no PEM certificate");
  }
  const auto not_before = wall_time(X509_get0_notBefore(certificate.get()));
  const auto not_after = wall_time(X509_get0_notAfter(certificate.get()));
  if (!not_before || !not_after) {
    return make_unexpected("--cert: " + name + ": unreadable validity dates");
  }
  CertificateCredential credential;
  credential.not_before_ = *not_before;
  credential.not_after_ = *not_after;
  const X509_NAME* subject = X509_get_subject_name(certificate.get());
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index >= 0) {
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
    if (data != nullptr) {
      credential.common_name_.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                                     static_cast<std::size_t>(ASN1_STRING_length(data)));
    }
  }
  return credential;
}

std::string describe_expiry(const ExpiringCredential& credential, WallTime now,
                            const RefreshPolicy& policy, double unit_random, bool& renewal_due) {
  renewal_due = false;
  const std::optional<WallTime> expiry = credential.expiry();
  if (!expiry) return {};
  const std::string who = credential.principal().empty()
                              ? std::string("the credential")
                              : "the credential of " + wire::escape_text(credential.principal());
  if (*expiry <= now) {
    renewal_due = true;
    return who + " expired at " + utc_text(*expiry) + "; renew it";
  }
  std::string line =
      who + " expires at " + utc_text(*expiry) + " (in " + duration_text(*expiry - now) + ")";
  // Due once the refresh window (factor plus this draw of the jitter) of its validity has passed,
  // or, when its start is unknown, once it is within the buffer of its expiry.
  const double fraction =
      policy.window_factor + policy.window_jitter * std::clamp(unit_random, 0.0, 1.0);
  const std::optional<WallTime> start = credential.start();
  const bool due =
      start && *start < *expiry
          ? *start + std::chrono::duration_cast<WallClock::duration>(
                         std::chrono::duration<double, WallClock::duration::period>(
                             static_cast<double>((*expiry - *start).count()) * fraction)) <=
                now
          : *expiry - now <= policy.buffer;
  if (due) {
    renewal_due = true;
    line += "; its refresh window has come: renew it";
  }
  return line;
}

}  // namespace tether::auth
