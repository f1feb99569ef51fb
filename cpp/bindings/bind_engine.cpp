// ONNX Runtime loading, sessions, introspection and raw runs. The GIL is released while a model loads and
// while a session runs, so Python threads can run one session concurrently.
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common.hpp"
#include "sightd/engine.hpp"
#include "sightd/error.hpp"

namespace sightd::bindings {

namespace {

std::shared_ptr<Session> session_from_bytes(const py::buffer& model, const SessionOptions& options) {
  // The buffer stays exported (so a bytearray cannot be resized) while the GIL is released.
  const py::buffer_info info = model.request();
  if (info.ndim > 1 && !(info.strides.empty() || info.strides.back() == info.itemsize)) {
    throw_invalid_argument("model", "the model bytes must be contiguous");
  }
  const auto size = static_cast<std::size_t>(info.size) * static_cast<std::size_t>(info.itemsize);
  py::gil_scoped_release release;
  return Session::from_bytes(info.ptr, size, options);
}

py::list run_session(const Session& session, const py::dict& feeds, const std::vector<std::string>& output_names) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  tensors.reserve(feeds.size());
  for (const auto& [key, value] : feeds) {
    const auto name = py::cast<std::string>(key);
    py::array array = py::array::ensure(value, py::array::c_style);
    if (!array) {
      PyErr_Clear();
      throw_invalid_argument(name, "input '" + name + "' is not convertible to a NumPy array");
    }
    tensors.emplace_back(name, numpy_to_tensor(array, name));
  }
  std::vector<Tensor> outputs;
  {
    py::gil_scoped_release release;
    outputs = session.run(tensors, output_names);
  }
  py::list arrays;
  for (const auto& output : outputs) arrays.append(tensor_to_numpy(output));
  return arrays;
}

std::string info_repr(const TensorInfo& info) {
  std::string shape = "[";
  for (std::size_t d = 0; d < info.shape.size(); ++d) {
    if (d) shape += ", ";
    shape += info.shape[d] >= 0 ? std::to_string(info.shape[d])
                                : (info.dim_names[d].empty() ? "?" : "'" + info.dim_names[d] + "'");
  }
  return "TensorInfo(name='" + info.name + "', dtype=" + element_type_name(info.type) + ", shape=" + shape + "])";
}

}  // namespace

void bind_engine(py::module_& m) {
  m.def(
      "load_onnxruntime",
      [](const std::string& path) {
        py::gil_scoped_release release;
        load_onnxruntime(path);
      },
      py::arg("library_path"));
  m.def("onnxruntime_loaded", &onnxruntime_loaded);
  m.def("onnxruntime_library_path", &onnxruntime_library_path);
  m.def("onnxruntime_version", &onnxruntime_version);
  m.def("available_providers", &available_providers);
  m.def("take_onnxruntime_log", [] {
    std::vector<std::tuple<int, std::string, std::string>> records;
    for (auto& record : take_onnxruntime_log()) {
      records.emplace_back(record.severity, std::move(record.category), std::move(record.message));
    }
    return records;
  });

  py::enum_<GraphOptimization>(m, "GraphOptimization")
      .value("DISABLED", GraphOptimization::kDisabled)
      .value("BASIC", GraphOptimization::kBasic)
      .value("EXTENDED", GraphOptimization::kExtended)
      .value("ALL", GraphOptimization::kAll);

  py::class_<SessionOptions>(m, "SessionOptions")
      .def(py::init([](int intra_op_threads, int inter_op_threads, GraphOptimization optimization,
                       std::string execution_provider, int device_id, bool allow_spinning) {
             SessionOptions options;
             options.allow_spinning = allow_spinning;
             options.intra_op_threads = intra_op_threads;
             options.inter_op_threads = inter_op_threads;
             options.optimization = optimization;
             options.execution_provider = std::move(execution_provider);
             options.device_id = device_id;
             return options;
           }),
           py::kw_only(), py::arg("intra_op_threads") = 0, py::arg("inter_op_threads") = 0,
           py::arg("optimization") = GraphOptimization::kAll, py::arg("execution_provider") = "auto",
           py::arg("device_id") = 0, py::arg("allow_spinning") = true)
      .def_readwrite("allow_spinning", &SessionOptions::allow_spinning)
      .def_readwrite("intra_op_threads", &SessionOptions::intra_op_threads)
      .def_readwrite("inter_op_threads", &SessionOptions::inter_op_threads)
      .def_readwrite("optimization", &SessionOptions::optimization)
      .def_readwrite("execution_provider", &SessionOptions::execution_provider)
      .def_readwrite("device_id", &SessionOptions::device_id);

  py::class_<TensorInfo>(m, "TensorInfo")
      .def_readonly("name", &TensorInfo::name)
      .def_property_readonly("dtype", [](const TensorInfo& info) { return element_type_name(info.type); })
      .def_property_readonly("element_type", [](const TensorInfo& info) { return static_cast<int>(info.type); })
      .def_readonly("shape", &TensorInfo::shape)
      .def_readonly("dim_names", &TensorInfo::dim_names)
      .def("__repr__", &info_repr);

  py::class_<Session, std::shared_ptr<Session>>(m, "Session")
      .def_static(
          "from_path",
          [](const std::string& path, const SessionOptions& options) {
            py::gil_scoped_release release;
            return Session::from_path(path, options);
          },
          py::arg("path"), py::arg("options") = SessionOptions())
      .def_static("from_bytes", &session_from_bytes, py::arg("model"), py::arg("options") = SessionOptions())
      .def_property_readonly("inputs", &Session::inputs)
      .def_property_readonly("outputs", &Session::outputs)
      .def_property_readonly("provider", &Session::provider)
      .def_property_readonly("fallback_reason", &Session::fallback_reason)
      .def("run", &run_session, py::arg("feeds"), py::arg("output_names") = std::vector<std::string>());
}

}  // namespace sightd::bindings
