// The hot path's entry point: prepare the batch (decode + preprocess), run the session once per same-shape
// group (in chunks of the model's fixed batch size, or once per image without batched_output), hand each
// image its outputs.
#include "sightd/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "pipeline_plan.hpp"

namespace sightd {

namespace {

// Rows [start, start + count) of a tensor, sharing its memory.
Tensor rows(const Tensor& tensor, int64_t start, int64_t count) {
  const std::size_t row_bytes = tensor.byte_size() / static_cast<std::size_t>(tensor.shape[0]);
  Tensor view = tensor;
  view.shape[0] = count;
  view.data = static_cast<unsigned char*>(tensor.data) + row_bytes * static_cast<std::size_t>(start);
  return view;
}

// The rows padded with zero rows up to `size` (a fixed batch dimension larger than what is left).
Tensor padded(const Tensor& view, int64_t size) {
  std::vector<int64_t> shape = view.shape;
  shape[0] = size;
  Tensor full = Tensor::zeros(view.type, std::move(shape));
  if (view.byte_size() > 0) std::memcpy(full.data, view.data, view.byte_size());
  return full;
}

template <typename T>
Tensor converted_to(const Tensor& source, ElementType type) {
  Tensor out = Tensor::zeros(type, source.shape);
  const float* in = source.as<float>();
  T* values = out.as<T>();
  for (std::size_t i = 0; i < source.element_count(); ++i) values[i] = static_cast<T>(in[i]);
  return out;
}

// Constants are prepared as float32; the network may want another numeric type.
Tensor as_network_type(const Tensor& constant, ElementType type) {
  if (constant.type == type) return constant;
  switch (type) {
    case ElementType::kFloat64: return converted_to<double>(constant, type);
    case ElementType::kInt32: return converted_to<int32_t>(constant, type);
    case ElementType::kInt64: return converted_to<int64_t>(constant, type);
    default: break;
  }
  throw Error(ErrorCode::kInternal, "no conversion of a constant to " + std::string(element_type_name(type)));
}

void fail(ImageOutcome& outcome, ErrorCode code, std::string field, std::string message) {
  outcome.ok = false;
  outcome.error_code = code;
  outcome.error_field = std::move(field);
  outcome.error_message = std::move(message);
  outcome.outputs.clear();
  outcome.constants.clear();
}

}  // namespace

struct Pipeline::Impl {
  std::shared_ptr<const Session> session;
  std::shared_ptr<ThreadPool> pool;
  BatchPreprocessor preprocessor;
  PipelinePlan plan;

  Impl(std::shared_ptr<const Session> s, PreprocessingSpec spec, BatchOptions options)
      : session(std::move(s)),
        pool(options.pool ? options.pool : ThreadPool::shared()),
        preprocessor(std::move(spec), with_pool(std::move(options), pool)) {}

  static BatchOptions with_pool(BatchOptions options, const std::shared_ptr<ThreadPool>& pool) {
    options.pool = pool;
    return options;
  }

  // One session run over rows [start, start + count) of a group; fills the outcomes of those images.
  void run_chunk(const PreparedGroup& group, std::size_t start, std::size_t count,
                 std::vector<ImageOutcome>& outcomes) const {
    const auto first = static_cast<int64_t>(start);
    const auto n = static_cast<int64_t>(count);
    const int64_t run_rows = plan.fixed_batch > 0 ? plan.fixed_batch : n;
    std::vector<std::pair<std::string, Tensor>> feeds;
    feeds.reserve(plan.feeds.size());
    for (const FeedPlan& feed : plan.feeds) {
      const auto prepared = std::find_if(group.feeds.begin(), group.feeds.end(),
                                         [&](const auto& named) { return named.first == feed.tensor_name; });
      if (prepared == group.feeds.end()) {
        throw Error(ErrorCode::kInternal, "the batch preparation made no tensor for '" + feed.tensor_name + "'");
      }
      Tensor tensor;
      if (!feed.batch_dim) {
        // One image per run, or a constant, identical over a group whose images share their shape.
        tensor = prepared->second.slice(feed.constant ? 0 : first, false);
      } else {
        tensor = rows(prepared->second, first, n);
        if (run_rows > n) tensor = padded(tensor, run_rows);
      }
      if (feed.constant) tensor = as_network_type(tensor, feed.network_type);
      feeds.emplace_back(feed.tensor_name, std::move(tensor));
    }
    std::vector<Tensor> outputs = session->run(feeds, plan.output_names);
    if (plan.batched_output) {
      for (std::size_t o = 0; o < outputs.size(); ++o) {
        const Tensor& output = outputs[o];
        if (output.shape.empty() || output.shape[0] != run_rows) {
          throw Error(ErrorCode::kEngine, "output '" + plan.output_names[o] + "' has shape " +
                                              shape_to_string(output.shape) + ", not one row per image of the batch (" +
                                              std::to_string(run_rows) +
                                              "): networks whose outputs are not per image need batched_output false");
        }
      }
    }
    for (std::size_t r = 0; r < count; ++r) {
      ImageOutcome& outcome = outcomes[group.images[start + r]];
      outcome.outputs.clear();
      outcome.outputs.reserve(outputs.size());
      for (const Tensor& output : outputs) {
        outcome.outputs.push_back(plan.batched_output ? output.slice(static_cast<int64_t>(r), false) : output);
      }
    }
  }
};

Pipeline::Pipeline(std::shared_ptr<const Session> session, PreprocessingSpec spec,
                   std::vector<std::string> output_names, BatchOptions options) {
  if (!session) throw_invalid_argument("session", "no session");
  impl_ = std::make_unique<Impl>(std::move(session), std::move(spec), std::move(options));
  impl_->plan = plan_pipeline(*impl_->session, impl_->preprocessor.spec(), output_names);
}

Pipeline::~Pipeline() = default;

const PreprocessingSpec& Pipeline::spec() const noexcept { return impl_->preprocessor.spec(); }
const Session& Pipeline::session() const noexcept { return *impl_->session; }
const std::vector<std::string>& Pipeline::output_names() const noexcept { return impl_->plan.output_names; }
const std::shared_ptr<ThreadPool>& Pipeline::pool() const noexcept { return impl_->pool; }
int Pipeline::max_batch() const noexcept { return impl_->plan.max_batch; }

std::vector<ImageOutcome> Pipeline::run(const std::vector<ImageRequest>& images, StageTimes* times) const {
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  std::vector<ImageOutcome> outcomes(images.size());
  PreparedBatch batch;
  const Clock::time_point prepare_start = Clock::now();
  try {
    batch = impl_->preprocessor.prepare(images);
  } catch (const Error& error) {
    for (auto& outcome : outcomes) fail(outcome, error.code(), error.field(), error.what());
    if (times) times->decode_preprocess = seconds_since(prepare_start);
    return outcomes;
  } catch (const std::exception& error) {
    for (auto& outcome : outcomes) fail(outcome, ErrorCode::kInternal, "", error.what());
    if (times) times->decode_preprocess = seconds_since(prepare_start);
    return outcomes;
  }
  const Clock::time_point inference_start = Clock::now();
  if (times) times->decode_preprocess = std::chrono::duration<double>(inference_start - prepare_start).count();
  const std::size_t constant_count = impl_->preprocessor.spec().constant_inputs.size();
  for (std::size_t i = 0; i < images.size(); ++i) {
    const PreparedImage& prepared = batch.images[i];
    ImageOutcome& outcome = outcomes[i];
    outcome.transforms = prepared.transforms;
    outcome.ok = prepared.ok;
    if (!prepared.ok) {
      fail(outcome, prepared.error_code, prepared.error_field, prepared.error_message);
      continue;
    }
    // The group's feeds: image inputs first, then constants, in the spec's order.
    const PreparedGroup& group = batch.groups[prepared.group];
    const std::size_t first_constant = group.feeds.size() - constant_count;
    for (std::size_t c = 0; c < constant_count; ++c) {
      outcome.constants.push_back(group.feeds[first_constant + c].second.slice(static_cast<int64_t>(prepared.row), false));
    }
  }
  for (const PreparedGroup& group : batch.groups) {
    const std::size_t size = group.images.size();
    const std::size_t chunk = impl_->plan.max_batch > 0 ? static_cast<std::size_t>(impl_->plan.max_batch) : size;
    for (std::size_t start = 0; start < size; start += chunk) {
      const std::size_t count = std::min(chunk, size - start);
      try {
        impl_->run_chunk(group, start, count, outcomes);
      } catch (const Error& error) {
        for (std::size_t r = 0; r < count; ++r) {
          fail(outcomes[group.images[start + r]], error.code(), error.field(), error.what());
        }
      } catch (const std::exception& error) {
        for (std::size_t r = 0; r < count; ++r) {
          fail(outcomes[group.images[start + r]], ErrorCode::kInternal, "", error.what());
        }
      }
    }
  }
  if (times) times->inference = seconds_since(inference_start);
  return outcomes;
}

}  // namespace sightd
