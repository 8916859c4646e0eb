// The token deny list: its file syntax (ids, comments, blanks, strict refusals with the line), its
// bounds, the file-safety rule, and refreshing on change (a bad edit keeps the list in force).
#include "auth/token_deny_list.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "tests/support/temporary_directory.hpp"

namespace tether::auth {
namespace {

namespace fs = std::filesystem;

void write_file(const fs::path& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path, std::ios::trunc) << text;
  ::chmod(path.c_str(), mode);
}

TEST(TokenDenyListParse, ReadsOneIdPerLineSkippingCommentsAndBlanks) {
  const auto ids = parse_token_deny_list(
      "# revoked 2026-12-02\n"
      "\n"
      "jti-1\n"
      "  0b6e6a8e-4c2b-4f4e-9a51-2f1d3b7c9e10 \r\n"
      "\t# indented comment\n"
      "jti-1\n"
      "last-without-newline");
  ASSERT_TRUE(ids) << ids.error();
  EXPECT_EQ(*ids,
            (TokenIdSet{"jti-1", "0b6e6a8e-4c2b-4f4e-9a51-2f1d3b7c9e10", "last-without-newline"}));
  EXPECT_TRUE(parse_token_deny_list("")->empty());
  EXPECT_TRUE(parse_token_deny_list("# nothing yet\n")->empty());
}

TEST(TokenDenyListParse, RefusesWhatIsNoTokenIdNamingTheLine) {
  const auto spaced = parse_token_deny_list("ok\ntwo words\n");
  ASSERT_FALSE(spaced);
  EXPECT_NE(spaced.error().find("line 2"), std::string::npos) << spaced.error();
  const auto control = parse_token_deny_list(std::string("a\x1b[2Jb\n"));
  ASSERT_FALSE(control);
  EXPECT_EQ(control.error().find('\x1b'), std::string::npos) << "escaped in the message";
  EXPECT_FALSE(parse_token_deny_list(std::string("a\0b\n", 4)));
  EXPECT_FALSE(parse_token_deny_list("caf\xc3\xa9\n"));
  EXPECT_TRUE(parse_token_deny_list(std::string(kMaximumTokenIdLength, 'x')));
  EXPECT_FALSE(parse_token_deny_list(std::string(kMaximumTokenIdLength + 1, 'x')));
}

TEST(TokenDenyListParse, IsBoundedInIdsAndBytes) {
  std::string many;
  for (std::size_t index = 0; index <= kMaximumDeniedTokens; ++index)
    many += std::to_string(index) + "\n";
  const auto refused = parse_token_deny_list(many);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("more than"), std::string::npos) << refused.error();
  // Comments do not count as ids, but count in the size bound.
  EXPECT_FALSE(parse_token_deny_list(std::string(kMaximumDenyListBytes + 1, '#')));
}

TEST(TokenDenyListFile, RefusesAFileOthersMayWriteAndAMissingOne) {
  testing::TemporaryDirectory directory;
  const fs::path path = directory.path() / "denied";
  EXPECT_FALSE(TokenDenyList::open(path));
  write_file(path, "jti-1\n", 0666);
  const auto unsafe = TokenDenyList::open(path);
  ASSERT_FALSE(unsafe);
  write_file(path, "jti-1\n", 0644);  // readable by others is fine: ids are no secrets
  const auto opened = TokenDenyList::open(path);
  ASSERT_TRUE(opened) << opened.error();
  EXPECT_TRUE((*opened)->contains("jti-1"));
  EXPECT_FALSE((*opened)->contains("jti-2"));
}

TEST(TokenDenyListFile, RefreshReadsAChangedFileAndKeepsTheListOnABadEdit) {
  testing::TemporaryDirectory directory;
  const fs::path path = directory.path() / "denied";
  write_file(path, "jti-1\n");
  auto list = *TokenDenyList::open(path);
  EXPECT_EQ(list->refresh(), false);  // unchanged
  write_file(path, "jti-1\njti-two\n");
  ASSERT_EQ(list->refresh(), true);
  EXPECT_TRUE(list->contains("jti-two"));
  EXPECT_EQ(list->size(), 2u);

  // A broken edit: an error, and the list in force stays.
  write_file(path, "jti-1\nnot an id\n");
  const auto broken = list->refresh();
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().find("line 2"), std::string::npos) << broken.error();
  EXPECT_TRUE(list->contains("jti-two"));
  // A removed file too.
  fs::remove(path);
  EXPECT_FALSE(list->refresh(true));
  EXPECT_TRUE(list->contains("jti-two"));
  // Fixed: read again.
  write_file(path, "jti-3\n");
  ASSERT_EQ(list->refresh(), true);
  EXPECT_FALSE(list->contains("jti-1"));
  EXPECT_TRUE(list->contains("jti-3"));
  // Forced: read again even when nothing changed.
  EXPECT_EQ(list->refresh(true), true);
  // An in-memory list never refreshes.
  TokenDenyList memory(TokenIdSet{"x"});
  EXPECT_EQ(memory.refresh(true), false);
  EXPECT_TRUE(memory.contains("x"));
}

}  // namespace
}  // namespace tether::auth
