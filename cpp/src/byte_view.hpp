// Bounds-checked reads from untrusted bytes, for the header and EXIF parsers. Every read states the offset
// it wants; nothing here can read outside [data, data + size), whatever the offsets and counts claim.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sightd::detail {

class ByteView {
 public:
  ByteView() = default;
  ByteView(const uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  const uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

  // True when [offset, offset + count) lies inside the view (no overflow whatever the arguments).
  bool has(std::size_t offset, std::size_t count) const noexcept {
    return offset <= size_ && count <= size_ - offset;
  }
  // The sub-view [offset, offset + count), clipped to the view.
  ByteView sub(std::size_t offset, std::size_t count) const noexcept {
    if (offset > size_) return {};
    return {data_ + offset, count < size_ - offset ? count : size_ - offset};
  }

  // Readers return false, leaving `value` alone, when the bytes are not all inside the view.
  bool u8(std::size_t offset, uint32_t& value) const noexcept {
    if (!has(offset, 1)) return false;
    value = data_[offset];
    return true;
  }
  bool u16(std::size_t offset, bool little_endian, uint32_t& value) const noexcept {
    if (!has(offset, 2)) return false;
    const uint32_t a = data_[offset];
    const uint32_t b = data_[offset + 1];
    value = little_endian ? (a | b << 8) : (a << 8 | b);
    return true;
  }
  bool u24le(std::size_t offset, uint32_t& value) const noexcept {
    if (!has(offset, 3)) return false;
    value = uint32_t{data_[offset]} | uint32_t{data_[offset + 1]} << 8 | uint32_t{data_[offset + 2]} << 16;
    return true;
  }
  bool u32(std::size_t offset, bool little_endian, uint32_t& value) const noexcept {
    if (!has(offset, 4)) return false;
    const uint32_t a = data_[offset];
    const uint32_t b = data_[offset + 1];
    const uint32_t c = data_[offset + 2];
    const uint32_t d = data_[offset + 3];
    value = little_endian ? (a | b << 8 | c << 16 | d << 24) : (a << 24 | b << 16 | c << 8 | d);
    return true;
  }
  bool equals(std::size_t offset, const char* text, std::size_t count) const noexcept {
    if (!has(offset, count)) return false;
    for (std::size_t i = 0; i < count; ++i) {
      if (data_[offset + i] != static_cast<uint8_t>(text[i])) return false;
    }
    return true;
  }

 private:
  const uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace sightd::detail
