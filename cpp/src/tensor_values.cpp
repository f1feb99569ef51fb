#include <cmath>

#include "postprocess_internal.hpp"
#include "sightd/error.hpp"

namespace sightd::detail {

void FloatValues::assign(const Tensor& tensor, const std::string& field) {
  size_ = tensor.element_count();
  if (tensor.type == ElementType::kFloat32) {
    data_ = tensor.as<float>();
    return;
  }
  if (element_size(tensor.type) == 0) {
    throw_invalid_argument(field, std::string("tensor of element type ") + element_type_name(tensor.type) +
                                      " has no numeric values");
  }
  storage_.resize(size_);
  for (std::size_t i = 0; i < size_; ++i) storage_[i] = static_cast<float>(tensor.value_as_double(i));
  data_ = storage_.data();
}

std::vector<int64_t> shape_of_rank(const Tensor& tensor, std::size_t rank, const std::string& field,
                                   const std::string& expected) {
  std::vector<int64_t> shape = tensor.shape;
  std::size_t drop = 0;
  while (shape.size() - drop > rank && shape[drop] == 1) ++drop;
  if (shape.size() - drop != rank) {
    throw_invalid_argument(field, "expected a tensor of shape " + expected + " (a leading batch dimension of 1 "
                                      "is accepted), got " + shape_to_string(tensor.shape));
  }
  shape.erase(shape.begin(), shape.begin() + static_cast<std::ptrdiff_t>(drop));
  for (int64_t d : shape) {
    if (d < 0) throw_invalid_argument(field, "tensor has a negative dimension: " + shape_to_string(tensor.shape));
  }
  return shape;
}

}  // namespace sightd::detail
