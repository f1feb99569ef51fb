#include "common.hpp"

namespace sightd::bindings {

void bind_pipeline(py::module_& m) { (void)m; }

}  // namespace sightd::bindings
