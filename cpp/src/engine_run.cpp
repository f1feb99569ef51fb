// Running a session: feeds are checked against the graph first (so that a wrong name, type or shape gets a
// clear message naming the input rather than ONNX Runtime's), then wrapped without copying; outputs come
// back as Tensors owning their Ort::Value.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine_internal.hpp"
#include "engine_session.hpp"
#include "sightd/error.hpp"

namespace sightd {

namespace {

std::string names_of(const std::vector<TensorInfo>& infos) {
  std::string names;
  for (const auto& info : infos) names += (names.empty() ? "'" : ", '") + info.name + "'";
  return names.empty() ? "none" : names;
}

void check_feed(const TensorInfo& info, const Tensor& tensor, std::map<std::string, int64_t>& symbols,
                std::map<std::string, std::string>& symbol_sources) {
  const std::string& name = info.name;
  if (tensor.type != info.type) {
    throw_invalid_argument(name, "input '" + name + "' takes " + detail::onnx_type_name(info.type) + ", got " +
                                     element_type_name(tensor.type));
  }
  for (int64_t d : tensor.shape) {
    if (d < 0) throw_invalid_argument(name, "invalid shape " + shape_to_string(tensor.shape));
  }
  if (tensor.data == nullptr && tensor.element_count() > 0) throw_invalid_argument(name, "tensor has no data");
  // An empty shape in the graph means a scalar or an unknown shape: ONNX Runtime checks that case itself.
  if (info.shape.empty()) return;
  if (tensor.shape.size() != info.shape.size()) {
    throw_invalid_argument(name, "input '" + name + "' takes rank " + std::to_string(info.shape.size()) + " " +
                                     shape_to_string(info.shape) + ", got shape " + shape_to_string(tensor.shape));
  }
  for (std::size_t d = 0; d < info.shape.size(); ++d) {
    if (info.shape[d] >= 0 && tensor.shape[d] != info.shape[d]) {
      throw_invalid_argument(name, "input '" + name + "' takes shape " + shape_to_string(info.shape) +
                                       " (dimension " + std::to_string(d) + " fixed), got " +
                                       shape_to_string(tensor.shape));
    }
    const std::string& symbol = info.dim_names[d];
    if (info.shape[d] >= 0 || symbol.empty()) continue;
    auto [it, inserted] = symbols.emplace(symbol, tensor.shape[d]);
    if (inserted) {
      symbol_sources[symbol] = name;
    } else if (it->second != tensor.shape[d]) {
      throw_invalid_argument(name, "dimension '" + symbol + "' is " + std::to_string(tensor.shape[d]) +
                                       " in input '" + name + "' but " + std::to_string(it->second) +
                                       " in input '" + symbol_sources[symbol] + "'");
    }
  }
}

Tensor wrap_output(Ort::Value value, const std::string& name) {
  if (!value.IsTensor()) {
    throw Error(ErrorCode::kEngine, name, "output '" + name + "' is not a tensor");
  }
  auto holder = std::make_shared<Ort::Value>(std::move(value));
  auto info = holder->GetTensorTypeAndShapeInfo();
  Tensor tensor;
  tensor.type = detail::to_element_type(info.GetElementType());
  if (tensor.type == ElementType::kUndefined || tensor.type == ElementType::kString) {
    throw Error(ErrorCode::kEngine, name, "output '" + name + "' has an element type the core cannot return");
  }
  tensor.shape = info.GetShape();
  tensor.data = holder->GetTensorMutableRawData();
  tensor.owner = std::move(holder);
  return tensor;
}

}  // namespace

std::vector<Tensor> Session::run(const std::vector<std::pair<std::string, Tensor>>& feeds,
                                 const std::vector<std::string>& output_names) const {
  const Impl& impl = *impl_;
  std::vector<const char*> input_names;
  std::vector<Ort::Value> input_values;
  input_names.reserve(feeds.size());
  input_values.reserve(feeds.size());
  std::map<std::string, int64_t> symbols;
  std::map<std::string, std::string> symbol_sources;
  for (const auto& [name, tensor] : feeds) {
    const TensorInfo* info = find_input(name);
    if (info == nullptr) {
      throw_invalid_argument(name, "the network has no input named '" + name + "' (its inputs: " +
                                       names_of(impl.inputs) + ")");
    }
    for (const char* fed : input_names) {
      if (name == fed) throw_invalid_argument(name, "input '" + name + "' is fed twice");
    }
    check_feed(*info, tensor, symbols, symbol_sources);
    input_names.push_back(info->name.c_str());
  }
  for (const auto& info : impl.inputs) {
    bool fed = false;
    for (const char* name : input_names) fed = fed || info.name == name;
    if (!fed) throw_invalid_argument(info.name, "input '" + info.name + "' is required but not fed");
  }

  const std::vector<std::string>& wanted = output_names.empty() ? impl.tensor_outputs : output_names;
  std::vector<const char*> ort_output_names;
  ort_output_names.reserve(wanted.size());
  for (const auto& name : wanted) {
    const TensorInfo* info = find_output(name);
    if (info == nullptr) {
      throw_invalid_argument(name, "the network has no output named '" + name + "' (its outputs: " +
                                       names_of(impl.outputs) + ")");
    }
    if (info->type == ElementType::kUndefined || info->type == ElementType::kString) {
      throw_invalid_argument(name, "output '" + name + "' is not a numeric tensor: the core cannot return it");
    }
    ort_output_names.push_back(info->name.c_str());
  }

  std::vector<Tensor> outputs;
  try {
    static unsigned char empty_placeholder = 0;  // ONNX Runtime wants a pointer even for zero elements
    for (const auto& [name, tensor] : feeds) {
      void* data = tensor.data != nullptr ? tensor.data : &empty_placeholder;
      input_values.push_back(Ort::Value::CreateTensor(impl.cpu_memory, data, tensor.byte_size(),
                                                      tensor.shape.data(), tensor.shape.size(),
                                                      detail::to_onnx_type(tensor.type)));
    }
    std::vector<Ort::Value> results =
        impl.session.Run(Ort::RunOptions{nullptr}, input_names.data(), input_values.data(), input_values.size(),
                         ort_output_names.data(), ort_output_names.size());
    outputs.reserve(results.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
      outputs.push_back(wrap_output(std::move(results[i]), wanted[i]));
    }
  } catch (const Ort::Exception& error) {
    detail::throw_engine("", error);
  }
  return outputs;
}

}  // namespace sightd
