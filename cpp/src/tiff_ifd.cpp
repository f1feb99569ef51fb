#include "tiff_ifd.hpp"

namespace sightd::detail {

namespace {

constexpr uint32_t kTagImageWidth = 256;
constexpr uint32_t kTagImageLength = 257;
constexpr uint32_t kTagBitsPerSample = 258;
constexpr uint32_t kTagCompression = 259;
constexpr uint32_t kTagOrientation = 274;
constexpr uint32_t kTagSamplesPerPixel = 277;
constexpr uint32_t kTagExtraSamples = 338;
constexpr uint32_t kTagSampleFormat = 339;

constexpr uint32_t kTypeByte = 1;
constexpr uint32_t kTypeShort = 3;
constexpr uint32_t kTypeLong = 4;

// The first value of an integer entry: inline when the values fit in the 4-byte value field, else at the
// offset that field holds. False for other types, empty entries or values outside the bytes.
bool first_value(ByteView tiff, std::size_t entry, bool le, uint32_t& value) {
  uint32_t type = 0;
  uint32_t count = 0;
  if (!tiff.u16(entry + 2, le, type) || !tiff.u32(entry + 4, le, count) || count == 0) return false;
  std::size_t width = 0;
  switch (type) {
    case kTypeByte: width = 1; break;
    case kTypeShort: width = 2; break;
    case kTypeLong: width = 4; break;
    default: return false;
  }
  std::size_t at = entry + 8;
  if (uint64_t{count} * width > 4) {
    uint32_t offset = 0;
    if (!tiff.u32(entry + 8, le, offset)) return false;
    at = offset;
  }
  switch (width) {
    case 1: return tiff.u8(at, value);
    case 2: return tiff.u16(at, le, value);
    default: return tiff.u32(at, le, value);
  }
}

}  // namespace

bool read_tiff_ifd0(ByteView tiff, TiffIfd0& ifd) {
  bool le = false;
  if (tiff.equals(0, "II", 2)) {
    le = true;
  } else if (!tiff.equals(0, "MM", 2)) {
    return false;
  }
  uint32_t magic = 0;
  uint32_t offset = 0;
  if (!tiff.u16(2, le, magic) || magic != 42 || !tiff.u32(4, le, offset) || offset < 8) return false;
  uint32_t announced = 0;
  if (!tiff.u16(offset, le, announced)) return false;
  ifd.little_endian = le;

  const std::size_t first_entry = std::size_t{offset} + 2;
  const std::size_t available = tiff.has(first_entry, 0) ? (tiff.size() - first_entry) / 12 : 0;
  const std::size_t count = announced < available ? announced : available;
  ifd.complete = announced <= available;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t entry = first_entry + 12 * i;
    uint32_t tag = 0;
    uint32_t value = 0;
    if (!tiff.u16(entry, le, tag) || !first_value(tiff, entry, le, value)) continue;
    switch (tag) {
      case kTagImageWidth:
        ifd.width = value;
        ifd.has_width = true;
        break;
      case kTagImageLength:
        ifd.height = value;
        ifd.has_height = true;
        break;
      case kTagBitsPerSample: ifd.bits_per_sample = value; break;
      case kTagCompression: ifd.compression = value; break;
      case kTagSamplesPerPixel: ifd.samples_per_pixel = value; break;
      case kTagSampleFormat: ifd.sample_format = value; break;
      case kTagExtraSamples: ifd.extra_samples = value; break;
      case kTagOrientation: {
        ifd.orientation = value;
        uint32_t type = 0;
        uint32_t n = 0;
        if (tiff.u16(entry + 2, le, type) && tiff.u32(entry + 4, le, n) && n == 1 &&
            (type == kTypeShort || type == kTypeLong)) {
          ifd.orientation_value_offset = entry + 8;
          ifd.orientation_value_width = type == kTypeShort ? 2 : 4;
        }
        break;
      }
      default: break;
    }
  }
  return true;
}

int exif_orientation(ByteView exif) {
  TiffIfd0 ifd;
  if (!read_tiff_ifd0(exif, ifd)) return 1;
  return ifd.orientation >= 1 && ifd.orientation <= 8 ? static_cast<int>(ifd.orientation) : 1;
}

}  // namespace sightd::detail
