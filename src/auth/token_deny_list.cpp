#include "auth/token_deny_list.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "auth/base64url.hpp"
#include "transport/file_safety.hpp"

namespace tether::auth {
namespace {

bool blank(char character) {
  return character == ' ' || character == '\t' || character == '\r';
}

std::string_view trimmed(std::string_view line) {
  while (!line.empty() && blank(line.front())) line.remove_prefix(1);
  while (!line.empty() && blank(line.back())) line.remove_suffix(1);
  return line;
}

bool valid_token_id(std::string_view id) {
  return !id.empty() && id.size() <= kMaximumTokenIdLength &&
         std::all_of(id.begin(), id.end(), [](char character) {
           const auto byte = static_cast<unsigned char>(character);
           return byte >= 0x21 && byte <= 0x7e;
         });
}

}  // namespace

Expected<TokenIdSet, std::string> parse_token_deny_list(std::string_view text) {
  if (text.size() > kMaximumDenyListBytes)
    return make_unexpected("larger than " + std::to_string(kMaximumDenyListBytes >> 20) + " MiB");
  TokenIdSet ids;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const std::size_t end = text.find('\n');
    const std::string_view raw = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    const std::string_view line = trimmed(raw);
    if (line.empty() || line.front() == '#') continue;
    if (!valid_token_id(line)) {
      return make_unexpected("line " + std::to_string(line_number) + ": \"" +
                             escape_peer_text(line) + "\" is not a token id (1 to " +
                             std::to_string(kMaximumTokenIdLength) +
                             " printable ASCII characters without spaces)");
    }
    ids.emplace(line);
    if (ids.size() > kMaximumDeniedTokens) {
      return make_unexpected("line " + std::to_string(line_number) + ": more than " +
                             std::to_string(kMaximumDeniedTokens) + " token ids");
    }
  }
  return ids;
}

TokenDenyList::TokenDenyList(TokenIdSet ids)
    : ids_(std::make_shared<const TokenIdSet>(std::move(ids))) {}

Expected<TokenIdSet, std::string> TokenDenyList::read(const std::filesystem::path& path) {
  transport::TrustedFileOptions options;
  options.max_bytes = kMaximumDenyListBytes;
  auto contents = transport::read_trusted_file(path, options);
  if (!contents) return make_unexpected("token deny list: " + contents.error());
  if (!contents->has_value())
    return make_unexpected("token deny list " + path.string() + " does not exist");
  auto ids = parse_token_deny_list(**contents);
  if (!ids) return make_unexpected("token deny list " + path.string() + ": " + ids.error());
  return ids;
}

Expected<std::shared_ptr<TokenDenyList>, std::string> TokenDenyList::open(
    std::filesystem::path path) {
  const auto stamp = stamp_of(path);
  auto ids = read(path);
  if (!ids) return make_unexpected(ids.error());
  auto list = std::make_shared<TokenDenyList>(std::move(*ids));
  list->path_ = std::move(path);
  list->stamp_ = stamp;
  return list;
}

std::optional<TokenDenyList::FileStamp> TokenDenyList::stamp_of(const std::filesystem::path& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) return std::nullopt;
  return FileStamp{static_cast<std::int64_t>(status.st_mtim.tv_sec),
                   static_cast<std::int64_t>(status.st_mtim.tv_nsec),
                   static_cast<std::int64_t>(status.st_size),
                   static_cast<std::uint64_t>(status.st_ino)};
}

bool TokenDenyList::contains(std::string_view token_id) const {
  return ids()->contains(token_id);
}

std::size_t TokenDenyList::size() const {
  return ids()->size();
}

std::shared_ptr<const TokenIdSet> TokenDenyList::ids() const {
  const std::lock_guard lock(mutex_);
  return ids_;
}

Expected<bool, std::string> TokenDenyList::refresh(bool force) {
  if (path_.empty()) return false;
  // The stamp is taken before the read: a change made during the read is seen next time.
  const auto stamp = stamp_of(path_);
  {
    const std::lock_guard lock(mutex_);
    if (!force && stamp == stamp_) return false;
    stamp_ = stamp;
  }
  auto ids = read(path_);
  if (!ids) return make_unexpected(ids.error());
  const std::lock_guard lock(mutex_);
  ids_ = std::make_shared<const TokenIdSet>(std::move(*ids));
  return true;
}

}  // namespace tether::auth
