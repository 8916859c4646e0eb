// The users file: parsing (errors name the line), base64, permissions, atomic rewrite, reload.
#include "auth/user_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

namespace tether::auth {
namespace {

namespace fs = std::filesystem;

const std::string kVerifier =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    std::string pattern = (fs::temp_directory_path() / "tether-users-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TemporaryDirectory() { fs::remove_all(path_); }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write_file(const fs::path& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
}

TEST(Base64, RoundTripsAndIsStrict) {
  for (std::size_t length = 0; length < 10; ++length) {
    std::vector<std::byte> data(length);
    for (std::size_t index = 0; index < length; ++index) data[index] = std::byte(index * 37 + 1);
    const auto text = encode_base64(data);
    EXPECT_EQ(decode_base64(text), data);
  }
  EXPECT_EQ(encode_base64(std::vector<std::byte>{std::byte{'f'}, std::byte{'o'}}), "Zm8=");
  for (const char* bad : {"Zm8", "Zm==Zm8=", "Zm9=", "Z===", "Zm 8", "Zm8*", "=Zm8"}) {
    EXPECT_FALSE(decode_base64(bad)) << bad;
  }
}

TEST(UserNames, SafeSetOnly) {
  for (const char* good : {"alice", "a.b_c@d+e-f", "X9"}) EXPECT_TRUE(valid_user_name(good));
  for (const char* bad : {"", "-alice", "a,b", "a=b", "a b", "caf\xc3\xa9", "a\tb"}) {
    EXPECT_FALSE(valid_user_name(bad)) << bad;
  }
  EXPECT_FALSE(valid_user_name(std::string(65, 'a')));
  EXPECT_TRUE(valid_user_name(std::string(64, 'a')));
}

TEST(UserStoreParse, ReadsUsersCommentsAndDisabledFlag) {
  const auto store =
      UserStore::parse("# users\n\nalice " + kVerifier + "\nbob " + kVerifier + " disabled\r\n");
  ASSERT_TRUE(store) << store.error();
  EXPECT_EQ(store->size(), 2u);
  ASSERT_NE(store->find("alice"), nullptr);
  EXPECT_FALSE(store->find("alice")->disabled);
  EXPECT_EQ(store->find("alice")->verifier.iterations, 4096u);
  EXPECT_TRUE(store->find("bob")->disabled);
  EXPECT_EQ(store->find("carol"), nullptr);
  EXPECT_EQ(store->serialize(),
            "# users\n\nalice " + kVerifier + "\nbob " + kVerifier + " disabled\n");
}

TEST(UserStoreParse, ExpiryIsReadInAnyOrderAndRoundTrips) {
  using namespace std::chrono;
  const auto store = UserStore::parse(
      "alice " + kVerifier + " expires=2027-03-01T12:30:05Z\n" + "bob " + kVerifier +
      " expires=2028-02-29T00:00:00Z disabled\n" + "carol " + kVerifier +
      " disabled expires=1970-01-01T00:00:00Z\n" + "dave " + kVerifier + "\n");
  ASSERT_TRUE(store) << store.error();
  ASSERT_TRUE(store->find("alice")->expires);
  EXPECT_EQ(*store->find("alice")->expires,
            sys_days(2027y / March / 1) + hours(12) + minutes(30) + seconds(5));
  EXPECT_FALSE(store->find("alice")->disabled);
  EXPECT_EQ(*store->find("bob")->expires, sys_days(2028y / February / 29));
  EXPECT_TRUE(store->find("bob")->disabled);
  EXPECT_EQ(*store->find("carol")->expires, system_clock::time_point{});
  EXPECT_FALSE(store->find("dave")->expires);
  // Written back in one canonical order; that text parses to the same users.
  const std::string canonical = "alice " + kVerifier + " expires=2027-03-01T12:30:05Z\n" + "bob " +
                                kVerifier + " disabled expires=2028-02-29T00:00:00Z\n" + "carol " +
                                kVerifier + " disabled expires=1970-01-01T00:00:00Z\n" + "dave " +
                                kVerifier + "\n";
  EXPECT_EQ(store->serialize(), canonical);
  EXPECT_EQ(UserStore::parse(canonical)->serialize(), canonical);
}

TEST(UserStoreParse, BadExpiriesAreLineErrors) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"expires=2027-02-30T00:00:00Z", "not a real date"},
      {"expires=2027-13-01T00:00:00Z", "not a real date"},
      {"expires=2027-00-10T00:00:00Z", "not a real date"},
      {"expires=2027-02-29T00:00:00Z", "not a real date"},  // not a leap year
      {"expires=2027-01-01T24:00:00Z", "not a real date"},
      {"expires=2027-01-01T23:60:00Z", "not a real date"},
      {"expires=2027-01-01T23:59:60Z", "not a real date"},  // no leap seconds
      {"expires=1969-12-31T23:59:59Z", "the year of 1969-12-31T23:59:59Z is outside 1970..2199"},
      {"expires=2200-01-01T00:00:00Z", "is outside 1970..2199"},
      {"expires=9999-12-31T23:59:59Z", "is outside 1970..2199"},
      {"expires=2027-01-01T00:00:00", "is not YYYY-MM-DDTHH:MM:SSZ"},
      {"expires=2027-01-01 00:00:00Z", "is not YYYY-MM-DDTHH:MM:SSZ"},
      {"expires=2027-01-01T00:00:00+01:00", "is not YYYY-MM-DDTHH:MM:SSZ"},
      {"expires=2027-1-01T00:00:00Z", "is not YYYY-MM-DDTHH:MM:SSZ"},
      {"expires=+027-01-01T00:00:00Z", "is not YYYY-MM-DDTHH:MM:SSZ"},
      {"expires=2027-01-01t00:00:00z", "is not YYYY-MM-DDTHH:MM:SSZ"},
      {"expires=", "is not YYYY-MM-DDTHH:MM:SSZ"},
      {"expires=1", "is not YYYY-MM-DDTHH:MM:SSZ"},
      {"expires 2027-01-01T00:00:00Z", "unknown flag"},
      {"Expires=2027-01-01T00:00:00Z", "unknown flag"},
      {"expires=2027-01-01T00:00:00Z expires=2028-01-01T00:00:00Z", "'expires=' is given twice"},
      {"disabled disabled", "'disabled' is given twice"},
  };
  for (const auto& [items, expected] : cases) {
    const auto store = UserStore::parse("# comment\nalice " + kVerifier + " " + items + "\n");
    ASSERT_FALSE(store) << items;
    EXPECT_EQ(store.error().substr(0, 8), "line 2: ") << store.error();
    EXPECT_NE(store.error().find(expected), std::string::npos) << items << ": " << store.error();
  }
}

TEST(UserStoreParse, UtcTimestampParser) {
  using namespace std::chrono;
  EXPECT_EQ(*parse_utc_timestamp("2199-12-31T23:59:59Z"),
            sys_days(2199y / December / 31) + hours(23) + minutes(59) + seconds(59));
  EXPECT_EQ(*parse_utc_timestamp("2000-02-29T00:00:00Z"), sys_days(2000y / February / 29));
  EXPECT_FALSE(parse_utc_timestamp("1900-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_utc_timestamp("2027-01-01T00:00:00Z "));
  EXPECT_FALSE(parse_utc_timestamp(" 2027-01-01T00:00:00Z"));
}

TEST(UserStoreParse, SerializingIsStableWithCarriageReturns) {
  // Found by sasl_server_fuzzer: a comment ending in two CRs serialized to text that parsed back
  // to a different comment.
  const auto store = UserStore::parse("#s\r\r\n\r");
  ASSERT_TRUE(store);
  EXPECT_EQ(store->serialize(), "#s\n\n");
  EXPECT_EQ(UserStore::parse(store->serialize())->serialize(), store->serialize());
}

TEST(UserStoreParse, ErrorsNameTheLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"alice", "line 3: expected NAME"},
      {"-alice " + kVerifier, "line 3: the user name"},
      {"alice SCRAM-SHA-1$4096:abc$def:ghi", "line 3: not a SCRAM-SHA-256$ verifier"},
      {"alice SCRAM-SHA-256$100:W22ZaJ0SNY7soEsUEjb6gQ==$a:b", "line 3: the iteration count 100"},
      {"alice SCRAM-SHA-256$4096:W22Z*J0SNY7soEsUEjb6gQ==$a:b", "line 3: the salt"},
      {"alice SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$Zm8=:Zm8=", "line 3: the StoredKey"},
      {"alice " + kVerifier + " locked", "line 3: unknown flag"},
      {"alice " + kVerifier + "\nalice " + kVerifier, "line 4: the user alice is listed twice"},
      {std::string(2000, '#'), "line 3: longer than 1024 bytes"},
  };
  for (const auto& [line, expected] : cases) {
    const auto store = UserStore::parse("# comment\n\n" + line + "\n");
    ASSERT_FALSE(store) << line;
    EXPECT_EQ(store.error().substr(0, expected.size()), expected) << store.error();
  }
}

TEST(UserStoreParse, VerifierRoundTrips) {
  const auto verifier = parse_verifier(kVerifier);
  ASSERT_TRUE(verifier) << verifier.error();
  EXPECT_EQ(format_verifier(*verifier), kVerifier);
}

TEST(UserStoreFile, RefusesGroupOrWorldReadable) {
  TemporaryDirectory directory;
  const fs::path path = directory.path() / "users";
  write_file(path, "alice " + kVerifier + "\n", 0644);
  const auto refused = UserStore::load(path);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("chmod 600"), std::string::npos) << refused.error();
  ::chmod(path.c_str(), 0640);
  EXPECT_FALSE(UserStore::load(path));
  ::chmod(path.c_str(), 0600);
  const auto loaded = UserStore::load(path);
  ASSERT_TRUE(loaded) << loaded.error();
  EXPECT_EQ(loaded->size(), 1u);
}

TEST(UserStoreFile, ParseErrorNamesFileAndLine) {
  TemporaryDirectory directory;
  const fs::path path = directory.path() / "users";
  write_file(path, "alice " + kVerifier + "\nbroken\n", 0600);
  const auto refused = UserStore::load(path);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find(path.string() + ": line 2"), std::string::npos) << refused.error();
  EXPECT_FALSE(UserStore::load(directory.path() / "missing"));
  EXPECT_TRUE(UserStore::load(directory.path() / "missing", true));
}

TEST(UserStoreFile, AtomicRewriteKeepsModeAndNewFileIs0600) {
  TemporaryDirectory directory;
  const fs::path path = directory.path() / "users";
  auto store = UserStore::parse("# keep me\nalice " + kVerifier + "\n");
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->write(path));
  struct stat status {};
  ASSERT_EQ(::stat(path.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 07777, 0600u);

  ::chmod(path.c_str(), 0400);
  const auto inode = status.st_ino;
  store->set_disabled("alice", true);
  ASSERT_TRUE(store->write(path));
  ASSERT_EQ(::stat(path.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 07777, 0400u);
  EXPECT_NE(status.st_ino, inode);  // replaced by rename, not rewritten in place
  const auto reread = UserStore::load(path);
  ASSERT_TRUE(reread) << reread.error();
  EXPECT_TRUE(reread->find("alice")->disabled);
  EXPECT_EQ(reread->serialize().substr(0, 10), "# keep me\n");
  // No temporary file is left behind.
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(directory.path())) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST(UserStoreEdit, SetDisableRemove) {
  UserStore store;
  const auto verifier = *parse_verifier(kVerifier);
  EXPECT_TRUE(store.set("alice", verifier));
  EXPECT_TRUE(store.set_disabled("alice", true));
  EXPECT_TRUE(store.set("alice", verifier));  // a new password keeps the flag
  EXPECT_TRUE(store.find("alice")->disabled);
  const auto expiry =
      std::chrono::sys_days(std::chrono::year(2030) / 1 / 2) + std::chrono::milliseconds(1500);
  EXPECT_TRUE(store.set_expiry("alice", expiry));
  EXPECT_TRUE(store.set("alice", verifier));  // and the expiry, rounded down to seconds
  EXPECT_EQ(store.find("alice")->expires,
            std::chrono::sys_days(std::chrono::year(2030) / 1 / 2) + std::chrono::seconds(1));
  EXPECT_EQ(store.serialize(), "alice " + kVerifier + " disabled expires=2030-01-02T00:00:01Z\n");
  EXPECT_TRUE(store.set_expiry("alice", std::nullopt));
  EXPECT_FALSE(store.find("alice")->expires);
  EXPECT_FALSE(store.set_expiry("bob", expiry));
  EXPECT_FALSE(store.set_disabled("bob", true));
  EXPECT_TRUE(store.set("bob", verifier));
  EXPECT_TRUE(store.remove("alice"));
  EXPECT_FALSE(store.remove("alice"));
  EXPECT_EQ(store.find("alice"), nullptr);
  ASSERT_NE(store.find("bob"), nullptr);
  EXPECT_EQ(store.size(), 1u);
}

TEST(UserDirectoryReload, ReloadsWhenTheFileChangesAtMostOncePerInterval) {
  TemporaryDirectory directory;
  const fs::path path = directory.path() / "users";
  write_file(path, "alice " + kVerifier + "\n", 0600);
  auto now = std::chrono::steady_clock::time_point{};
  auto opened = UserDirectory::open(
      path, [&] { return now; }, std::chrono::seconds(2));
  ASSERT_TRUE(opened) << opened.error();
  auto users = *opened;
  EXPECT_EQ(users->lookup("alice").kind, UserLookup::Kind::kFound);
  EXPECT_EQ(users->lookup("bob").kind, UserLookup::Kind::kUnknown);

  auto store = *UserStore::load(path);
  store.set("bob", *parse_verifier(kVerifier));
  store.set_disabled("alice", true);
  ASSERT_TRUE(store.write(path));
  now += std::chrono::seconds(1);  // within the interval: not looked at yet
  EXPECT_EQ(users->lookup("bob").kind, UserLookup::Kind::kUnknown);
  now += std::chrono::seconds(2);
  EXPECT_EQ(users->lookup("bob").kind, UserLookup::Kind::kFound);
  EXPECT_EQ(users->lookup("alice").kind, UserLookup::Kind::kDisabled);
  EXPECT_EQ(users->reloads(), 1u);

  // A broken edit keeps the users it had and says why.
  write_file(path, "broken\n", 0600);
  now += std::chrono::seconds(3);
  EXPECT_EQ(users->lookup("bob").kind, UserLookup::Kind::kFound);
  ASSERT_TRUE(users->last_reload_error());
  EXPECT_NE(users->last_reload_error()->find("line 1"), std::string::npos);
}

TEST(UserDirectoryReload, ReloadReadsTheFileAtOnceAndKeepsTheUsersOnAnError) {
  TemporaryDirectory directory;
  const fs::path path = directory.path() / "users";
  write_file(path, "alice " + kVerifier + "\n", 0600);
  auto now = std::chrono::steady_clock::time_point{};
  auto users = *UserDirectory::open(
      path, [&] { return now; }, std::chrono::hours(1));
  auto store = *UserStore::load(path);
  store.set_disabled("alice", true);
  ASSERT_TRUE(store.write(path));
  // Within the check interval the automatic reload would not look; reload() does.
  ASSERT_TRUE(users->reload());
  EXPECT_EQ(users->lookup("alice").kind, UserLookup::Kind::kDisabled);
  EXPECT_EQ(users->reloads(), 1u);

  write_file(path, "broken\n", 0600);
  const auto failed = users->reload();
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().find("line 1"), std::string::npos) << failed.error();
  EXPECT_EQ(users->lookup("alice").kind, UserLookup::Kind::kDisabled);
  // In memory only: nothing to read.
  UserDirectory memory{UserStore{}};
  EXPECT_TRUE(memory.reload());
}

}  // namespace
}  // namespace tether::auth
