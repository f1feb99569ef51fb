#include "common.hpp"

namespace sightd::bindings {

void bind_preprocess(py::module_& m) { (void)m; }

}  // namespace sightd::bindings
