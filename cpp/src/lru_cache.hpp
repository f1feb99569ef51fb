// Internal to the core: a small thread-safe cache of immutable values, least recently used out first.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

namespace sightd::detail {

template <typename Key, typename Value>
class LruCache {
 public:
  explicit LruCache(std::size_t capacity) : capacity_(capacity) {}

  // The value for `key`, made by `make()` (returning a Value) when missing. `make` runs outside the lock:
  // two threads may both make a new key's value once; either result is kept, both are equal.
  template <typename Make>
  std::shared_ptr<const Value> get(const Key& key, Make&& make) const {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = entries_.find(key);
      if (found != entries_.end()) {
        found->second.first = ++clock_;
        return found->second.second;
      }
    }
    auto value = std::make_shared<const Value>(make());
    std::lock_guard<std::mutex> lock(mutex_);
    if (entries_.size() >= capacity_ && entries_.find(key) == entries_.end()) {
      const auto older = [](const auto& a, const auto& b) { return a.second.first < b.second.first; };
      entries_.erase(std::min_element(entries_.begin(), entries_.end(), older));
    }
    entries_[key] = {++clock_, value};
    return value;
  }

 private:
  std::size_t capacity_;
  mutable std::mutex mutex_;
  // key -> (last use, value)
  mutable std::map<Key, std::pair<uint64_t, std::shared_ptr<const Value>>> entries_;
  mutable uint64_t clock_ = 0;
};

}  // namespace sightd::detail
