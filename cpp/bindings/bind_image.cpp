#include "common.hpp"

namespace sightd::bindings {

void bind_image(py::module_& m) { (void)m; }

}  // namespace sightd::bindings
