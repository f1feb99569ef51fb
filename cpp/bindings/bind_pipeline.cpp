// The thread pool that decodes and preprocesses the images of a batch, and the pipeline (decode ->
// preprocess -> ONNX Runtime) that takes one.
#include <memory>

#include "common.hpp"
#include "sightd/thread_pool.hpp"

namespace sightd::bindings {

void bind_pipeline(py::module_& m) {
  py::class_<ThreadPool, std::shared_ptr<ThreadPool>>(m, "ThreadPool")
      .def(py::init<int>(), py::arg("threads"))
      .def_property_readonly("size", &ThreadPool::size);
}

}  // namespace sightd::bindings
