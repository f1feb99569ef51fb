// decode_bench ITERATIONS FILE...: sightd::decode_image against a bare cv::imdecode of the same bytes, with
// the same OpenCV and libjpeg, interleaved in one process (bench/image_decode.py builds it with -O2 and runs
// it). For JPEG the core calls libjpeg itself (BGR straight into the output rows), so the ratio is its
// speed-up over OpenCV's JPEG path; for the other formats it is what the core adds (header parsing,
// conversions, orientation). Also counts the bytes where the two outputs differ (0: the same pixels).
// Prints one line per file and case: median and fastest milliseconds of each and their ratios (the fastest
// runs are the least disturbed by other work on a shared machine).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "sightd/image.hpp"

namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

template <typename F>
double time_ms(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s ITERATIONS FILE...\n", argv[0]);
    return 2;
  }
  const int iterations = std::max(1, std::atoi(argv[1]));
  const sightd::DecodeOptions options;
  for (int f = 2; f < argc; ++f) {
    std::ifstream in(argv[f], std::ios::binary);
    const std::vector<uint8_t> data{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    const cv::Mat buffer(1, static_cast<int>(data.size()), CV_8UC1, const_cast<uint8_t*>(data.data()));
    const sightd::ImageHeader header = sightd::read_image_header(data.data(), data.size());
    const bool jpeg = header.format == sightd::ImageFormat::kJpeg;
    // (name, sightd min size, OpenCV flags): full size, then each JPEG reduction.
    struct Case {
      const char* name;
      int min_size;
      int flags;
    };
    const int ignore = cv::IMREAD_IGNORE_ORIENTATION;
    std::vector<Case> cases = {{"full", 0, jpeg ? cv::IMREAD_COLOR | ignore : cv::IMREAD_UNCHANGED}};
    if (jpeg) {
      const int shorter = std::min(header.width, header.height);
      cases.push_back({"reduced_2", (shorter + 1) / 2, cv::IMREAD_REDUCED_COLOR_2 | ignore});
      cases.push_back({"reduced_4", (shorter + 3) / 4, cv::IMREAD_REDUCED_COLOR_4 | ignore});
      cases.push_back({"reduced_8", 1, cv::IMREAD_REDUCED_COLOR_8 | ignore});
    }
    for (const Case& c : cases) {
      std::vector<double> core;
      std::vector<double> bare;
      for (int i = 0; i < iterations + 1; ++i) {  // the first round warms up and is not counted
        const double a = time_ms([&] {
          (void)sightd::decode_image(data.data(), data.size(), options, c.min_size, c.min_size);
        });
        const double b = time_ms([&] { (void)cv::imdecode(buffer, c.flags); });
        if (i > 0) {
          core.push_back(a);
          bare.push_back(b);
        }
      }
      std::vector<double> headers;
      for (int i = 0; i < iterations; ++i) {
        headers.push_back(time_ms([&] { (void)sightd::read_image_header(data.data(), data.size()); }));
      }
      const double core_min = *std::min_element(core.begin(), core.end());
      const double bare_min = *std::min_element(bare.begin(), bare.end());
      // Same pixels? Bytes that differ between the two (-1: different shapes; OpenCV keeps alpha of
      // IMREAD_UNCHANGED images that the core composites, so only 3-channel results are compared).
      const cv::Mat ours = sightd::decode_image(data.data(), data.size(), options, c.min_size, c.min_size).bgr;
      const cv::Mat theirs = cv::imdecode(buffer, c.flags);
      long differing = -1;
      if (ours.size() == theirs.size() && ours.type() == theirs.type()) {
        cv::Mat unequal;
        cv::compare(ours, theirs, unequal, cv::CMP_NE);
        differing = static_cast<long>(cv::countNonZero(unequal.reshape(1)));
      }
      std::printf(
          "%s %s %dx%d sightd_ms=%.4f imdecode_ms=%.4f ratio=%.4f sightd_min_ms=%.4f imdecode_min_ms=%.4f "
          "ratio_min=%.4f header_ms=%.5f differing_bytes=%ld\n",
          argv[f], c.name, header.width, header.height, median(core), median(bare), median(core) / median(bare),
          core_min, bare_min, core_min / bare_min, median(headers), differing);
    }
  }
  return 0;
}
