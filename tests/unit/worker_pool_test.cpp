// Tests of WorkerPool, the bounded pool that runs PLAIN's PBKDF2 off the server's event loop: jobs
// run on its threads, a full queue refuses a job at once (never queues it without bound), and
// stopping drops the jobs still queued.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "transport/worker_pool.hpp"

namespace tether::transport {
namespace {

// A gate the test opens: jobs that wait on it hold their worker.
struct Gate {
  std::mutex mutex;
  std::condition_variable opened_signal;
  bool opened = false;
  void wait() {
    std::unique_lock lock(mutex);
    opened_signal.wait(lock, [this] { return opened; });
  }
  void open() {
    {
      std::lock_guard lock(mutex);
      opened = true;
    }
    opened_signal.notify_all();
  }
};

TEST(WorkerPool, RunsJobsOnItsOwnThreads) {
  WorkerPool pool(2, 8);
  EXPECT_EQ(pool.thread_count(), 2u);
  std::promise<std::thread::id> ran;
  ASSERT_TRUE(pool.try_submit([&] { ran.set_value(std::this_thread::get_id()); }));
  EXPECT_NE(ran.get_future().get(), std::this_thread::get_id());
}

TEST(WorkerPool, AFullQueueRefusesAtOnce) {
  WorkerPool pool(1, 2);
  Gate gate;
  std::promise<void> started;
  std::atomic<int> finished{0};
  ASSERT_TRUE(pool.try_submit([&] {
    started.set_value();
    gate.wait();
    ++finished;
  }));
  started.get_future().wait();  // the only worker is busy
  EXPECT_TRUE(pool.try_submit([&] { ++finished; }));
  EXPECT_TRUE(pool.try_submit([&] { ++finished; }));
  EXPECT_FALSE(pool.try_submit([&] { ++finished; }));  // two waiting: the queue is full
  gate.open();
  while (finished.load() < 3) std::this_thread::yield();
  EXPECT_TRUE(pool.try_submit([] {}));  // room again
}

TEST(WorkerPool, StoppingDropsQueuedJobsAndWaitsForTheRunningOne) {
  Gate gate;
  std::promise<void> started;
  std::atomic<int> runs{0};
  std::thread opener;
  {
    WorkerPool pool(1, 4);
    ASSERT_TRUE(pool.try_submit([&] {
      started.set_value();
      gate.wait();
      ++runs;
    }));
    started.get_future().wait();
    ASSERT_TRUE(pool.try_submit([&] { ++runs; }));
    opener = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      gate.open();
    });
  }  // the destructor waits for the running job, and drops the queued one
  opener.join();
  EXPECT_EQ(runs.load(), 1);
}

TEST(WorkerPool, AtLeastOneThreadAndOneQueuedJob) {
  WorkerPool pool(0, 0);
  EXPECT_EQ(pool.thread_count(), 1u);
  EXPECT_EQ(pool.queue_capacity(), 1u);
  EXPECT_GE(WorkerPool::default_threads(), 1u);
}

}  // namespace
}  // namespace tether::transport
