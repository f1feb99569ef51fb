// Mean files: Caffe's BlobProto read straight from the protobuf wire format, and NumPy's .npy format.
#include "sightd/mean.hpp"

#include <cmath>
#include <cctype>
#include <cstring>
#include <limits>
#include <string>

#include "sightd/error.hpp"

namespace sightd {

namespace {

constexpr const char* kField = "mean_file";
// A mean larger than any image the core accepts is certainly not a mean.
constexpr uint64_t kMaxElements = uint64_t{3} * 16384 * 16384;

[[noreturn]] void fail(const std::string& message) { throw_invalid_argument(kField, message); }

// Header text quoted in a message: hostile files must not put undecodable bytes into it.
std::string printable(const std::string& text) {
  std::string out = text.substr(0, 32);
  for (char& ch : out) {
    if (ch < 0x20 || ch > 0x7e) ch = '?';
  }
  return out;
}

// Strips leading 1s (batch dimensions) and lays the dimensions out as channels x height x width.
// `channels_first` is Caffe's order; otherwise the rules of mean.hpp decide between HWC and CHW.
struct Layout {
  int channels = 0;
  int height = 1;
  int width = 1;
  bool hwc = false;
};

int checked_dim(uint64_t d) {
  if (d == 0 || d > 16384) fail("mean dimension " + std::to_string(d) + " out of range (1..16384)");
  return static_cast<int>(d);
}

Layout layout_of(std::vector<uint64_t> dims, bool caffe) {
  while (dims.size() > 1 && dims.front() == 1) dims.erase(dims.begin());
  Layout layout;
  if (dims.empty()) fail("mean has no dimensions");
  for (uint64_t d : dims) checked_dim(d);
  const auto channel_count = [](uint64_t d) { return d == 1 || d == 3; };
  switch (dims.size()) {
    case 1:
      layout.channels = checked_dim(dims[0]);
      break;
    case 2:  // a grey per-pixel mean
      layout.channels = 1;
      layout.height = checked_dim(dims[0]);
      layout.width = checked_dim(dims[1]);
      break;
    case 3: {
      const bool chw = caffe || (channel_count(dims[0]) && !channel_count(dims[2])) ||
                       (channel_count(dims[0]) && dims[1] == 1 && dims[2] == 1);
      if (chw) {
        layout.channels = checked_dim(dims[0]);
        layout.height = checked_dim(dims[1]);
        layout.width = checked_dim(dims[2]);
      } else {
        layout.hwc = true;
        layout.height = checked_dim(dims[0]);
        layout.width = checked_dim(dims[1]);
        layout.channels = checked_dim(dims[2]);
      }
      break;
    }
    default:
      fail("mean has " + std::to_string(dims.size()) + " dimensions besides leading 1s; expected 1 to 3");
  }
  if (layout.channels != 1 && layout.channels != 3) {
    fail("mean has " + std::to_string(layout.channels) + " channels; expected 1 or 3");
  }
  return layout;
}

MeanImage make_mean(const Layout& layout, const std::vector<double>& values) {
  const std::size_t plane = static_cast<std::size_t>(layout.height) * static_cast<std::size_t>(layout.width);
  const std::size_t count = plane * static_cast<std::size_t>(layout.channels);
  if (values.size() != count) {
    fail("mean holds " + std::to_string(values.size()) + " values; its shape needs " + std::to_string(count));
  }
  MeanImage mean;
  mean.channels = layout.channels;
  mean.height = layout.height;
  mean.width = layout.width;
  mean.data.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (!std::isfinite(values[i])) fail("mean holds a value that is not finite");
    // HWC storage becomes planar: source i = (y * W + x) * C + c.
    const auto channels = static_cast<std::size_t>(layout.channels);
    const std::size_t dst = layout.hwc ? (i % channels) * plane + i / channels : i;
    mean.data[dst] = static_cast<float>(values[i]);
  }
  return mean;
}

// --- Caffe BlobProto --------------------------------------------------------------------------------

class WireReader {
 public:
  WireReader(const uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ >= end_; }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) fail("truncated BlobProto (varint)");
      const uint8_t byte = *p_++;
      value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail("malformed BlobProto (varint longer than 10 bytes)");
  }
  template <typename T>
  T fixed() {
    if (static_cast<std::size_t>(end_ - p_) < sizeof(T)) fail("truncated BlobProto (fixed-size value)");
    T value;
    std::memcpy(&value, p_, sizeof(T));  // the wire format is little-endian, as is every target of the core
    p_ += sizeof(T);
    return value;
  }
  WireReader sub() {
    const uint64_t length = varint();
    if (length > static_cast<uint64_t>(end_ - p_)) fail("truncated BlobProto (length-delimited field)");
    WireReader inner(p_, static_cast<std::size_t>(length));
    p_ += length;
    return inner;
  }
  void skip(int wire_type) {
    switch (wire_type) {
      case 0: varint(); break;
      case 1: fixed<uint64_t>(); break;
      case 2: sub(); break;
      case 5: fixed<uint32_t>(); break;
      default: fail("not a BlobProto (wire type " + std::to_string(wire_type) + ")");
    }
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

template <typename T>
void read_repeated(WireReader& reader, int wire_type, int fixed_wire_type, std::vector<double>& out) {
  if (wire_type == 2) {
    WireReader packed = reader.sub();
    while (!packed.done()) {
      out.push_back(static_cast<double>(packed.fixed<T>()));
      if (out.size() > kMaxElements) fail("mean too large");
    }
  } else if (wire_type == fixed_wire_type) {
    out.push_back(static_cast<double>(reader.fixed<T>()));
    if (out.size() > kMaxElements) fail("mean too large");
  } else {
    fail("not a BlobProto (data field of wire type " + std::to_string(wire_type) + ")");
  }
}

MeanImage parse_blobproto(const uint8_t* data, std::size_t size) {
  WireReader reader(data, size);
  uint64_t legacy[4] = {0, 0, 0, 0};  // num, channels, height, width
  bool has_legacy = false;
  std::vector<uint64_t> shape;
  bool has_shape = false;
  std::vector<double> values;
  std::vector<double> double_values;
  while (!reader.done()) {
    const uint64_t key = reader.varint();
    const uint64_t field = key >> 3;
    const int wire_type = static_cast<int>(key & 7);
    if (field >= 1 && field <= 4 && wire_type == 0) {
      const uint64_t v = reader.varint();
      // int32 fields: negative values arrive as 10-byte varints.
      if (v > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
        fail("negative BlobProto dimension");
      }
      legacy[field - 1] = v;
      has_legacy = true;
    } else if (field == 5) {
      read_repeated<float>(reader, wire_type, 5, values);
    } else if (field == 8) {
      read_repeated<double>(reader, wire_type, 1, double_values);
    } else if (field == 7 && wire_type == 2) {
      WireReader blob_shape = reader.sub();
      has_shape = true;
      shape.clear();
      while (!blob_shape.done()) {
        const uint64_t shape_key = blob_shape.varint();
        if ((shape_key >> 3) == 1 && (shape_key & 7) == 0) {
          shape.push_back(blob_shape.varint());
        } else if ((shape_key >> 3) == 1 && (shape_key & 7) == 2) {
          WireReader dims = blob_shape.sub();
          while (!dims.done()) shape.push_back(dims.varint());
        } else {
          blob_shape.skip(static_cast<int>(shape_key & 7));
        }
        if (shape.size() > 8) fail("BlobProto shape has too many dimensions");
      }
    } else {
      reader.skip(wire_type);
    }
  }
  if (!values.empty() && !double_values.empty()) fail("BlobProto holds both data and double_data");
  if (values.empty()) values = std::move(double_values);
  if (values.empty()) fail("BlobProto holds no data (neither data nor double_data)");

  std::vector<uint64_t> dims;
  if (has_shape) {
    dims = shape;
  } else if (has_legacy) {
    dims.assign(legacy, legacy + 4);
    for (auto& d : dims) d = d == 0 ? 1 : d;  // an unset legacy dimension
  } else {
    dims = {values.size()};  // a bare list of per-channel values
  }
  if (dims.size() == 4 && dims[0] != 1) {
    fail("BlobProto mean has num = " + std::to_string(dims[0]) + "; expected 1");
  }
  return make_mean(layout_of(dims, true), values);
}

// --- NumPy .npy -------------------------------------------------------------------------------------

constexpr char kNpyMagic[] = "\x93NUMPY";

// The value of 'key' in the header's Python dict literal, as raw text up to the next top-level comma.
std::string dict_value(const std::string& header, const std::string& key) {
  std::size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) at = header.find("\"" + key + "\"");
  if (at == std::string::npos) fail(".npy header has no '" + key + "'");
  at = header.find(':', at);
  if (at == std::string::npos) fail("malformed .npy header");
  ++at;
  while (at < header.size() && header[at] == ' ') ++at;
  std::size_t end = at;
  if (end < header.size() && header[end] == '(') {
    end = header.find(')', end);
    if (end == std::string::npos) fail("malformed .npy header (shape)");
    ++end;
  } else {
    while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  }
  return header.substr(at, end - at);
}

struct NpyType {
  char kind = 'f';
  std::size_t size = 4;
  bool big_endian = false;
};

NpyType parse_descr(std::string descr) {
  descr = printable(descr);
  if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"')) {
    fail(".npy dtype is not a simple type");
  }
  descr = descr.substr(1, descr.size() - 2);
  if (descr.size() < 3) fail("unsupported .npy dtype '" + descr + "'");
  NpyType type;
  const char order = descr[0];
  if (order != '<' && order != '>' && order != '|' && order != '=') {
    fail("unsupported .npy dtype '" + descr + "'");
  }
  type.big_endian = order == '>';
  type.kind = descr[1];
  const std::string bytes = descr.substr(2);
  const bool ok = (type.kind == 'f' && (bytes == "2" || bytes == "4" || bytes == "8")) ||
                  ((type.kind == 'u' || type.kind == 'i') &&
                   (bytes == "1" || bytes == "2" || bytes == "4" || bytes == "8"));
  if (!ok) fail("unsupported .npy dtype '" + descr + "' (expected f2, f4, f8, u1..u8 or i1..i8)");
  type.size = static_cast<std::size_t>(bytes[0] - '0');
  return type;
}

double half_to_double(uint16_t h) {
  const int sign = (h >> 15) & 1;
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  double value;
  if (exponent == 0) {
    value = std::ldexp(static_cast<double>(mantissa), -24);
  } else if (exponent == 31) {
    value = mantissa == 0 ? HUGE_VAL : std::nan("");
  } else {
    value = std::ldexp(static_cast<double>(mantissa + 1024), exponent - 25);
  }
  return sign ? -value : value;
}

double read_element(const uint8_t* p, const NpyType& type) {
  uint8_t bytes[8];
  for (std::size_t i = 0; i < type.size; ++i) bytes[i] = type.big_endian ? p[type.size - 1 - i] : p[i];
  const auto as = [&bytes](auto value) {
    std::memcpy(&value, bytes, sizeof(value));
    return value;
  };
  switch (type.kind) {
    case 'f':
      if (type.size == 2) return half_to_double(as(uint16_t{}));
      if (type.size == 4) return static_cast<double>(as(float{}));
      return as(double{});
    case 'u':
      if (type.size == 1) return bytes[0];
      if (type.size == 2) return as(uint16_t{});
      if (type.size == 4) return as(uint32_t{});
      return static_cast<double>(as(uint64_t{}));
    default:
      if (type.size == 1) return as(int8_t{});
      if (type.size == 2) return as(int16_t{});
      if (type.size == 4) return as(int32_t{});
      return static_cast<double>(as(int64_t{}));
  }
}

MeanImage parse_npy(const uint8_t* data, std::size_t size) {
  if (size < 10) fail("truncated .npy header");
  const int major = data[6];
  std::size_t header_length;
  std::size_t header_start;
  if (major == 1) {
    header_length = data[8] | (std::size_t{data[9]} << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) fail("truncated .npy header");
    header_length = data[8] | (std::size_t{data[9]} << 8) | (std::size_t{data[10]} << 16) |
                    (std::size_t{data[11]} << 24);
    header_start = 12;
  } else {
    fail("unsupported .npy version " + std::to_string(major));
  }
  if (header_length > size - header_start) fail("truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(data + header_start), header_length);

  const NpyType type = parse_descr(dict_value(header, "descr"));
  const std::string fortran = dict_value(header, "fortran_order");
  if (fortran != "True" && fortran != "False") fail("malformed .npy header (fortran_order)");
  const std::string shape_text = dict_value(header, "shape");
  if (shape_text.empty() || shape_text.front() != '(') fail("malformed .npy header (shape)");
  std::vector<uint64_t> dims;
  uint64_t count = 1;
  for (std::size_t i = 1; i < shape_text.size();) {
    if (std::isdigit(static_cast<unsigned char>(shape_text[i]))) {
      uint64_t d = 0;
      while (i < shape_text.size() && std::isdigit(static_cast<unsigned char>(shape_text[i]))) {
        d = d * 10 + static_cast<uint64_t>(shape_text[i] - '0');
        if (d > kMaxElements) fail("mean too large");
        ++i;
      }
      dims.push_back(d);
      count *= d;
      if (count > kMaxElements || dims.size() > 8) fail("mean too large");
    } else {
      ++i;
    }
  }
  if (dims.empty()) dims.push_back(1);  // a 0-d array: one value
  const std::size_t body = header_start + header_length;
  if ((size - body) / type.size < count) fail("truncated .npy data");

  std::vector<double> values(count);
  if (fortran == "True" && dims.size() > 1) {
    // Column-major storage: walk the C-order index and compute its Fortran-order position.
    std::vector<uint64_t> index(dims.size(), 0);
    for (uint64_t i = 0; i < count; ++i) {
      uint64_t position = 0;
      uint64_t stride = 1;
      for (std::size_t d = 0; d < dims.size(); ++d) {
        position += index[d] * stride;
        stride *= dims[d];
      }
      values[i] = read_element(data + body + position * type.size, type);
      for (std::size_t d = dims.size(); d-- > 0;) {
        if (++index[d] < dims[d]) break;
        index[d] = 0;
      }
    }
  } else {
    for (uint64_t i = 0; i < count; ++i) values[i] = read_element(data + body + i * type.size, type);
  }
  return make_mean(layout_of(dims, false), values);
}

}  // namespace

MeanImage parse_mean_file(const uint8_t* data, std::size_t size) {
  if (data == nullptr || size == 0) fail("empty mean file");
  if (size >= 6 && std::memcmp(data, kNpyMagic, 6) == 0) return parse_npy(data, size);
  return parse_blobproto(data, size);
}

}  // namespace sightd
