#include "common.hpp"

namespace sightd::bindings {

void bind_engine(py::module_& m) { (void)m; }

}  // namespace sightd::bindings
