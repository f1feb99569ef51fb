// Checks sightd::ThreadPool under real threads: every index runs exactly once, loops issued from several
// threads at once, nested loops on the same pool, exceptions (rethrown once every iteration has run), pools
// of size 0, invalid sizes. tests/core/test_thread_pool.py builds it with ThreadSanitizer and runs it; it
// exits non-zero with a message on the first failed check. A watchdog turns a deadlock into a failure.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "sightd/error.hpp"
#include "sightd/thread_pool.hpp"

namespace {

int checks = 0;

void check(bool condition, const std::string& what) {
  ++checks;
  if (!condition) {
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
    std::exit(1);
  }
}

void each_index_once(sightd::ThreadPool& pool, std::size_t count, const std::string& label) {
  std::vector<std::atomic<int>> hits(count);
  pool.parallel_for(count, [&](std::size_t i) { hits[i].fetch_add(1); });
  for (std::size_t i = 0; i < count; ++i) {
    check(hits[i].load() == 1, label + ": index " + std::to_string(i) + " ran " + std::to_string(hits[i].load()) +
                                   " times");
  }
}

void exceptions(sightd::ThreadPool& pool, const std::string& label) {
  for (std::size_t count : {std::size_t{1}, std::size_t{2}, std::size_t{97}}) {
    std::atomic<std::size_t> ran{0};
    std::string message;
    try {
      pool.parallel_for(count, [&](std::size_t i) {
        ran.fetch_add(1);
        if (i % 10 == 0) throw std::runtime_error("boom " + std::to_string(i));
      });
    } catch (const std::runtime_error& error) {
      message = error.what();
    }
    check(message.rfind("boom ", 0) == 0, label + ": the body's exception comes out (count " +
                                              std::to_string(count) + ")");
    check(ran.load() == count, label + ": every iteration ran despite the exceptions (" +
                                   std::to_string(ran.load()) + " of " + std::to_string(count) + ")");
  }
}

void nested(sightd::ThreadPool& pool, const std::string& label) {
  constexpr std::size_t kOuter = 12;
  constexpr std::size_t kInner = 64;
  std::vector<std::atomic<long>> sums(kOuter);
  pool.parallel_for(kOuter, [&](std::size_t o) {
    pool.parallel_for(kInner, [&](std::size_t i) { sums[o].fetch_add(static_cast<long>(i + 1)); });
  });
  for (std::size_t o = 0; o < kOuter; ++o) {
    check(sums[o].load() == static_cast<long>(kInner * (kInner + 1) / 2), label + ": nested loop " + std::to_string(o));
  }
  // An exception thrown in an inner loop reaches the outer caller.
  bool caught = false;
  try {
    pool.parallel_for(4, [&](std::size_t o) {
      pool.parallel_for(8, [&](std::size_t i) {
        if (o == 2 && i == 5) throw std::out_of_range("inner");
      });
    });
  } catch (const std::out_of_range& error) {
    caught = std::string(error.what()) == "inner";
  }
  check(caught, label + ": an inner loop's exception reaches the outer caller");
}

void concurrent_callers(sightd::ThreadPool& pool, const std::string& label) {
  constexpr int kCallers = 6;
  std::atomic<int> failures{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int round = 0; round < 20; ++round) {
        const std::size_t count = static_cast<std::size_t>(1 + (c * 7 + round * 13) % 50);
        std::vector<int> values(count, 0);  // each index written by one iteration only
        pool.parallel_for(count, [&](std::size_t i) { values[i] = static_cast<int>(i) * c; });
        for (std::size_t i = 0; i < count; ++i) {
          if (values[i] != static_cast<int>(i) * c) failures.fetch_add(1);
        }
      }
    });
  }
  for (auto& caller : callers) caller.join();
  check(failures.load() == 0, label + ": loops issued from " + std::to_string(kCallers) + " threads at once");
}

void all(sightd::ThreadPool& pool) {
  const std::string label = "pool of " + std::to_string(pool.size());
  each_index_once(pool, 0, label);
  each_index_once(pool, 1, label);
  each_index_once(pool, 1000, label);
  exceptions(pool, label);
  nested(pool, label);
  concurrent_callers(pool, label);
}

}  // namespace

int main() {
  std::signal(SIGALRM, [](int) {
    const char message[] = "FAILED: deadlock (watchdog)\n";
    [[maybe_unused]] auto written = ::write(2, message, sizeof(message) - 1);
    std::_Exit(2);
  });
  ::alarm(120);

  for (int threads : {0, 1, 3}) {
    sightd::ThreadPool pool(threads);
    check(pool.size() == threads, "size() is the number of workers");
    all(pool);
  }
  all(*sightd::ThreadPool::shared());
  check(sightd::ThreadPool::shared() == sightd::ThreadPool::shared(), "shared() is one pool");

  for (int threads : {-1, 100000}) {
    bool refused = false;
    try {
      sightd::ThreadPool pool(threads);
    } catch (const sightd::Error& error) {
      refused = error.code() == sightd::ErrorCode::kInvalidArgument && error.field() == "threads";
    }
    check(refused, "ThreadPool(" + std::to_string(threads) + ") is refused");
  }
  // Pools come and go while idle.
  for (int i = 0; i < 20; ++i) {
    sightd::ThreadPool pool(2);
    each_index_once(pool, 16, "short-lived pool");
  }
  std::printf("ok: %d checks\n", checks);
  return 0;
}
