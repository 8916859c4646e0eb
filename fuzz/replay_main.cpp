// Runs a libFuzzer entry point over corpus files without libFuzzer, so that any compiler can replay
// a corpus: each argument is a file or a directory whose regular files (recursively) are inputs.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// Optional, as in libFuzzer: a target may define it to set itself up once.
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

bool run_file(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "replay: cannot read %s\n", path.c_str());
    return false;
  }
  std::vector<char> contents((std::istreambuf_iterator<char>(file)),
                             std::istreambuf_iterator<char>());
  // An exactly sized heap copy, so that AddressSanitizer catches a read past the input's end.
  std::vector<std::uint8_t> input(contents.begin(), contents.end());
  LLVMFuzzerTestOneInput(input.data(), input.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIRECTORY...\n", argv[0]);
    return 2;
  }
  std::size_t ran = 0;
  for (int index = 1; index < argc; ++index) {
    const std::filesystem::path root(argv[index]);
    std::error_code error;
    if (std::filesystem::is_directory(root, error)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());  // a stable order makes failures reproducible
      for (const auto& file : files) {
        if (!run_file(file)) return 1;
        ++ran;
      }
    } else if (std::filesystem::is_regular_file(root, error)) {
      if (!run_file(root)) return 1;
      ++ran;
    } else {
      std::fprintf(stderr, "replay: %s is neither a file nor a directory\n", root.c_str());
      return 1;
    }
  }
  std::printf("replay: ran %zu inputs\n", ran);
  // An empty corpus would make a passing test that checks nothing.
  return ran > 0 ? 0 : 1;
}
