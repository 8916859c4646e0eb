// WorkerPool is a fixed set of threads that run CPU-bound jobs (PLAIN's PBKDF2) off the runtime's
// event loop, with a bounded queue: a job offered when the queue is full is refused at once, never
// queued without bound.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tether::transport {

class WorkerPool {
 public:
  // `threads` workers (at least 1) and at most `queue_capacity` jobs waiting (at least 1).
  WorkerPool(std::size_t threads, std::size_t queue_capacity);
  // Stops the workers: jobs still queued are dropped unrun, running ones finish first.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job` for a worker; false (and `job` is dropped) when the queue is full or the pool is
  // stopping. A job must not throw (an exception from it is swallowed) and must not wait for the
  // thread that submitted it.
  [[nodiscard]] bool try_submit(std::function<void()> job);

  // hardware_concurrency() - 1 (the event loop keeps a core), at least 1.
  [[nodiscard]] static std::size_t default_threads();

  [[nodiscard]] std::size_t thread_count() const { return workers_.size(); }
  [[nodiscard]] std::size_t queue_capacity() const { return capacity_; }

 private:
  void work();

  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;  // last: started once the rest is ready, joined first
};

}  // namespace tether::transport
