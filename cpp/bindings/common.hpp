// Shared pieces of the pybind11 binding: NumPy <-> Tensor conversion and the registration functions of each
// part of the core (one file per part, all in this folder, registered by module.cpp).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "sightd/tensor.hpp"

namespace sightd::bindings {

namespace py = pybind11;

// A NumPy array sharing the tensor's memory (kept alive by the array's base object).
py::array tensor_to_numpy(const Tensor& tensor);
// A tensor viewing a C-contiguous NumPy array (kept alive by the tensor's owner). Throws
// Error(kInvalidArgument, field) for unsupported dtypes or non-contiguous arrays.
Tensor numpy_to_tensor(const py::array& array, const std::string& field);
// The element type of a NumPy dtype; kUndefined when there is none.
ElementType element_type_of(const py::dtype& dtype);

void bind_image(py::module_& m);
void bind_preprocess(py::module_& m);
void bind_engine(py::module_& m);
void bind_pipeline(py::module_& m);
void bind_postprocess(py::module_& m);

}  // namespace sightd::bindings
