// Tests of what tether trusts locally and what it prints (issue #12, items 9 and 10): the file
// rules (file_safety), the known-servers file and control socket built on them, the `tether status`
// client against sockets that answer anything, and log escaping and rate limiting.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/support/temporary_directory.hpp"
#include "transport/file_safety.hpp"
#include "transport/known_servers.hpp"
#include "transport/log_safety.hpp"
#include "transport/status.hpp"

namespace tether::transport {
namespace {

namespace fs = std::filesystem;
using tether::testing::TemporaryDirectory;

constexpr uid_t kOtherUser = 65534;  // nobody

unsigned mode_of(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::lstat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777u;
}

void write_file(const fs::path& path, const std::string& text, mode_t mode) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

// The directory's own mode bits set exactly (TemporaryDirectory makes it with the umask's).
void set_mode(const fs::path& path, mode_t mode) {
  ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

#define SKIP_UNLESS_ROOT() \
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown to another user"

// ---- File rules
// ----------------------------------------------------------------------------------

TEST(FileSafety, ReadsAFileOnlyTheUserCanWrite) {
  TemporaryDirectory temporary;
  set_mode(temporary.path(), 0700);
  write_file(temporary.path() / "file", "contents", 0644);
  auto read = read_trusted_file(temporary.path() / "file");
  ASSERT_TRUE(read) << read.error();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ(**read, "contents");
  auto missing = read_trusted_file(temporary.path() / "absent");
  ASSERT_TRUE(missing) << missing.error();
  EXPECT_FALSE(missing->has_value());
}

TEST(FileSafety, RefusesAGroupOrWorldWritableFile) {
  TemporaryDirectory temporary;
  set_mode(temporary.path(), 0700);
  for (const mode_t mode : {0620, 0602, 0666}) {
    const fs::path file = temporary.path() / "file";
    write_file(file, "x", mode);
    auto read = read_trusted_file(file);
    ASSERT_FALSE(read) << std::oct << mode;
    EXPECT_TRUE(contains(read.error(), "refusing " + file.string())) << read.error();
    EXPECT_TRUE(contains(read.error(), "writable by group or others")) << read.error();
  }
}

TEST(FileSafety, RefusesAFileInAWritableDirectoryButAcceptsAStickyOne) {
  TemporaryDirectory temporary;
  const fs::path directory = temporary.path() / "shared";
  fs::create_directory(directory);
  write_file(directory / "file", "x", 0600);
  set_mode(directory, 0777);
  auto read = read_trusted_file(directory / "file");
  ASSERT_FALSE(read);
  EXPECT_TRUE(contains(read.error(), directory.string() + " is writable by group or others"))
      << read.error();
  EXPECT_TRUE(contains(read.error(), "mode 0777")) << read.error();
  // Like /tmp: others may add entries, but not rename or remove ours.
  set_mode(directory, 01777);
  EXPECT_TRUE(check_path_safety(directory / "file"));
  // A directory two levels up counts too.
  set_mode(directory, 0755);
  fs::create_directory(directory / "inner");
  write_file(directory / "inner" / "file", "x", 0600);
  set_mode(directory, 0775);
  EXPECT_FALSE(check_path_safety(directory / "inner" / "file"));
  // A file that does not exist yet: the directories it would be created in are checked.
  EXPECT_FALSE(check_path_safety(directory / "inner" / "not-yet" / "file"));
}

TEST(FileSafety, RefusesAFileOrDirectoryOwnedByAnotherUser) {
  SKIP_UNLESS_ROOT();
  TemporaryDirectory temporary;
  const fs::path file = temporary.path() / "file";
  write_file(file, "x", 0644);
  ASSERT_EQ(::chown(file.c_str(), kOtherUser, kOtherUser), 0);
  auto read = read_trusted_file(file);
  ASSERT_FALSE(read);
  EXPECT_TRUE(contains(read.error(), "is owned by uid 65534, not by you")) << read.error();

  ASSERT_EQ(::chown(file.c_str(), 0, 0), 0);
  ASSERT_EQ(::chown(temporary.path().c_str(), kOtherUser, kOtherUser), 0);
  auto in_theirs = check_path_safety(file);
  ASSERT_FALSE(in_theirs);
  EXPECT_TRUE(contains(in_theirs.error(), temporary.path().string() + " is owned by uid 65534"))
      << in_theirs.error();
}

TEST(FileSafety, ChecksTheRealPathBehindASymbolicLink) {
  TemporaryDirectory temporary;
  set_mode(temporary.path(), 0700);
  const fs::path shared = temporary.path() / "shared";
  fs::create_directory(shared);
  write_file(shared / "real", "x", 0600);
  fs::create_symlink(shared / "real", temporary.path() / "link");
  EXPECT_TRUE(read_trusted_file(temporary.path() / "link"));
  set_mode(shared, 0777);
  auto through_link = read_trusted_file(temporary.path() / "link");
  ASSERT_FALSE(through_link);
  EXPECT_TRUE(contains(through_link.error(), shared.string() + " is writable"))
      << through_link.error();
  // A file of tether's own is never reached through a link.
  set_mode(shared, 0700);
  auto not_followed =
      read_trusted_file(temporary.path() / "link", TrustedFileOptions{.follow_symlinks = false});
  ASSERT_FALSE(not_followed);
  EXPECT_TRUE(contains(not_followed.error(), "is a symbolic link")) << not_followed.error();
}

TEST(FileSafety, SecretsMustBePrivateAndFilesBoundedAndRegular) {
  TemporaryDirectory temporary;
  const fs::path key = temporary.path() / "key.pem";
  write_file(key, "secret", 0640);
  auto exposed = read_trusted_file(key, TrustedFileOptions{.secret = true});
  ASSERT_FALSE(exposed);
  EXPECT_TRUE(contains(exposed.error(), "group or others may read it (mode 0640"))
      << exposed.error();
  set_mode(key, 0600);
  EXPECT_TRUE(read_trusted_file(key, TrustedFileOptions{.secret = true}));

  write_file(temporary.path() / "big", std::string(100, 'x'), 0600);
  auto big = read_trusted_file(temporary.path() / "big", TrustedFileOptions{.max_bytes = 99});
  ASSERT_FALSE(big);
  EXPECT_TRUE(contains(big.error(), "larger than 99 bytes")) << big.error();

  // A FIFO neither blocks the open nor passes for a file.
  ASSERT_EQ(::mkfifo((temporary.path() / "fifo").c_str(), 0600), 0);
  auto fifo = read_trusted_file(temporary.path() / "fifo");
  ASSERT_FALSE(fifo);
  EXPECT_TRUE(contains(fifo.error(), "not a regular file")) << fifo.error();
}

TEST(FileSafety, CreateSecretFileNeverFollowsALink) {
  TemporaryDirectory temporary;
  const fs::path target = temporary.path() / "victim";
  const fs::path link = temporary.path() / "reset.key";
  fs::create_symlink(target, link);  // dangling: O_CREAT alone would create `victim`
  auto created = create_secret_file(link, "0123456789abcdef0123456789abcdef");
  ASSERT_FALSE(created);
  EXPECT_TRUE(contains(created.error(), "cannot create " + link.string())) << created.error();
  EXPECT_FALSE(fs::exists(fs::symlink_status(target)));

  const fs::path fresh = temporary.path() / "fresh.key";
  ASSERT_TRUE(create_secret_file(fresh, "abc"));
  EXPECT_EQ(mode_of(fresh), 0600u);
  EXPECT_FALSE(create_secret_file(fresh, "again"));  // never overwritten
}

TEST(FileSafety, PrivateDirectoryIsCreatedOrMustAlreadyBeOurs) {
  TemporaryDirectory temporary;
  const fs::path directory = temporary.path() / "tether-0";
  ASSERT_TRUE(ensure_private_directory(directory));
  EXPECT_EQ(mode_of(directory), 0700u);
  EXPECT_TRUE(ensure_private_directory(directory));

  set_mode(directory, 0755);
  auto open_to_others = ensure_private_directory(directory);
  ASSERT_FALSE(open_to_others);
  EXPECT_TRUE(contains(open_to_others.error(), "group or others may use it (mode 0755)"))
      << open_to_others.error();
  EXPECT_EQ(mode_of(directory), 0755u);  // reported, not changed

  fs::remove(directory);
  fs::create_directory(temporary.path() / "elsewhere");
  fs::create_symlink(temporary.path() / "elsewhere", directory);
  auto link = ensure_private_directory(directory);
  ASSERT_FALSE(link);
  EXPECT_TRUE(contains(link.error(), "symbolic link")) << link.error();
  EXPECT_FALSE(ensure_private_directory(temporary.path() / "absent", /*create=*/false));
}

TEST(FileSafety, PrivateDirectoryMadeByAnotherUserIsRefused) {
  SKIP_UNLESS_ROOT();
  TemporaryDirectory temporary;
  set_mode(temporary.path(), 01777);  // like /tmp
  const fs::path directory = temporary.path() / "tether-0";
  fs::create_directory(directory);
  set_mode(directory, 0700);
  ASSERT_EQ(::chown(directory.c_str(), kOtherUser, kOtherUser), 0);
  auto theirs = ensure_private_directory(directory);
  ASSERT_FALSE(theirs);
  EXPECT_TRUE(contains(theirs.error(), "owned by uid 65534")) << theirs.error();
  EXPECT_TRUE(contains(theirs.error(), "another user may have made it")) << theirs.error();
}

TEST(FileSafety, SafeDirectoryIsUsedAsItIs) {
  TemporaryDirectory temporary;
  const fs::path shared = temporary.path() / "x";
  fs::create_directory(shared);
  set_mode(shared, 0755);
  ASSERT_TRUE(ensure_safe_directory(shared));
  EXPECT_EQ(mode_of(shared), 0755u);
  set_mode(shared, 01777);
  ASSERT_TRUE(ensure_safe_directory(shared));
  EXPECT_EQ(mode_of(shared), 01777u);
  set_mode(shared, 0777);
  auto writable = ensure_safe_directory(shared);
  ASSERT_FALSE(writable);
  EXPECT_TRUE(contains(writable.error(), "writable by group or others")) << writable.error();
  EXPECT_EQ(mode_of(shared), 0777u);
  set_mode(shared, 0755);
  ASSERT_TRUE(ensure_safe_directory(shared / "a" / "b"));
  EXPECT_EQ(mode_of(shared / "a"), 0700u);
  EXPECT_EQ(mode_of(shared / "a" / "b"), 0700u);
}

// ---- Files built on the rules
// --------------------------------------------------------------------

TEST(KnownServersSafety, AFileOthersCanWriteIsRefusedWithTheReason) {
  TemporaryDirectory temporary;
  const fs::path path = temporary.path() / "known_servers";
  write_file(path, "server:7443 sha256:" + std::string(64, 'a') + "\n", 0620);
  auto known = KnownServers::load(path);
  ASSERT_FALSE(known);
  EXPECT_EQ(known.error(), "refusing " + path.string() +
                               ": it is writable by group or others (mode 0620; chmod go-w fixes "
                               "it)");
  set_mode(path, 0600);
  ASSERT_TRUE(KnownServers::load(path));
  set_mode(temporary.path(), 0777);
  auto in_shared = KnownServers::load(path);
  ASSERT_FALSE(in_shared);
  EXPECT_TRUE(contains(in_shared.error(), temporary.path().string() + " is writable"))
      << in_shared.error();
  // Nor is one written there.
  set_mode(temporary.path(), 0777);
  auto fresh = KnownServers::load(temporary.path() / "new");
  EXPECT_FALSE(fresh);
}

TEST(ControlSocketSafety, NeverChangesTheModeOfAGivenDirectory) {
  TemporaryDirectory temporary;
  const fs::path shared = temporary.path() / "x";
  fs::create_directory(shared);
  set_mode(shared, 0755);
  asio::io_context io;
  {
    ControlSocket control(io, shared / "t.sock", [] { return nlohmann::json::object(); });
    auto started = control.start();
    ASSERT_TRUE(started) << started.error();
    EXPECT_EQ(mode_of(shared), 0755u);  // the old code made it 0700
    EXPECT_EQ(mode_of(shared / "t.sock"), 0600u);
  }
  set_mode(shared, 0777);
  ControlSocket refused(io, shared / "t.sock", [] { return nlohmann::json::object(); });
  auto started = refused.start();
  ASSERT_FALSE(started);
  EXPECT_TRUE(contains(started.error(), "writable by group or others")) << started.error();
  EXPECT_EQ(mode_of(shared), 0777u);
}

TEST(ControlSocketSafety, ARegularFileInTheWayIsNotRemoved) {
  TemporaryDirectory temporary;
  const fs::path path = temporary.path() / "notes.txt";
  write_file(path, "mine", 0600);
  asio::io_context io;
  ControlSocket control(io, path, [] { return nlohmann::json::object(); });
  auto started = control.start();
  ASSERT_FALSE(started);
  EXPECT_TRUE(contains(started.error(), "not a socket")) << started.error();
  EXPECT_TRUE(fs::exists(path));
}

// ---- `tether status` against sockets that answer anything
// ----------------------------------------

// A Unix socket that answers the first connection with `answer` and then closes it, or (hold) keeps
// it open without a word until the client leaves.
class FakeControlSocket {
 public:
  FakeControlSocket(const fs::path& path, std::string answer, bool hold = false)
      : answer_(std::move(answer)), hold_(hold) {
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.native().copy(address.sun_path, sizeof address.sun_path - 1);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::listen(listener_, 4), 0);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeControlSocket() {
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }

 private:
  void serve() {
    const int connection = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) return;
    char byte = 0;
    while (::read(connection, &byte, 1) == 1 && byte != '\n') {
    }
    if (!hold_) {
      std::string_view rest = answer_;
      while (!rest.empty()) {
        const ssize_t sent = ::send(connection, rest.data(), rest.size(), MSG_NOSIGNAL);
        if (sent <= 0) break;  // the client stopped reading
        rest.remove_prefix(static_cast<std::size_t>(sent));
      }
    } else {
      while (::read(connection, &byte, 1) > 0) {
      }
    }
    ::close(connection);
  }

  std::string answer_;
  bool hold_;
  int listener_ = -1;
  std::thread thread_;
};

std::string query_error(const fs::path& socket, const std::string& answer) {
  FakeControlSocket fake(socket, answer);
  auto status = query_control_socket(socket, "status", std::chrono::seconds(5));
  EXPECT_FALSE(status) << answer.substr(0, 64);
  return status ? std::string() : status.error();
}

TEST(StatusClient, RefusesGarbageOversizeDeepAndNonObjectAnswers) {
  TemporaryDirectory temporary;
  const fs::path socket = temporary.path() / "fake.sock";
  EXPECT_TRUE(contains(query_error(socket, "hello\x1b[2J"), "is not JSON"));
  fs::remove(socket);
  EXPECT_TRUE(contains(query_error(socket, "{\"role\": "), "is not JSON"));
  fs::remove(socket);
  EXPECT_TRUE(contains(query_error(socket, "[1, 2]"), "is not a JSON object"));
  fs::remove(socket);
  EXPECT_TRUE(contains(query_error(socket, "{\"a\": \"" + std::string(9u << 20, 'x') + "\"}"),
                       "larger than 8 MiB; refused"));
  fs::remove(socket);
  EXPECT_TRUE(contains(query_error(socket, std::string(100000, '[') + std::string(100000, ']')),
                       "nests deeper than 16 levels"));
}

TEST(StatusClient, GivesUpOnASocketThatNeverAnswers) {
  TemporaryDirectory temporary;
  const fs::path socket = temporary.path() / "silent.sock";
  FakeControlSocket fake(socket, "", /*hold=*/true);
  auto status = query_control_socket(socket, "status", std::chrono::milliseconds(200));
  ASSERT_FALSE(status);
  EXPECT_TRUE(
      contains(status.error(), "no complete answer from " + socket.string() + " within 200 ms"))
      << status.error();
}

TEST(StatusClient, PrintsHostileFieldsEscapedAndNeverThrows) {
  TemporaryDirectory temporary;
  const fs::path socket = temporary.path() / "hostile.sock";
  FakeControlSocket fake(socket, R"({"role": "client", "pid": "many",
      "server": "\u001b]0;owned\u0007\u001b[2J\nfake line\u009b",
      "sessions": [1, "x", null, {"id": 5, "state": {"a": 1}, "rtt_ms": "fast",
                   "current_outage_ms": [1], "streams": -3, "bytes_written": 1e300,
                   "resumes": 2.5}]})");
  auto status = query_control_socket(socket, "status", std::chrono::seconds(5));
  ASSERT_TRUE(status) << status.error();
  std::string text;
  ASSERT_NO_THROW(text = format_status(*status));
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_TRUE(
      contains(text, "server \\x1b]0;owned\\x07\\x1b[2J\\x0afake line\\xc2\\x9b, 4 sessions"))
      << text;
  EXPECT_TRUE(contains(text, "client (pid 0)")) << text;
  EXPECT_TRUE(contains(text, "session ? ?, rtt -, 0 streams")) << text;
  EXPECT_TRUE(contains(text, "resumes 2,")) << text;
  // Only newlines we wrote: a header and three lines per session.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1 + 4 * 3) << text;
  // The --json rendering is ASCII and parses back.
  const std::string json = status->dump(2, ' ', true, nlohmann::json::error_handler_t::replace);
  EXPECT_TRUE(std::all_of(json.begin(), json.end(),
                          [](char c) { return c == '\n' || (c >= 0x20 && c <= 0x7e); }));
  EXPECT_FALSE(nlohmann::json::parse(json, nullptr, false).is_discarded());

  for (const char* document : {R"({"error": 5})", R"({"sessions": 7})", R"({"sessions": {}})",
                               R"({"role": null, "sessions": [[[]]]})"}) {
    ASSERT_NO_THROW((void)format_status(nlohmann::json::parse(document))) << document;
  }
}

// ---- Log escaping and rate limiting
// --------------------------------------------------------------

TEST(EscapeForLog, KeepsPrintableAsciiAndEscapesEverythingElse) {
  EXPECT_EQ(escape_for_log("db.internal:5432"), "db.internal:5432");
  EXPECT_EQ(escape_for_log(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(escape_for_log("line\nfake [warn] line\r"), "line\\x0afake [warn] line\\x0d");
  EXPECT_EQ(escape_for_log("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
  EXPECT_EQ(escape_for_log("back\\slash"), "back\\\\slash");  // so \x41 in the input stays apart
  EXPECT_EQ(escape_for_log("caf\xc3\xa9 \x7f"), "caf\\xc3\\xa9 \\x7f");
  EXPECT_EQ(escape_for_log(""), "");
}

TEST(EscapeForLog, AMaximalHostOfEveryByteBecomesOnePrintableLine) {
  std::string host;
  for (int byte = 1; byte <= 255; ++byte) host += static_cast<char>(byte);
  const std::string escaped = escape_for_log(host);
  EXPECT_TRUE(
      std::all_of(escaped.begin(), escaped.end(), [](char c) { return c >= 0x20 && c <= 0x7e; }));
  // 94 printable bytes other than the backslash stay, the backslash doubles, 160 become \xNN.
  EXPECT_EQ(escaped.size(), 94u + 2u + 160u * 4u);
  EXPECT_LE(escaped.size(), 4 * host.size());
}

TEST(LogRateLimiter, HoldsBackRepeatsAndCountsThemInTheNextLine) {
  LogRateLimiter limiter(3, std::chrono::seconds(10));
  const auto start = LogRateLimiter::Clock::time_point{} + std::chrono::hours(1);
  for (int line = 0; line < 3; ++line) {
    const auto decision = limiter.admit("refused target", start);
    EXPECT_TRUE(decision.log);
    EXPECT_EQ(decision.suppressed, 0u);
  }
  for (int line = 0; line < 1000; ++line)
    EXPECT_FALSE(limiter.admit("refused target", start + std::chrono::seconds(9)).log);
  EXPECT_TRUE(limiter.admit("bad request", start).log);  // kinds are counted apart
  const auto next = limiter.admit("refused target", start + std::chrono::seconds(10));
  EXPECT_TRUE(next.log);
  EXPECT_EQ(next.suppressed, 1000u);
  EXPECT_EQ(limiter.admit("refused target", start + std::chrono::seconds(11)).suppressed, 0u);
}

}  // namespace
}  // namespace tether::transport
