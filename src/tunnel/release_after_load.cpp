#include "tunnel/release_after_load.hpp"

#include <spdlog/spdlog.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace tether::tunnel {

void ReleaseAfterLoad::ended() {
  if (++ended_ < kEndedBeforeCheck || armed_) return;
  armed_ = true;
  timer_.expires_after(kDelay);
  timer_.async_wait([this](std::error_code error) {
    armed_ = false;
    if (!error) check();
  });
}

void ReleaseAfterLoad::check() {
  ended_ = 0;
#if defined(__GLIBC__)
  const auto before = ::mallinfo2();
  if (before.fordblks < kFreeBeforeTrim) return;
  ::malloc_trim(0);
  ++trims_;
  spdlog::debug("returned free memory to the system: {} KiB of the heap were free",
                before.fordblks >> 10);
#endif
}

}  // namespace tether::tunnel
