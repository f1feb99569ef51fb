// The one exception type of the core. Every failure the core can foresee (bad bytes, bad arguments, an engine
// error) is a sightd::Error carrying a code and, where it applies, the name of the offending field, so that
// the service can answer INVALID_ARGUMENT with a field violation instead of crashing.
#pragma once

#include <stdexcept>
#include <string>

namespace sightd {

enum class ErrorCode {
  kInvalidArgument,    // a parameter, a spec or a request field is wrong
  kInvalidImage,       // the image bytes are empty, truncated, corrupt or of an unsupported format
  kImageTooLarge,      // the header announces more pixels than allowed (decompression bomb guard)
  kEngine,             // ONNX Runtime refused or failed (model load, run)
  kInternal,           // a bug: an invariant of the core did not hold
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string field, const std::string& message)
      : std::runtime_error(message), code_(code), field_(std::move(field)) {}
  Error(ErrorCode code, const std::string& message) : Error(code, std::string(), message) {}

  ErrorCode code() const noexcept { return code_; }
  // Dotted path of the offending field ("inputs[0].image.target_size", "bbox.xmin"), or empty.
  const std::string& field() const noexcept { return field_; }

 private:
  ErrorCode code_;
  std::string field_;
};

[[noreturn]] inline void throw_invalid_argument(std::string field, const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, std::move(field), message);
}

}  // namespace sightd
