// decode_check FOLDER: feeds every file of FOLDER to the core's decoder (header, full and reduced decoding,
// then rois on whatever decodes), as `make asan` does with the corrupt-image corpus under AddressSanitizer.
// Prints a summary; exits 1 when anything other than a sightd::Error escapes (2 on usage errors). Memory
// errors abort through the sanitizer itself.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "sightd/error.hpp"
#include "sightd/image.hpp"
#include "sightd/roi.hpp"

namespace {

const char* code_name(sightd::ErrorCode code) {
  switch (code) {
    case sightd::ErrorCode::kInvalidArgument: return "invalid argument";
    case sightd::ErrorCode::kInvalidImage: return "invalid image";
    case sightd::ErrorCode::kImageTooLarge: return "image too large";
    case sightd::ErrorCode::kEngine: return "engine";
    case sightd::ErrorCode::kInternal: return "internal";
  }
  return "?";
}

std::vector<uint8_t> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every roi kind on a decoded image, so that odd sizes (1 pixel wide, huge aspect ratios) reach them too.
void exercise_rois(const cv::Mat& bgr) {
  sightd::Roi box;
  box.has_bbox = true;
  box.bbox = {0.1, 0.2, 0.95, 0.9};
  box.crop_uniform_background = true;
  (void)sightd::apply_roi(bgr, box, std::nullopt);
  sightd::Roi polygon;
  polygon.polygon = {{0.5, 0.0}, {1.0, 0.7}, {0.3, 1.0}, {0.0, 0.4}};
  (void)sightd::apply_roi(bgr, polygon, std::nullopt);
  polygon.crop_uniform_background = true;
  polygon.uniform_tolerance = 0;
  (void)sightd::apply_roi(bgr, polygon, cv::Scalar(0, 0, 0));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FOLDER\n", argv[0]);
    return 2;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1])) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());

  int headers = 0;
  int decoded = 0;
  int unexpected = 0;
  std::map<std::string, int> errors;
  const sightd::DecodeOptions options;
  for (const auto& path : files) {
    const std::vector<uint8_t> data = read_file(path);
    const auto attempt = [&](auto&& step) {
      try {
        step();
        return true;
      } catch (const sightd::Error& error) {
        ++errors[code_name(error.code())];
      } catch (const std::exception& error) {
        ++unexpected;
        std::printf("UNEXPECTED %s: %s\n", path.filename().c_str(), error.what());
      } catch (...) {
        ++unexpected;
        std::printf("UNEXPECTED %s: unknown exception\n", path.filename().c_str());
      }
      return false;
    };
    if (attempt([&] { (void)sightd::read_image_header(data.data(), data.size()); })) ++headers;
    for (const int min_size : {0, 16}) {
      sightd::DecodedImage image;
      if (attempt([&] { image = sightd::decode_image(data.data(), data.size(), options, min_size, min_size); })) {
        ++decoded;
        attempt([&] { exercise_rois(image.bgr); });
      }
    }
  }
  std::printf("decode_check: %zu files, %d headers read, %d decodes succeeded (2 per file: full and reduced)\n",
              files.size(), headers, decoded);
  for (const auto& [name, count] : errors) std::printf("  sightd::Error (%s): %d\n", name.c_str(), count);
  std::printf("  other exceptions: %d\n", unexpected);
  return unexpected == 0 ? 0 : 1;
}
