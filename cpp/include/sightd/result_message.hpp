// One image's results as the serialized sightd.v1.RecognitionResult message (proto/sightd/v1/inference.proto),
// so that the gRPC service answers a recognition without building it in Python.
//
// The bytes are those that Python's protobuf gives for the message that sightd.grpc.inference.result_message
// builds from the v0.7 document (sightd.postprocessing.result_to_json): fields in number order, proto3's
// default values (0, "", +0.0) left out, every output's `labels` and every roi's `bbox` present even when
// empty, scores and box coordinates rounded to the 9 significant digits of the document, thresholds as they
// are. tests/integration/test_result_message.py holds them to that on real results of every public model.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sightd/postprocess.hpp"

namespace sightd {

// The message of one image's results (one LabelsResult per spec output, in order). Empty when a value does
// not fit its field: a label id beyond int32, or a label name that is not UTF-8 (the Python path refuses
// those too).
std::optional<std::string> recognition_result_message(const std::vector<LabelsResult>& outputs);

}  // namespace sightd
