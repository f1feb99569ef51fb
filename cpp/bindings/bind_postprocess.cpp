#include "common.hpp"

namespace sightd::bindings {

void bind_postprocess(py::module_& m) { (void)m; }

}  // namespace sightd::bindings
