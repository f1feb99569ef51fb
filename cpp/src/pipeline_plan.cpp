// Checking a preprocessing spec against a session, once, so that a misconfigured network fails when it is
// loaded with a message naming the spec field, not on the first request with ONNX Runtime's words.
#include "pipeline_plan.hpp"

#include <string>
#include <vector>

#include "engine_internal.hpp"
#include "sightd/error.hpp"

namespace sightd {

namespace {

constexpr std::size_t kImageRank = 3;  // C, H, W in some order

// Position of an input in v0.7's `inputs` list, for field names.
std::string input_field(int input_index, std::size_t position, const std::string& rest) {
  const std::size_t index = input_index >= 0 ? static_cast<std::size_t>(input_index) : position;
  return "inputs[" + std::to_string(index) + "]" + (rest.empty() ? "" : "." + rest);
}

std::string names_of(const std::vector<TensorInfo>& infos) {
  std::string names;
  for (const auto& info : infos) names += (names.empty() ? "'" : ", '") + info.name + "'";
  return names.empty() ? "none" : names;
}

const TensorInfo& network_input(const PipelinePlan& plan, const Session& session, const std::string& name,
                                const std::string& field) {
  for (const auto& feed : plan.feeds) {
    if (feed.tensor_name == name) throw_invalid_argument(field, "network input '" + name + "' is fed twice");
  }
  const TensorInfo* info = session.find_input(name);
  if (info == nullptr) {
    throw_invalid_argument(field, "the network has no input named '" + name + "' (its inputs: " +
                                      names_of(session.inputs()) + ")");
  }
  return *info;
}

// Records a fixed batch dimension; all inputs that have one must agree.
void note_fixed_batch(PipelinePlan& plan, const TensorInfo& info, const std::string& field) {
  if (info.shape.empty() || info.shape[0] < 0) return;
  const int batch = static_cast<int>(info.shape[0]);
  if (batch < 1) throw_invalid_argument(field, "network input '" + info.name + "' has a batch dimension of 0");
  if (plan.fixed_batch != 0 && plan.fixed_batch != batch) {
    throw_invalid_argument(field, "network input '" + info.name + "' has a fixed batch size of " +
                                      std::to_string(batch) + " but another input has " +
                                      std::to_string(plan.fixed_batch));
  }
  plan.fixed_batch = batch;
}

// Whether the network's input has a batch dimension before the `per_image_rank` dimensions the spec gives.
bool has_batch_dim(const PipelinePlan& plan, const TensorInfo& info, std::size_t per_image_rank, bool image,
                   const std::string& rank_field) {
  const std::size_t rank = info.shape.size();
  if (rank == 0) return true;  // shape unknown to the graph: assume the usual batch dimension
  if (rank == per_image_rank + 1) return true;
  if (rank == per_image_rank) {
    if (image && plan.batched_output) {
      throw_invalid_argument("batched_output", "network input '" + info.name + "' " + shape_to_string(info.shape) +
                                                   " has no batch dimension: it takes one image per run, so "
                                                   "batched_output must be false");
    }
    return false;
  }
  throw_invalid_argument(rank_field, "network input '" + info.name + "' has rank " + std::to_string(rank) + " " +
                                         shape_to_string(info.shape) + "; this input gives " +
                                         std::to_string(per_image_rank) + " dimensions per image (" +
                                         std::to_string(per_image_rank + 1) + " with the batch)");
}

void check_image_input(PipelinePlan& plan, const Session& session, const ImageInputSpec& spec,
                       std::size_t position) {
  const auto field = [&](const std::string& rest) { return input_field(spec.input_index, position, rest); };
  const TensorInfo& info = network_input(plan, session, spec.tensor_name, field("tensor_name"));
  const ElementType type = spec.data_type == DataType::kFloat32 ? ElementType::kFloat32 : ElementType::kUint8;
  if (info.type != type) {
    throw_invalid_argument(field("image.data_type"),
                           "network input '" + info.name + "' takes " + detail::onnx_type_name(info.type) +
                               "; data_type " + (type == ElementType::kFloat32 ? "FLOAT32" : "UINT8") + " gives " +
                               detail::onnx_type_name(type));
  }
  FeedPlan feed;
  feed.tensor_name = spec.tensor_name;
  feed.network_type = type;
  feed.batch_dim = has_batch_dim(plan, info, kImageRank, true, field("tensor_name"));
  plan.feeds.push_back(feed);
  if (info.shape.empty()) return;
  if (feed.batch_dim) note_fixed_batch(plan, info, field("tensor_name"));

  const std::size_t first = feed.batch_dim ? 1 : 0;
  const bool nchw = spec.dimension_order == DimensionOrder::kNCHW;
  const int64_t channels = info.shape[first + (nchw ? 0 : 2)];
  const int64_t height = info.shape[first + (nchw ? 1 : 0)];
  const int64_t width = info.shape[first + (nchw ? 2 : 1)];
  const std::string shape = shape_to_string(info.shape);
  if (channels >= 0 && channels != spec.channel_count()) {
    const int64_t other = info.shape[first + (nchw ? 2 : 0)];
    const bool order_mistake = other == spec.channel_count();
    throw_invalid_argument(order_mistake ? field("image.dimension_order") : field("image.color_channels"),
                           "network input '" + info.name + "' " + shape + " takes " + std::to_string(channels) +
                               " channels in " + (nchw ? "NCHW" : "NHWC") + " order; the spec gives " +
                               std::to_string(spec.channel_count()) +
                               (order_mistake ? " (the other dimension order would fit)" : ""));
  }
  if (height < 0 && width < 0) return;
  if (spec.resize_type == ResizeType::kNetwork) {
    throw_invalid_argument(field("image.resize_type"),
                           "network input '" + info.name + "' " + shape +
                               " has a fixed image size; NETWORK resizing gives sizes that follow each image: "
                               "use SQUASH, CROP or LETTERBOX with target_size");
  }
  if ((height >= 0 && height != spec.target_height) || (width >= 0 && width != spec.target_width)) {
    const auto side = [](int64_t v) { return v >= 0 ? std::to_string(v) : std::string("any"); };
    throw_invalid_argument(field("image.target_size"),
                           "network input '" + info.name + "' " + shape + " takes " + side(width) + "x" +
                               side(height) + " (width x height) images; target_size gives " +
                               std::to_string(spec.target_width) + "x" + std::to_string(spec.target_height));
  }
}

bool convertible_constant(ElementType type) {
  return type == ElementType::kFloat32 || type == ElementType::kFloat64 || type == ElementType::kInt32 ||
         type == ElementType::kInt64;
}

void check_constant_input(PipelinePlan& plan, const Session& session, const ConstantInputSpec& spec,
                          std::size_t position) {
  const auto field = [&](const std::string& rest) { return input_field(spec.input_index, position, rest); };
  const TensorInfo& info = network_input(plan, session, spec.tensor_name, field("tensor_name"));
  if (!convertible_constant(info.type)) {
    throw_invalid_argument(field("tensor_name"), "network input '" + info.name + "' takes " +
                                                     detail::onnx_type_name(info.type) +
                                                     "; a constant feeds float, double, int32 or int64 tensors");
  }
  FeedPlan feed;
  feed.tensor_name = spec.tensor_name;
  feed.constant = true;
  feed.network_type = info.type;
  feed.batch_dim = has_batch_dim(plan, info, spec.shape.size(), false, field("constant.shape"));
  plan.feeds.push_back(feed);
  if (info.shape.empty()) return;
  if (feed.batch_dim) note_fixed_batch(plan, info, field("tensor_name"));
  const std::size_t first = feed.batch_dim ? 1 : 0;
  for (std::size_t d = 0; d < spec.shape.size(); ++d) {
    if (info.shape[first + d] >= 0 && info.shape[first + d] != spec.shape[d]) {
      throw_invalid_argument(field("constant.shape"), "network input '" + info.name + "' has shape " +
                                                          shape_to_string(info.shape) + "; the constant's shape " +
                                                          shape_to_string(spec.shape) + " does not fit it");
    }
  }
}

void check_outputs(PipelinePlan& plan, const Session& session, const std::vector<std::string>& requested) {
  const auto numeric = [](const TensorInfo& info) {
    return info.type != ElementType::kUndefined && info.type != ElementType::kString;
  };
  if (requested.empty()) {
    for (const auto& info : session.outputs()) {
      if (numeric(info)) plan.output_names.push_back(info.name);
    }
    if (plan.output_names.empty()) {
      throw_invalid_argument("output_tensors", "the network has no numeric tensor output");
    }
  }
  for (std::size_t i = 0; i < requested.size(); ++i) {
    const std::string field = "output_tensors[" + std::to_string(i) + "]";
    const TensorInfo* info = session.find_output(requested[i]);
    if (info == nullptr) {
      throw_invalid_argument(field, "the network has no output named '" + requested[i] + "' (its outputs: " +
                                        names_of(session.outputs()) + ")");
    }
    if (!numeric(*info)) {
      throw_invalid_argument(field, "output '" + requested[i] + "' is not a numeric tensor");
    }
    plan.output_names.push_back(requested[i]);
  }
}

}  // namespace

PipelinePlan plan_pipeline(const Session& session, const PreprocessingSpec& spec,
                           const std::vector<std::string>& output_names) {
  PipelinePlan plan;
  plan.batched_output = spec.batched_output;
  for (std::size_t i = 0; i < spec.image_inputs.size(); ++i) check_image_input(plan, session, spec.image_inputs[i], i);
  for (std::size_t i = 0; i < spec.constant_inputs.size(); ++i) {
    check_constant_input(plan, session, spec.constant_inputs[i], spec.image_inputs.size() + i);
  }
  for (const auto& info : session.inputs()) {
    bool fed = false;
    for (const auto& feed : plan.feeds) fed = fed || feed.tensor_name == info.name;
    if (!fed) {
      throw_invalid_argument("inputs", "network input '" + info.name + "' " + shape_to_string(info.shape) +
                                           " is fed by no input of the preprocessing");
    }
  }
  if (!spec.batched_output && plan.fixed_batch > 1) {
    throw_invalid_argument("batched_output", "the network takes batches of exactly " +
                                                 std::to_string(plan.fixed_batch) +
                                                 " images; batched_output false runs one image at a time");
  }
  plan.max_batch = spec.batched_output ? plan.fixed_batch : 1;
  check_outputs(plan, session, output_names);
  return plan;
}

}  // namespace sightd
