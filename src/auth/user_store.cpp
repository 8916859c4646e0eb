#include "auth/user_store.hpp"

#include <fcntl.h>
#include <gsasl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>

#include "auth/jwt.hpp"
#include "transport/file_safety.hpp"

namespace tether::auth {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kScheme = "SCRAM-SHA-256$";
constexpr std::size_t kMinimumSaltBytes = 8;
constexpr std::size_t kMaximumSaltBytes = 64;
constexpr std::string_view kExpiresItem = "expires=";
constexpr int kFirstExpiryYear = 1970;
constexpr int kLastExpiryYear = 2199;  // well inside system_clock's range (nanoseconds: 2262)

int alphabet_index(char character) {
  if (character >= 'A' && character <= 'Z') return character - 'A';
  if (character >= 'a' && character <= 'z') return character - 'a' + 26;
  if (character >= '0' && character <= '9') return character - '0' + 52;
  if (character == '+') return 62;
  if (character == '/') return 63;
  return -1;
}

std::string errno_text(int error) {
  return std::strerror(error);
}

bool decode_key(std::string_view text, std::array<std::byte, 32>& key) {
  const auto bytes = decode_base64(text);
  if (!bytes || bytes->size() != key.size()) return false;
  std::copy(bytes->begin(), bytes->end(), key.begin());
  return true;
}

}  // namespace

bool valid_user_name(std::string_view name) {
  if (name.empty() || name.size() > kMaximumUserNameLength || name.front() == '-') return false;
  for (const char character : name) {
    const bool allowed =
        (character >= 'A' && character <= 'Z') || (character >= 'a' && character <= 'z') ||
        (character >= '0' && character <= '9') || character == '.' || character == '_' ||
        character == '@' || character == '+' || character == '-';
    if (!allowed) return false;
  }
  return true;
}

std::string encode_base64(std::span<const std::byte> bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t index = 0;
  for (; index + 3 <= bytes.size(); index += 3) {
    const auto value = std::to_integer<unsigned>(bytes[index]) << 16 |
                       std::to_integer<unsigned>(bytes[index + 1]) << 8 |
                       std::to_integer<unsigned>(bytes[index + 2]);
    out += kAlphabet[value >> 18 & 63];
    out += kAlphabet[value >> 12 & 63];
    out += kAlphabet[value >> 6 & 63];
    out += kAlphabet[value & 63];
  }
  const std::size_t rest = bytes.size() - index;
  if (rest == 1) {
    const auto value = std::to_integer<unsigned>(bytes[index]) << 16;
    out += kAlphabet[value >> 18 & 63];
    out += kAlphabet[value >> 12 & 63];
    out += "==";
  } else if (rest == 2) {
    const auto value = std::to_integer<unsigned>(bytes[index]) << 16 |
                       std::to_integer<unsigned>(bytes[index + 1]) << 8;
    out += kAlphabet[value >> 18 & 63];
    out += kAlphabet[value >> 12 & 63];
    out += kAlphabet[value >> 6 & 63];
    out += '=';
  }
  return out;
}

std::optional<std::vector<std::byte>> decode_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::vector<std::byte> out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t index = 0; index < text.size(); index += 4) {
    const bool last = index + 4 == text.size();
    int values[4];
    int padding = 0;
    for (int offset = 0; offset < 4; ++offset) {
      const char character = text[index + static_cast<std::size_t>(offset)];
      if (character == '=') {
        // Padding only at the end of the last quantum, and at most two characters.
        if (!last || offset < 2) return std::nullopt;
        ++padding;
        values[offset] = 0;
        continue;
      }
      if (padding > 0) return std::nullopt;  // data after padding
      values[offset] = alphabet_index(character);
      if (values[offset] < 0) return std::nullopt;
    }
    const unsigned value = static_cast<unsigned>(values[0]) << 18 |
                           static_cast<unsigned>(values[1]) << 12 |
                           static_cast<unsigned>(values[2]) << 6 | static_cast<unsigned>(values[3]);
    out.push_back(static_cast<std::byte>(value >> 16 & 0xff));
    if (padding == 2) {
      if ((value & 0xffff) != 0) return std::nullopt;
      break;
    }
    out.push_back(static_cast<std::byte>(value >> 8 & 0xff));
    if (padding == 1) {
      if ((value & 0xff) != 0) return std::nullopt;
      break;
    }
    out.push_back(static_cast<std::byte>(value & 0xff));
  }
  return out;
}

Expected<std::chrono::system_clock::time_point, std::string> parse_utc_timestamp(
    std::string_view text) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SSZ: digits everywhere but these positions.
  constexpr std::string_view kShape = "0000-00-00T00:00:00Z";
  bool shaped = text.size() == kShape.size();
  for (std::size_t index = 0; shaped && index < kShape.size(); ++index) {
    shaped = kShape[index] == '0' ? text[index] >= '0' && text[index] <= '9'
                                  : text[index] == kShape[index];
  }
  if (!shaped) {
    return make_unexpected("the time '" + std::string(text.substr(0, 40)) +
                           "' is not YYYY-MM-DDTHH:MM:SSZ (UTC)");
  }
  const auto number = [&](std::size_t position, std::size_t length) {
    int value = 0;
    for (std::size_t index = position; index < position + length; ++index) {
      value = value * 10 + (text[index] - '0');
    }
    return value;
  };
  const int year_number = number(0, 4);
  const auto date = year(year_number) / month(static_cast<unsigned>(number(5, 2))) /
                    day(static_cast<unsigned>(number(8, 2)));
  const int hour = number(11, 2);
  const int minute = number(14, 2);
  const int second = number(17, 2);
  if (year_number < kFirstExpiryYear || year_number > kLastExpiryYear) {
    return make_unexpected("the year of " + std::string(text) + " is outside " +
                           std::to_string(kFirstExpiryYear) + ".." +
                           std::to_string(kLastExpiryYear));
  }
  if (!date.ok() || hour > 23 || minute > 59 || second > 59) {
    return make_unexpected("the time " + std::string(text) + " is not a real date and time");
  }
  return system_clock::time_point(sys_days(date)) + hours(hour) + minutes(minute) + seconds(second);
}

std::string format_verifier(const ScramVerifier& verifier) {
  return std::string(kScheme) + std::to_string(verifier.iterations) + ":" +
         encode_base64(verifier.salt) + "$" + encode_base64(verifier.stored_key) + ":" +
         encode_base64(verifier.server_key);
}

Expected<ScramVerifier, std::string> parse_verifier(std::string_view text) {
  if (!text.starts_with(kScheme))
    return make_unexpected(std::string("not a SCRAM-SHA-256$ verifier"));
  text.remove_prefix(kScheme.size());
  const auto colon = text.find(':');
  const auto dollar = text.find('$');
  if (colon == std::string_view::npos || dollar == std::string_view::npos || colon > dollar) {
    return make_unexpected(std::string("expected <iterations>:<salt>$<StoredKey>:<ServerKey>"));
  }
  ScramVerifier verifier;
  const std::string_view iterations = text.substr(0, colon);
  std::uint64_t count = 0;
  const auto [end, error] =
      std::from_chars(iterations.data(), iterations.data() + iterations.size(), count);
  if (error != std::errc() || end != iterations.data() + iterations.size() || iterations.empty() ||
      iterations.front() == '0') {
    return make_unexpected(std::string("the iteration count is not a decimal number"));
  }
  if (count < kMinimumScramIterations || count > kMaximumScramIterations) {
    return make_unexpected("the iteration count " + std::to_string(count) + " is outside " +
                           std::to_string(kMinimumScramIterations) + ".." +
                           std::to_string(kMaximumScramIterations));
  }
  verifier.iterations = static_cast<std::uint32_t>(count);
  const auto salt = decode_base64(text.substr(colon + 1, dollar - colon - 1));
  if (!salt) return make_unexpected(std::string("the salt is not valid base64"));
  if (salt->size() < kMinimumSaltBytes || salt->size() > kMaximumSaltBytes) {
    return make_unexpected(std::string("the salt is not 8 to 64 bytes"));
  }
  verifier.salt = *salt;
  const std::string_view keys = text.substr(dollar + 1);
  const auto key_colon = keys.find(':');
  if (key_colon == std::string_view::npos) {
    return make_unexpected(std::string("expected <StoredKey>:<ServerKey> after '$'"));
  }
  if (!decode_key(keys.substr(0, key_colon), verifier.stored_key)) {
    return make_unexpected(std::string("the StoredKey is not 32 bytes of base64"));
  }
  if (!decode_key(keys.substr(key_colon + 1), verifier.server_key)) {
    return make_unexpected(std::string("the ServerKey is not 32 bytes of base64"));
  }
  return verifier;
}

Expected<ScramVerifier, std::string> make_verifier(std::string_view password,
                                                   std::span<const std::byte> salt,
                                                   std::uint32_t iterations) {
  if (password.empty()) return make_unexpected(std::string("the password is empty"));
  if (password.find('\0') != std::string_view::npos) {
    return make_unexpected(std::string("the password holds a NUL character"));
  }
  if (iterations < kMinimumScramIterations || iterations > kMaximumScramIterations) {
    return make_unexpected(std::string("the iteration count is out of range"));
  }
  const std::string terminated(password);
  char* prepared = nullptr;
  int status = gsasl_saslprep(terminated.c_str(), GSASL_ALLOW_UNASSIGNED, &prepared, nullptr);
  if (status != GSASL_OK || prepared == nullptr) {
    gsasl_free(prepared);
    return make_unexpected(std::string("the password is refused by SASLprep"));
  }
  ScramVerifier verifier;
  verifier.iterations = iterations;
  verifier.salt.assign(salt.begin(), salt.end());
  char salted[32];
  char client_key[32];
  status = gsasl_scram_secrets_from_password(
      GSASL_HASH_SHA256, prepared, iterations, reinterpret_cast<const char*>(salt.data()),
      salt.size(), salted, client_key, reinterpret_cast<char*>(verifier.server_key.data()),
      reinterpret_cast<char*>(verifier.stored_key.data()));
  std::memset(prepared, 0, std::strlen(prepared));
  gsasl_free(prepared);
  std::memset(salted, 0, sizeof salted);
  std::memset(client_key, 0, sizeof client_key);
  if (status != GSASL_OK) {
    return make_unexpected(std::string("cannot derive the SCRAM keys: ") + gsasl_strerror(status));
  }
  return verifier;
}

Expected<UserStore, std::string> UserStore::parse(std::string_view text) {
  UserStore store;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const auto newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    const auto error = [&](const std::string& why) {
      return make_unexpected("line " + std::to_string(line_number) + ": " + why);
    };
    if (line.size() > kMaximumUsersLineLength) {
      return error("longer than " + std::to_string(kMaximumUsersLineLength) + " bytes");
    }
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view trimmed = line;
    while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\t')) {
      trimmed.remove_prefix(1);
    }
    while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\t')) {
      trimmed.remove_suffix(1);
    }
    if (trimmed.empty() || trimmed.front() == '#') {
      store.lines_.push_back(Line{std::string(line), false, {}});
      continue;
    }
    std::vector<std::string_view> fields;
    while (!trimmed.empty()) {
      const auto space = trimmed.find_first_of(" \t");
      fields.push_back(trimmed.substr(0, space));
      if (space == std::string_view::npos) break;
      trimmed.remove_prefix(space);
      while (!trimmed.empty() && (trimmed.front() == ' ' || trimmed.front() == '\t')) {
        trimmed.remove_prefix(1);
      }
    }
    if (fields.size() < 2 || fields.size() > 4) {
      return error("expected NAME SCRAM-SHA-256$... [disabled] [expires=YYYY-MM-DDTHH:MM:SSZ]");
    }
    if (!valid_user_name(fields[0])) {
      return error(
          "the user name is not 1 to 64 characters of [A-Za-z0-9._@+-] (not starting with '-')");
    }
    auto verifier = parse_verifier(fields[1]);
    if (!verifier) return error(verifier.error());
    UserRecord record{std::string(fields[0]), *verifier, false, std::nullopt};
    for (std::size_t index = 2; index < fields.size(); ++index) {
      const std::string_view item = fields[index];
      if (item == "disabled") {
        if (record.disabled) return error("'disabled' is given twice");
        record.disabled = true;
      } else if (item.starts_with(kExpiresItem)) {
        if (record.expires) return error("'expires=' is given twice");
        auto expires = parse_utc_timestamp(item.substr(kExpiresItem.size()));
        if (!expires) return error("expires=: " + expires.error());
        record.expires = *expires;
      } else {
        return error("unknown flag (only 'disabled' and 'expires=YYYY-MM-DDTHH:MM:SSZ' are known)");
      }
    }
    const std::string name = record.name;
    if (store.index_.contains(name)) return error("the user " + name + " is listed twice");
    if (store.index_.size() >= kMaximumUsers) {
      return error("more than " + std::to_string(kMaximumUsers) + " users");
    }
    store.lines_.push_back(Line{{}, true, std::move(record)});
    store.index_.emplace(name, store.lines_.size() - 1);
  }
  return store;
}

Expected<UserStore, std::string> UserStore::load(const std::filesystem::path& path,
                                                 bool missing_ok) {
  transport::TrustedFileOptions options;
  options.max_bytes = kMaximumUsersFileBytes;
  options.secret = true;
  auto text = transport::read_trusted_file(path, options);
  if (!text) return make_unexpected(text.error());
  if (!text->has_value()) {
    if (missing_ok) return UserStore{};
    return make_unexpected("users file " + path.string() + " does not exist");
  }
  auto store = parse(**text);
  if (!store) return make_unexpected("users file " + path.string() + ": " + store.error());
  return store;
}

const UserRecord* UserStore::find(std::string_view name) const {
  const auto found = index_.find(std::string(name));
  return found == index_.end() ? nullptr : &lines_[found->second].user;
}

std::uint32_t UserStore::typical_iterations() const {
  std::map<std::uint32_t, std::size_t> counts;
  for (const auto& line : lines_) {
    if (line.is_user) ++counts[line.user.verifier.iterations];
  }
  std::uint32_t typical = kDefaultScramIterations;
  std::size_t best = 0;
  for (const auto& [iterations, count] : counts) {
    if (count > best) {
      best = count;
      typical = iterations;
    }
  }
  return typical;
}

bool UserStore::set(const std::string& name, ScramVerifier verifier) {
  if (const auto found = index_.find(name); found != index_.end()) {
    lines_[found->second].user.verifier = std::move(verifier);
    return true;
  }
  if (index_.size() >= kMaximumUsers) return false;
  lines_.push_back(Line{{}, true, UserRecord{name, std::move(verifier), false, std::nullopt}});
  index_.emplace(name, lines_.size() - 1);
  return true;
}

bool UserStore::set_disabled(std::string_view name, bool disabled) {
  const auto found = index_.find(std::string(name));
  if (found == index_.end()) return false;
  lines_[found->second].user.disabled = disabled;
  return true;
}

bool UserStore::set_expiry(std::string_view name,
                           std::optional<std::chrono::system_clock::time_point> expires) {
  const auto found = index_.find(std::string(name));
  if (found == index_.end()) return false;
  if (expires) *expires = std::chrono::floor<std::chrono::seconds>(*expires);
  lines_[found->second].user.expires = expires;
  return true;
}

bool UserStore::remove(std::string_view name) {
  const auto found = index_.find(std::string(name));
  if (found == index_.end()) return false;
  lines_.erase(lines_.begin() + static_cast<std::ptrdiff_t>(found->second));
  reindex();
  return true;
}

void UserStore::reindex() {
  index_.clear();
  for (std::size_t index = 0; index < lines_.size(); ++index) {
    if (lines_[index].is_user) index_.emplace(lines_[index].user.name, index);
  }
}

std::string UserStore::serialize() const {
  std::string out;
  for (const auto& line : lines_) {
    if (line.is_user) {
      out += line.user.name + " " + format_verifier(line.user.verifier);
      if (line.user.disabled) out += " disabled";
      if (line.user.expires)
        out += " " + std::string(kExpiresItem) + format_utc(*line.user.expires);
    } else {
      out += line.text;
    }
    out += '\n';
  }
  return out;
}

Expected<void, std::string> UserStore::write(const std::filesystem::path& path) const {
  std::filesystem::path directory = path.parent_path();
  if (directory.empty()) directory = ".";
  if (auto safe = transport::check_path_safety(directory); !safe) {
    return make_unexpected(safe.error());
  }
  mode_t mode = S_IRUSR | S_IWUSR;
  struct stat status {};
  if (::lstat(path.c_str(), &status) == 0) {
    if (!S_ISREG(status.st_mode)) {
      return make_unexpected(path.string() + " is not a regular file; not replaced");
    }
    mode = status.st_mode & 07777;
  } else if (errno != ENOENT) {
    return make_unexpected("cannot check " + path.string() + ": " + errno_text(errno));
  }
  std::string temporary = (directory / ("." + path.filename().string() + ".XXXXXX")).string();
  const int descriptor = ::mkostemp(temporary.data(), O_CLOEXEC);
  if (descriptor < 0) {
    return make_unexpected("cannot create a temporary file beside " + path.string() + ": " +
                           errno_text(errno));
  }
  const auto fail = [&](const std::string& what) {
    const int saved = errno;
    ::close(descriptor);
    ::unlink(temporary.c_str());
    return make_unexpected("cannot write " + path.string() + ": " + what + ": " +
                           errno_text(saved));
  };
  if (::fchmod(descriptor, mode) != 0) return fail("chmod");
  const std::string text = serialize();
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t count = ::write(descriptor, text.data() + written, text.size() - written);
    if (count < 0) {
      if (errno == EINTR) continue;
      return fail("write");
    }
    written += static_cast<std::size_t>(count);
  }
  if (::fsync(descriptor) != 0) return fail("fsync");
  if (::close(descriptor) != 0) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    return make_unexpected("cannot write " + path.string() + ": close: " + errno_text(saved));
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    return make_unexpected("cannot rename the new " + path.string() +
                           " into place: " + errno_text(saved));
  }
  const int directory_descriptor = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory_descriptor >= 0) {
    (void)::fsync(directory_descriptor);
    ::close(directory_descriptor);
  }
  return {};
}

UserDirectory::UserDirectory(UserStore store)
    : store_(std::make_shared<const UserStore>(std::move(store))),
      typical_iterations_(store_->typical_iterations()) {}

Expected<std::shared_ptr<UserDirectory>, std::string> UserDirectory::open(
    std::filesystem::path path, Clock clock, std::chrono::steady_clock::duration check_interval) {
  auto store = UserStore::load(path);
  if (!store) return make_unexpected(store.error());
  std::shared_ptr<UserDirectory> directory(new UserDirectory());
  directory->store_ = std::make_shared<const UserStore>(std::move(*store));
  directory->typical_iterations_ = directory->store_->typical_iterations();
  directory->stamp_ = stamp_of(path);
  directory->path_ = std::move(path);
  directory->clock_ = clock ? std::move(clock) : [] { return std::chrono::steady_clock::now(); };
  directory->check_interval_ = check_interval;
  directory->last_check_ = directory->clock_();
  return directory;
}

std::optional<UserDirectory::FileStamp> UserDirectory::stamp_of(const std::filesystem::path& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) return std::nullopt;
  return FileStamp{static_cast<std::int64_t>(status.st_mtim.tv_sec),
                   static_cast<std::int64_t>(status.st_mtim.tv_nsec),
                   static_cast<std::int64_t>(status.st_size),
                   static_cast<std::uint64_t>(status.st_ino)};
}

void UserDirectory::maybe_reload() {
  if (path_.empty()) return;
  const auto now = clock_();
  if (now - last_check_ < check_interval_) return;
  last_check_ = now;
  if (stamp_of(path_) == stamp_) return;
  read_file();
}

void UserDirectory::read_file() {
  const auto stamp = stamp_of(path_);
  auto store = UserStore::load(path_);
  stamp_ = stamp;
  if (!store) {
    last_error_ = store.error();
    return;
  }
  last_error_.reset();
  store_ = std::make_shared<const UserStore>(std::move(*store));
  typical_iterations_ = store_->typical_iterations();
  ++reloads_;
}

Expected<void, std::string> UserDirectory::reload() {
  const std::lock_guard lock(mutex_);
  if (path_.empty()) return {};
  last_check_ = clock_();
  read_file();
  if (last_error_) return make_unexpected(*last_error_);
  return {};
}

UserLookup UserDirectory::lookup(std::string_view name) {
  std::shared_ptr<const UserStore> store;
  {
    const std::lock_guard lock(mutex_);
    maybe_reload();
    store = store_;
  }
  UserLookup result;
  const UserRecord* record = store->find(name);
  if (record == nullptr) return result;
  if (record->disabled) {
    result.kind = UserLookup::Kind::kDisabled;
    return result;
  }
  result.kind = UserLookup::Kind::kFound;
  result.verifier = record->verifier;
  result.expires = record->expires;
  return result;
}

std::uint32_t UserDirectory::typical_iterations() {
  const std::lock_guard lock(mutex_);
  maybe_reload();
  return typical_iterations_;
}

std::optional<std::string> UserDirectory::last_reload_error() const {
  const std::lock_guard lock(mutex_);
  return last_error_;
}

std::uint64_t UserDirectory::reloads() const {
  const std::lock_guard lock(mutex_);
  return reloads_;
}

}  // namespace tether::auth
