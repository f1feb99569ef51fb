// JPEG through libjpeg-turbo's libjpeg API rather than cv::imdecode: Debian's OpenCV 4.6 asks libjpeg for RGB
// one row at a time and swaps the channels itself, which costs about 40% more than asking for BGR straight
// into the output rows (same library, same integer IDCT, the same pixels). It also lets the core see
// libjpeg's warnings, which OpenCV prints and drops: data that runs out before the image is complete is an
// error here, not a partly grey image.
//
// libjpeg reports errors by calling error_exit, which must not return: it longjmps back to decompress().
// Everything that lives between that setjmp and libjpeg's calls is plain data (JpegSession, the rows of a
// cv::Mat allocated beforehand), so the jump skips no destructor.
#include "jpeg_decode.hpp"

#include <algorithm>
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t declared first
#include <cstring>
#include <string>
#include <vector>

#include <jerror.h>
#include <jpeglib.h>

#include "sightd/error.hpp"

namespace sightd::detail {

namespace {

// libjpeg-turbo's own advice for untrusted progressive JPEGs: each scan is a pass over the whole image, so
// a small file with thousands of scans is a CPU bomb. Real encoders write at most a few dozen.
constexpr int kMaxJpegScans = 500;
// Rows handed to libjpeg per jpeg_read_scanlines call (it returns fewer when an iMCU row ends sooner).
constexpr int kRowsPerCall = 16;
// Distinct warning messages kept: a damaged file can emit one per MCU.
constexpr int kMaxWarnings = 4;

// What libjpeg's callbacks reach through cinfo.client_data. Plain data only (see the top of the file).
struct JpegSession {
  jpeg_decompress_struct cinfo;
  jpeg_error_mgr error;
  jpeg_progress_mgr progress;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];  // why decompress() failed
  bool data_missing;              // the failure is data running out, not a libjpeg error
  bool too_many_scans;
  int warning_codes[kMaxWarnings];
  char warnings[kMaxWarnings][JMSG_LENGTH_MAX];
  int warning_count;
  // The output, allocated before decoding: rows of `stride` bytes, `width` x `height` BGR pixels.
  uint8_t* pixels;
  std::size_t stride;
  JDIMENSION width;
  JDIMENSION height;
};

JpegSession& session_of(j_common_ptr common) { return *static_cast<JpegSession*>(common->client_data); }

[[noreturn]] void on_error(j_common_ptr common) {
  JpegSession& s = session_of(common);
  (*common->err->format_message)(common, s.message);
  std::longjmp(s.jump, 1);
}

// Warnings (level -1; higher levels are traces) are collected instead of printed. Data that runs out early
// (a premature end of a scan's entropy-coded data, or of the file) leaves the rest of the image grey: an
// error, raised at once. Anything else (extraneous bytes, a bad Huffman code, a lost restart marker) leaves
// a damaged but complete image, as every libjpeg-based viewer shows it.
void on_message(j_common_ptr common, int level) {
  if (level >= 0) return;
  JpegSession& s = session_of(common);
  ++common->err->num_warnings;
  const int code = common->err->msg_code;
  if (code == JWRN_HIT_MARKER || code == JWRN_JPEG_EOF) {
    (*common->err->format_message)(common, s.message);
    s.data_missing = true;
    std::longjmp(s.jump, 1);
  }
  for (int i = 0; i < s.warning_count; ++i) {
    if (s.warning_codes[i] == code) return;
  }
  if (s.warning_count < kMaxWarnings) {
    s.warning_codes[s.warning_count] = code;
    (*common->err->format_message)(common, s.warnings[s.warning_count]);
    ++s.warning_count;
  }
}

void on_output_message(j_common_ptr) {}  // never print: on_message and on_error format what they keep

// The scan count as libjpeg itself sees it, in case its parse of a hostile file differs from the core's walk.
void on_progress(j_common_ptr common) {
  const auto* cinfo = reinterpret_cast<j_decompress_ptr>(common);
  if (cinfo->input_scan_number > kMaxJpegScans) {
    JpegSession& s = session_of(common);
    s.too_many_scans = true;
    std::longjmp(s.jump, 1);
  }
}

// Adobe (Photoshop) CMYK, stored inverted (255 = no ink), which is what CMYK JPEGs hold in practice, to BGR
// with OpenCV's integer formula, so that the pixels are OpenCV's: R = K - ((255 - C) * K >> 8), etc.
void cmyk_to_bgr(const uint8_t* cmyk, uint8_t* bgr, JDIMENSION width) {
  for (JDIMENSION x = 0; x < width; ++x, cmyk += 4, bgr += 3) {
    const uint32_t k = cmyk[3];
    bgr[0] = static_cast<uint8_t>(k - ((255 - cmyk[2]) * k >> 8));
    bgr[1] = static_cast<uint8_t>(k - ((255 - cmyk[1]) * k >> 8));
    bgr[2] = static_cast<uint8_t>(k - ((255 - cmyk[0]) * k >> 8));
  }
}

// The whole libjpeg conversation. Returns false with s.message set on any failure; the caller destroys the
// decompressor either way. No object with a destructor may live here (longjmp).
bool decompress(JpegSession& s, const uint8_t* data, std::size_t size, int reduction, long memory_limit) {
  if (setjmp(s.jump) != 0) return false;
  jpeg_create_decompress(&s.cinfo);
  // Whole-image buffers (progressive and multi-scan files) must fit in what the header's size needs: past
  // that libjpeg would want a backing store, which this build refuses with an error.
  s.cinfo.mem->max_memory_to_use = memory_limit;
  s.cinfo.progress = &s.progress;
  jpeg_mem_src(&s.cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&s.cinfo, TRUE);
  s.cinfo.scale_num = 1;
  s.cinfo.scale_denom = static_cast<unsigned int>(reduction);
  s.cinfo.dct_method = JDCT_ISLOW;  // exact integer IDCT: OpenCV's (and libjpeg's) default
  // libjpeg converts YCbCr, RGB and grey to BGR itself, YCCK only as far as CMYK.
  const bool cmyk = s.cinfo.num_components == 4;
  s.cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_EXT_BGR;
  jpeg_calc_output_dimensions(&s.cinfo);
  if (s.cinfo.output_width != s.width || s.cinfo.output_height != s.height) {
    std::snprintf(s.message, sizeof s.message, "the decoded size (%ux%u) differs from the header's (%ux%u)",
                  s.cinfo.output_width, s.cinfo.output_height, s.width, s.height);
    return false;
  }
  jpeg_start_decompress(&s.cinfo);
  JSAMPARRAY buffer = nullptr;
  if (cmyk) {
    buffer = (*s.cinfo.mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(&s.cinfo), JPOOL_IMAGE, s.width * 4,
                                          kRowsPerCall);
  }
  JSAMPROW rows[kRowsPerCall];
  while (s.cinfo.output_scanline < s.height) {
    const JDIMENSION first = s.cinfo.output_scanline;
    const JDIMENSION count = std::min<JDIMENSION>(kRowsPerCall, s.height - first);
    for (JDIMENSION i = 0; i < count; ++i) rows[i] = cmyk ? buffer[i] : s.pixels + (first + i) * s.stride;
    const JDIMENSION got = jpeg_read_scanlines(&s.cinfo, rows, count);
    if (got == 0) {  // only a suspending data source returns nothing; the memory source never does
      std::snprintf(s.message, sizeof s.message, "libjpeg returned no rows");
      return false;
    }
    if (cmyk) {
      for (JDIMENSION i = 0; i < got; ++i) cmyk_to_bgr(buffer[i], s.pixels + (first + i) * s.stride, s.width);
    }
  }
  jpeg_finish_decompress(&s.cinfo);
  return true;
}

[[noreturn]] void throw_too_many_scans() {
  throw_invalid_image("unsupported JPEG: more than " + std::to_string(kMaxJpegScans) + " scans");
}

// Walks the JPEG from its first scan to its end-of-image marker: counts the scans and refuses data that
// stops before EOI. libjpeg would otherwise pad a truncated file with grey and only warn. Entropy-coded
// data holds 0xFF only as a stuffed 0xFF00 or a restart marker, so the next real marker is the next 0xFF
// followed by anything else; memchr keeps this walk far below the cost of decoding.
void check_jpeg_scans(ByteView v, std::size_t pos) {
  const uint8_t* data = v.data();
  const std::size_t size = v.size();
  int scans = 0;
  for (;;) {
    const void* found = pos < size ? std::memchr(data + pos, 0xFF, size - pos) : nullptr;
    if (found == nullptr) break;
    pos = static_cast<std::size_t>(static_cast<const uint8_t*>(found) - data);
    if (pos + 1 >= size) break;
    const uint8_t marker = data[pos + 1];
    if (marker == 0x00 || marker == 0xFF || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      pos += marker == 0xFF ? 1 : 2;
      continue;
    }
    if (marker == 0xD9) return;
    if (marker == 0xDA && ++scans > kMaxJpegScans) throw_too_many_scans();
    uint32_t length = 0;
    if (!v.u16(pos + 2, false, length) || !v.has(pos + 2, length)) break;
    pos += 2 + length;
  }
  throw_invalid_image("truncated JPEG: the data ends before the end-of-image marker");
}

}  // namespace

cv::Mat decode_jpeg(const uint8_t* data, std::size_t size, const HeaderDetails& details, int reduction,
                    std::vector<std::string>& warnings) {
  check_jpeg_scans(ByteView(data, size), details.jpeg_first_scan);
  const ImageHeader& header = details.header;
  cv::Mat out((header.height + reduction - 1) / reduction, (header.width + reduction - 1) / reduction, CV_8UC3);
  // An upper bound of libjpeg's coefficient buffer for this size: 2 bytes per sample, 4 components at most,
  // each padded to its MCU (at most 32 pixels), plus room for its small allocations.
  const int64_t padded = (int64_t{header.width} + 32) * (int64_t{header.height} + 32);
  const long memory_limit = static_cast<long>(8 * padded + (int64_t{32} << 20));

  JpegSession s{};
  s.cinfo.err = jpeg_std_error(&s.error);
  s.error.error_exit = on_error;
  s.error.emit_message = on_message;
  s.error.output_message = on_output_message;
  s.cinfo.client_data = &s;
  s.progress.progress_monitor = on_progress;
  s.pixels = out.data;
  s.stride = out.step[0];
  s.width = static_cast<JDIMENSION>(out.cols);
  s.height = static_cast<JDIMENSION>(out.rows);
  const bool ok = decompress(s, data, size, reduction, memory_limit);
  jpeg_destroy_decompress(&s.cinfo);
  if (!ok) {
    if (s.too_many_scans) throw_too_many_scans();
    if (s.data_missing) {
      throw_invalid_image(std::string("corrupt JPEG: the data runs out before the image is complete (") +
                          s.message + ")");
    }
    throw_invalid_image(std::string("could not decode the JPEG image: ") + s.message);
  }
  for (int i = 0; i < s.warning_count; ++i) warnings.emplace_back(s.warnings[i]);
  return out;
}

}  // namespace sightd::detail
