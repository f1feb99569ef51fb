// Recognizer: the pipeline's per-image tensors handed to each post-processor, looked up once at
// construction so that a request only copies tensor headers.
#include "sightd/recognizer.hpp"

#include <chrono>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace sightd {

namespace {

// Where a tensor a post-processor reads comes from in an ImageOutcome.
struct TensorSource {
  bool constant = false;  // ImageOutcome::constants, else ImageOutcome::outputs
  std::size_t index = 0;
};

std::string quoted_list(const std::vector<std::string>& names) {
  std::string text;
  for (const auto& name : names) text += (text.empty() ? "'" : ", '") + name + "'";
  return text.empty() ? "none" : text;
}

TensorSource find_source(const Pipeline& pipeline, const std::string& name, const std::string& field) {
  const auto& outputs = pipeline.output_names();
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    if (outputs[o] == name) return {false, o};
  }
  const auto& constants = pipeline.spec().constant_inputs;
  std::vector<std::string> constant_names;
  for (std::size_t c = 0; c < constants.size(); ++c) {
    if (constants[c].tensor_name == name) return {true, c};
    constant_names.push_back(constants[c].tensor_name);
  }
  for (const auto& image : pipeline.spec().image_inputs) {
    if (image.tensor_name == name) {
      throw_invalid_argument(field, "reads tensor '" + name +
                                        "', an image input of the network: post-processing reads outputs and "
                                        "constant inputs only");
    }
  }
  throw_invalid_argument(field, "reads tensor '" + name + "', which is neither an output the pipeline asks for (" +
                                    quoted_list(outputs) + ") nor a constant input of the preprocessing (" +
                                    quoted_list(constant_names) + ")");
}

void fail(Recognition& recognition, ErrorCode code, std::string field, std::string message) {
  recognition.ok = false;
  recognition.error_code = code;
  recognition.error_field = std::move(field);
  recognition.error_message = std::move(message);
  recognition.outputs.clear();
}

std::string prefixed(std::size_t index, const std::string& field) {
  return "post_processings[" + std::to_string(index) + "]" + (field.empty() ? "" : "." + field);
}

}  // namespace

struct Recognizer::Impl {
  std::shared_ptr<const Pipeline> pipeline;
  std::vector<std::shared_ptr<const PostProcessor>> post_processors;
  std::vector<std::vector<TensorSource>> sources;  // per post-processor, in its required_tensors() order

  // One image: every post-processor on its tensors. Throws Error with the field already prefixed.
  void post_process(const ImageOutcome& outcome, bool show_discarded, int max_predictions,
                    Recognition& recognition) const {
    recognition.outputs.reserve(post_processors.size());
    std::vector<Tensor> tensors;
    for (std::size_t p = 0; p < post_processors.size(); ++p) {
      tensors.clear();
      for (const TensorSource& source : sources[p]) {
        tensors.push_back(source.constant ? outcome.constants.at(source.index) : outcome.outputs.at(source.index));
      }
      try {
        recognition.outputs.push_back(
            post_processors[p]->process(tensors, outcome.transforms.at(0), show_discarded, max_predictions));
      } catch (const Error& error) {
        throw Error(error.code(), prefixed(p, error.field()), error.what());
      }
    }
    recognition.ok = true;
  }
};

Recognizer::Recognizer(std::shared_ptr<const Pipeline> pipeline,
                       std::vector<std::shared_ptr<const PostProcessor>> post_processors) {
  if (!pipeline) throw_invalid_argument("pipeline", "no pipeline");
  if (post_processors.empty()) throw_invalid_argument("post_processings", "at least one post-processor is needed");
  auto impl = std::make_unique<Impl>();
  for (std::size_t p = 0; p < post_processors.size(); ++p) {
    const std::string field = prefixed(p, "");
    if (!post_processors[p]) throw_invalid_argument(field, "no post-processor");
    std::vector<TensorSource> sources;
    for (const std::string& name : post_processors[p]->required_tensors()) {
      sources.push_back(find_source(*pipeline, name, field));
    }
    impl->sources.push_back(std::move(sources));
  }
  impl->pipeline = std::move(pipeline);
  impl->post_processors = std::move(post_processors);
  impl_ = std::move(impl);
}

Recognizer::~Recognizer() = default;

const Pipeline& Recognizer::pipeline() const noexcept { return *impl_->pipeline; }
std::size_t Recognizer::output_count() const noexcept { return impl_->post_processors.size(); }

std::vector<Recognition> Recognizer::recognize(const std::vector<ImageRequest>& images, bool show_discarded,
                                               int max_predictions, StageTimes* times) const {
  const Impl& impl = *impl_;
  const std::vector<ImageOutcome> outcomes = impl.pipeline->run(images, times);
  const auto postprocess_start = std::chrono::steady_clock::now();
  std::vector<Recognition> recognitions(outcomes.size());
  const auto body = [&](std::size_t i) {
    const ImageOutcome& outcome = outcomes[i];
    Recognition& recognition = recognitions[i];
    if (!outcome.ok) {
      fail(recognition, outcome.error_code, outcome.error_field, outcome.error_message);
      return;
    }
    try {
      impl.post_process(outcome, show_discarded, max_predictions, recognition);
    } catch (const Error& error) {
      fail(recognition, error.code(), error.field(), error.what());
    } catch (const std::exception& error) {
      fail(recognition, ErrorCode::kInternal, "", error.what());
    }
  };
  // Classification is a few microseconds per image: not worth waking the pool for a single image.
  if (outcomes.size() == 1) {
    body(0);
  } else {
    impl.pipeline->pool()->parallel_for(outcomes.size(), body);
  }
  if (times) {
    times->postprocess = std::chrono::duration<double>(std::chrono::steady_clock::now() - postprocess_start).count();
  }
  return recognitions;
}

}  // namespace sightd
