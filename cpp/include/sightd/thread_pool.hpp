// A fixed pool of worker threads for data-parallel loops (decoding and preprocessing the images of a batch).
// The calling thread takes part in its own loop, so loops issued from many threads at once never deadlock
// and a pool of size 0 simply runs everything on the caller.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace sightd {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // worker threads besides the callers; 0 is allowed
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const noexcept;

  // Calls body(i) for every i in [0, count), spread over the workers and the calling thread, and returns
  // when all calls have returned. The first exception thrown by a body is rethrown here (the other
  // iterations still run to completion).
  void parallel_for(std::size_t count, const std::function<void(std::size_t)>& body);

  // The process-wide pool (hardware concurrency - 1 workers, at least 0), created on first use.
  static std::shared_ptr<ThreadPool> shared();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sightd
