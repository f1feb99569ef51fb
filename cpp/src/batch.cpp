// Batch preparation in three passes: (1) per image, in parallel: header, limits, roi, decode, roi applied,
// plans, resize (so only the small resized images outlive the pass); (2) grouping by input shapes and one
// allocation per input per group; (3) per image, in parallel: conversion straight into its slots.
#include "sightd/batch.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <new>
#include <opencv2/core.hpp>

namespace sightd {

namespace {

struct Staged {
  bool ok = false;
  ErrorCode code = ErrorCode::kInternal;
  std::string field;
  std::string message;
  Transform roi_transform;
  std::vector<ResizePlan> plans;  // one per image input
  std::vector<cv::Mat> resized;   // one per image input
  std::vector<int64_t> key;       // every image input's tensor shape, end to end
};

// Runs `step` and records its failure in `staged` instead of letting it escape: a bad image fails alone.
template <typename Step>
void guarded(Staged& staged, Step&& step) {
  try {
    step();
    return;
  } catch (const Error& error) {
    staged.code = error.code();
    staged.field = error.field();
    staged.message = error.what();
  } catch (const std::bad_alloc&) {
    staged.code = ErrorCode::kImageTooLarge;
    staged.message = "not enough memory to process the image";
  } catch (const std::exception& error) {
    staged.code = ErrorCode::kInternal;
    staged.message = error.what();
  }
  staged.ok = false;
  staged.resized.clear();
}

// Fraction of the (oriented) image the roi's rectangle keeps; background trimming is not known before
// decoding and counts as nothing cut.
std::pair<double, double> roi_fraction(const Roi& roi) {
  if (roi.has_bbox) return {roi.bbox.xmax - roi.bbox.xmin, roi.bbox.ymax - roi.bbox.ymin};
  if (!roi.polygon.empty()) {
    double xmin = 1.0, ymin = 1.0, xmax = 0.0, ymax = 0.0;
    for (const NormalizedPoint& p : roi.polygon) {
      xmin = std::min(xmin, p.x);
      xmax = std::max(xmax, p.x);
      ymin = std::min(ymin, p.y);
      ymax = std::max(ymax, p.y);
    }
    return {xmax - xmin, ymax - ymin};
  }
  return {1.0, 1.0};
}

Tensor uninitialised(ElementType type, std::vector<int64_t> shape) {
  Tensor tensor;
  tensor.type = type;
  tensor.shape = std::move(shape);
  // Every element gets written (image or padding): no zero-filling.
  const std::size_t bytes = std::max<std::size_t>(tensor.byte_size(), 1);
  tensor.owner =
      std::shared_ptr<unsigned char>(new unsigned char[bytes], std::default_delete<unsigned char[]>());
  tensor.data = tensor.owner.get();
  return tensor;
}

ElementType element_type_of(const ImageInputSpec& spec) {
  return spec.data_type == DataType::kFloat32 ? ElementType::kFloat32 : ElementType::kUint8;
}

}  // namespace

struct BatchPreprocessor::Impl {
  PreprocessingSpec spec;
  BatchOptions options;
  std::vector<std::unique_ptr<ImagePreprocessor>> preprocessors;
  std::optional<cv::Scalar> fill;  // outside polygons: the colour the first image input maps to zero

  void stage(const ImageRequest& request, Staged& staged) const;
  void fill_constants(PreparedGroup& group, const Staged& first) const;
};

BatchPreprocessor::BatchPreprocessor(PreprocessingSpec spec, BatchOptions options)
    : impl_(std::make_unique<Impl>()) {
  validate_preprocessing(spec);
  for (const ImageInputSpec& input : spec.image_inputs) {
    impl_->preprocessors.push_back(std::make_unique<ImagePreprocessor>(input));
  }
  impl_->fill = neutral_colour(spec.image_inputs.front());
  if (!options.pool) options.pool = ThreadPool::shared();
  impl_->spec = std::move(spec);
  impl_->options = std::move(options);
}

BatchPreprocessor::~BatchPreprocessor() = default;

const PreprocessingSpec& BatchPreprocessor::spec() const noexcept { return impl_->spec; }

void BatchPreprocessor::Impl::stage(const ImageRequest& request, Staged& staged) const {
  const ImageHeader header = read_image_header(request.data, request.size);
  check_pixel_limit(header, options.decode);
  validate_roi(request.roi);
  const int full_width = header.oriented_width();
  const int full_height = header.oriented_height();

  int min_width = 0;
  int min_height = 0;
  if (options.reduced_decoding) {
    // The smallest decoded size whose roi still holds as many pixels as every input's resized image.
    const auto [fx, fy] = roi_fraction(request.roi);
    const int crop_width = std::max(1, static_cast<int>(std::lround(full_width * fx)));
    const int crop_height = std::max(1, static_cast<int>(std::lround(full_height * fy)));
    for (const auto& preprocessor : preprocessors) {
      const ResizePlan plan = plan_resize(preprocessor->spec(), crop_width, crop_height);
      min_width = std::max(min_width, static_cast<int>(std::ceil(plan.resized_width / fx)));
      min_height = std::max(min_height, static_cast<int>(std::ceil(plan.resized_height / fy)));
    }
    if (min_width >= full_width || min_height >= full_height) min_width = min_height = 0;
  }

  DecodedImage decoded = decode_image(request.data, request.size, options.decode, min_width, min_height);
  RoiResult roi = apply_roi(decoded.bgr, request.roi, fill);
  staged.roi_transform = roi.transform;
  if (decoded.bgr.cols != full_width || decoded.bgr.rows != full_height) {
    // Reduced decoding: transforms refer to the full-resolution image all the same.
    const double sx = static_cast<double>(full_width) / decoded.bgr.cols;
    const double sy = static_cast<double>(full_height) / decoded.bgr.rows;
    Transform& t = staged.roi_transform;
    t.image_width = full_width;
    t.image_height = full_height;
    t.crop_x *= sx;
    t.crop_width *= sx;
    t.crop_y *= sy;
    t.crop_height *= sy;
  }
  for (std::size_t k = 0; k < preprocessors.size(); ++k) {
    const ImagePreprocessor& preprocessor = *preprocessors[k];
    const ResizePlan plan = plan_resize(preprocessor.spec(), roi.image.cols, roi.image.rows);
    staged.plans.push_back(plan);
    const std::vector<int64_t> shape = image_tensor_shape(preprocessor.spec(), plan);
    staged.key.insert(staged.key.end(), shape.begin(), shape.end());
    cv::Mat resized = preprocessor.resize(roi.image, plan);
    // A view of the decoded image would keep all of it alive until the conversion pass.
    staged.resized.push_back(resized.data == roi.image.data ? resized.clone() : resized);
  }
  staged.ok = true;
}

void BatchPreprocessor::Impl::fill_constants(PreparedGroup& group, const Staged& first) const {
  const auto rows = static_cast<int64_t>(group.images.size());
  for (const ConstantInputSpec& constant : spec.constant_inputs) {
    std::vector<float> row;
    row.reserve(constant.data.size());
    for (const ConstantValue& value : constant.data) {
      if (value.tensor_name.empty()) {
        row.push_back(static_cast<float>(value.number));
        continue;
      }
      for (std::size_t k = 0; k < spec.image_inputs.size(); ++k) {
        if (spec.image_inputs[k].tensor_name != value.tensor_name) continue;
        const auto shape = image_tensor_shape(spec.image_inputs[k], first.plans[k]);
        row.push_back(static_cast<float>(shape.at(static_cast<std::size_t>(value.dimension))));
        break;
      }
    }
    std::vector<int64_t> shape{rows};
    shape.insert(shape.end(), constant.shape.begin(), constant.shape.end());
    Tensor tensor = uninitialised(ElementType::kFloat32, std::move(shape));
    for (int64_t r = 0; r < rows; ++r) std::copy(row.begin(), row.end(), tensor.as<float>() + r * row.size());
    group.feeds.emplace_back(constant.tensor_name, std::move(tensor));
  }
}

PreparedBatch BatchPreprocessor::prepare(const std::vector<ImageRequest>& images) const {
  const Impl& impl = *impl_;
  const std::size_t inputs = impl.preprocessors.size();
  std::vector<Staged> staged(images.size());
  impl.options.pool->parallel_for(images.size(), [&](std::size_t i) {
    guarded(staged[i], [&] { impl.stage(images[i], staged[i]); });
  });

  PreparedBatch batch;
  batch.images.resize(images.size());
  std::map<std::vector<int64_t>, std::size_t> group_of_key;
  for (std::size_t i = 0; i < images.size(); ++i) {
    if (!staged[i].ok) continue;
    auto [entry, added] = group_of_key.emplace(staged[i].key, batch.groups.size());
    if (added) batch.groups.emplace_back();
    PreparedGroup& group = batch.groups[entry->second];
    batch.images[i].group = entry->second;
    batch.images[i].row = group.images.size();
    group.images.push_back(i);
  }
  for (PreparedGroup& group : batch.groups) {
    const Staged& first = staged[group.images.front()];
    for (std::size_t k = 0; k < inputs; ++k) {
      const ImageInputSpec& input = impl.spec.image_inputs[k];
      std::vector<int64_t> shape{static_cast<int64_t>(group.images.size())};
      const auto image_shape = image_tensor_shape(input, first.plans[k]);
      shape.insert(shape.end(), image_shape.begin(), image_shape.end());
      group.feeds.emplace_back(input.tensor_name, uninitialised(element_type_of(input), std::move(shape)));
    }
    impl.fill_constants(group, first);
  }

  impl.options.pool->parallel_for(images.size(), [&](std::size_t i) {
    if (!staged[i].ok) return;
    PreparedImage& prepared = batch.images[i];
    guarded(staged[i], [&] {
      PreparedGroup& group = batch.groups[prepared.group];
      for (std::size_t k = 0; k < inputs; ++k) {
        Tensor& tensor = group.feeds[k].second;
        const std::size_t row_bytes = tensor.byte_size() / group.images.size();
        Transform transform = staged[i].roi_transform;
        impl.preprocessors[k]->convert(staged[i].resized[k], staged[i].plans[k],
                                       static_cast<unsigned char*>(tensor.data) + prepared.row * row_bytes,
                                       transform);
        prepared.transforms.push_back(transform);
      }
      staged[i].resized.clear();
    });
  });

  // Images that failed while converting hold rows of garbage: rebuild their groups without them.
  for (std::size_t g = 0; g < batch.groups.size(); ++g) {
    PreparedGroup& group = batch.groups[g];
    std::vector<std::size_t> kept;
    for (std::size_t i : group.images) {
      if (staged[i].ok) kept.push_back(i);
    }
    if (kept.size() == group.images.size()) continue;
    for (auto& [name, tensor] : group.feeds) {
      const std::size_t row_bytes = tensor.byte_size() / group.images.size();
      std::vector<int64_t> shape = tensor.shape;
      shape[0] = static_cast<int64_t>(kept.size());
      Tensor compact = uninitialised(tensor.type, std::move(shape));
      for (std::size_t r = 0; r < kept.size(); ++r) {
        std::copy_n(static_cast<const unsigned char*>(tensor.data) + batch.images[kept[r]].row * row_bytes,
                    row_bytes, static_cast<unsigned char*>(compact.data) + r * row_bytes);
      }
      tensor = std::move(compact);
    }
    group.images = kept;
    for (std::size_t r = 0; r < kept.size(); ++r) batch.images[kept[r]].row = r;
  }
  // A group left with no image at all goes; later groups move down.
  for (std::size_t g = batch.groups.size(); g-- > 0;) {
    if (!batch.groups[g].images.empty()) continue;
    batch.groups.erase(batch.groups.begin() + static_cast<std::ptrdiff_t>(g));
    for (PreparedImage& image : batch.images) {
      if (image.group > g) --image.group;
    }
  }

  for (std::size_t i = 0; i < images.size(); ++i) {
    PreparedImage& prepared = batch.images[i];
    prepared.ok = staged[i].ok;
    if (!prepared.ok) {
      prepared.error_code = staged[i].code;
      prepared.error_field = staged[i].field;
      prepared.error_message = staged[i].message;
      prepared.transforms.clear();
      prepared.group = 0;
      prepared.row = 0;
    }
  }
  return batch;
}

}  // namespace sightd
