#include "sightd/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sightd/error.hpp"

namespace sightd {

namespace {

constexpr int kMaxThreads = 1024;

// One parallel_for call: indices are claimed with an atomic counter by the caller and any idle worker.
struct Loop {
  const std::function<void(std::size_t)>* body = nullptr;
  std::size_t count = 0;
  std::atomic<std::size_t> next{0};
  std::size_t finished = 0;  // guarded by mutex
  std::exception_ptr error;  // guarded by mutex
  std::mutex mutex;
  std::condition_variable all_finished;

  // Runs iterations until none is left to claim.
  void work() {
    std::size_t ran = 0;
    std::exception_ptr first_error;
    for (std::size_t i = next.fetch_add(1); i < count; i = next.fetch_add(1)) {
      try {
        (*body)(i);
      } catch (...) {
        if (!first_error) first_error = std::current_exception();
      }
      ++ran;
    }
    if (ran == 0) return;
    std::lock_guard<std::mutex> lock(mutex);
    // Hand the exception over under the lock and keep no reference to it: the caller then owns it alone and
    // it is destroyed in the caller's thread (exception_ptr's reference count lives in the uninstrumented
    // libstdc++, which ThreadSanitizer would otherwise not see ordered).
    if (first_error && !error) error = std::move(first_error);
    first_error = nullptr;
    finished += ran;
    if (finished == count) all_finished.notify_all();
  }
};

}  // namespace

struct ThreadPool::Impl {
  std::mutex mutex;
  std::condition_variable has_work;
  std::deque<std::shared_ptr<Loop>> loops;
  std::vector<std::thread> workers;
  bool stopping = false;

  void worker_main() {
    for (;;) {
      std::shared_ptr<Loop> loop;
      {
        std::unique_lock<std::mutex> lock(mutex);
        has_work.wait(lock, [this] { return stopping || !loops.empty(); });
        if (stopping) return;
        loop = loops.front();
        // Every index is claimed by now or will be by the threads already in it: take it off the queue.
        if (loop->next.load() >= loop->count) {
          loops.pop_front();
          continue;
        }
      }
      loop->work();
      std::lock_guard<std::mutex> lock(mutex);
      if (!loops.empty() && loops.front() == loop) loops.pop_front();
    }
  }
};

ThreadPool::ThreadPool(int threads) : impl_(std::make_unique<Impl>()) {
  if (threads < 0 || threads > kMaxThreads) {
    throw_invalid_argument("threads", "must be in 0.." + std::to_string(kMaxThreads));
  }
  for (int i = 0; i < threads; ++i) impl_->workers.emplace_back([impl = impl_.get()] { impl->worker_main(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->has_work.notify_all();
  for (auto& worker : impl_->workers) worker.join();
}

int ThreadPool::size() const noexcept { return static_cast<int>(impl_->workers.size()); }

void ThreadPool::parallel_for(std::size_t count, const std::function<void(std::size_t)>& body) {
  if (count == 0) return;
  if (count == 1 || impl_->workers.empty()) {
    // Same contract as the parallel path: every iteration runs, the first exception comes out at the end.
    std::exception_ptr first_error;
    for (std::size_t i = 0; i < count; ++i) {
      try {
        body(i);
      } catch (...) {
        if (!first_error) first_error = std::current_exception();
      }
    }
    if (first_error) std::rethrow_exception(first_error);
    return;
  }
  auto loop = std::make_shared<Loop>();
  loop->body = &body;
  loop->count = count;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->loops.push_back(loop);
  }
  impl_->has_work.notify_all();
  loop->work();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(loop->mutex);
    loop->all_finished.wait(lock, [&] { return loop->finished == loop->count; });
    error = std::move(loop->error);
    loop->error = nullptr;
  }
  if (error) std::rethrow_exception(error);
}

std::shared_ptr<ThreadPool> ThreadPool::shared() {
  static std::shared_ptr<ThreadPool> pool = [] {
    const int cores = static_cast<int>(std::thread::hardware_concurrency());
    return std::make_shared<ThreadPool>(std::max(0, cores - 1));
  }();
  return pool;
}

}  // namespace sightd
