#include "sightd/result_message.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace sightd {
namespace {

constexpr std::uint32_t kVarint = 0;
constexpr std::uint32_t kFixed64 = 1;
constexpr std::uint32_t kLengthDelimited = 2;

void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_tag(std::string& out, std::uint32_t field, std::uint32_t wire_type) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | wire_type);
}

// int32: left out at 0; a negative value takes ten bytes, sign-extended to 64 bits.
void put_int32(std::string& out, std::uint32_t field, std::int32_t value) {
  if (value == 0) return;
  put_tag(out, field, kVarint);
  put_varint(out, static_cast<std::uint64_t>(static_cast<std::int64_t>(value)));
}

// double: left out at +0.0 only (its bits all zero; -0.0 is written), little-endian.
void put_double(std::string& out, std::uint32_t field, double value) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  if (bits == 0) return;
  put_tag(out, field, kFixed64);
  for (int byte = 0; byte < 8; ++byte) out.push_back(static_cast<char>((bits >> (8 * byte)) & 0xFF));
}

void put_bytes(std::string& out, std::uint32_t field, const std::string& value, bool always) {
  if (value.empty() && !always) return;
  put_tag(out, field, kLengthDelimited);
  put_varint(out, value.size());
  out += value;
}

// The document's value of a score or coordinate: Python's float(f"{value:.9g}"), locale-free.
double document_double(double value) {
  if (std::isnan(value)) return std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(value)) return value;
  char text[40];
  auto written = std::to_chars(text, text + sizeof text, value, std::chars_format::general, 9);
  double parsed = value;
  std::from_chars(text, written.ptr, parsed);
  return parsed;
}

bool valid_utf8(const std::string& text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    unsigned char lead = bytes[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t extra = 0;
    std::uint32_t code = 0;
    if ((lead & 0xE0) == 0xC0) {
      extra = 1, code = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      extra = 2, code = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      extra = 3, code = lead & 0x07;
    } else {
      return false;
    }
    if (i + extra >= size) return false;  // cut short
    for (std::size_t k = 1; k <= extra; ++k) {
      if ((bytes[i + k] & 0xC0) != 0x80) return false;
      code = (code << 6) | (bytes[i + k] & 0x3F);
    }
    static constexpr std::uint32_t kSmallest[] = {0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

bool put_prediction(std::string& out, std::uint32_t field, const Prediction& prediction, bool has_roi) {
  if (prediction.label_id < std::numeric_limits<std::int32_t>::min() ||
      prediction.label_id > std::numeric_limits<std::int32_t>::max() || !valid_utf8(prediction.label_name)) {
    return false;
  }
  std::string body;
  put_int32(body, 1, static_cast<std::int32_t>(prediction.label_id));
  put_bytes(body, 2, prediction.label_name, false);
  put_double(body, 3, document_double(prediction.score));
  put_double(body, 4, prediction.threshold);
  if (has_roi) {
    std::string box;
    put_double(box, 1, document_double(prediction.bbox.xmin));
    put_double(box, 2, document_double(prediction.bbox.ymin));
    put_double(box, 3, document_double(prediction.bbox.xmax));
    put_double(box, 4, document_double(prediction.bbox.ymax));
    std::string roi;
    put_int32(roi, 1, prediction.region_id);
    put_bytes(roi, 2, box, true);
    put_bytes(body, 5, roi, true);
  }
  put_bytes(out, field, body, true);
  return true;
}

}  // namespace

std::optional<std::string> recognition_result_message(const std::vector<LabelsResult>& outputs) {
  std::string message;
  for (const LabelsResult& output : outputs) {
    std::string labels;
    for (const Prediction& prediction : output.predicted) {
      if (!put_prediction(labels, 1, prediction, output.has_roi)) return std::nullopt;
    }
    for (const Prediction& prediction : output.discarded) {
      if (!put_prediction(labels, 2, prediction, output.has_roi)) return std::nullopt;
    }
    std::string recognition_output;
    put_bytes(recognition_output, 1, labels, true);
    put_bytes(message, 1, recognition_output, true);
  }
  return message;
}

}  // namespace sightd
