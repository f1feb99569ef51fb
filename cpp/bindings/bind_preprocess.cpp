// Preprocessing specs, mean files, single-image preprocessing (for tests and tools) and batch preparation.
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common.hpp"
#include "sightd/batch.hpp"
#include "sightd/error.hpp"
#include "sightd/mean.hpp"
#include "sightd/preprocess.hpp"
#include "sightd/roi.hpp"
#include "sightd/thread_pool.hpp"

namespace sightd::bindings {

namespace {

// A view of (H, W, 3) uint8 pixels; rows may be strided (a crop of a larger array), pixels must be packed.
cv::Mat bgr_view(const py::array& array) {
  if (!array.dtype().is(py::dtype::of<uint8_t>()) || array.ndim() != 3 || array.shape(2) != 3) {
    throw_invalid_argument("image", "expected an (H, W, 3) uint8 BGR array");
  }
  if (array.shape(0) < 1 || array.shape(1) < 1) throw_invalid_argument("image", "empty image");
  if (array.shape(0) > INT32_MAX || array.shape(1) > INT32_MAX) throw_invalid_argument("image", "too large");
  if (array.strides(2) != 1 || array.strides(1) != 3 || array.strides(0) < 3 * array.shape(1)) {
    throw_invalid_argument("image", "pixels must be packed (a C-contiguous array, or a crop of one)");
  }
  return cv::Mat(static_cast<int>(array.shape(0)), static_cast<int>(array.shape(1)), CV_8UC3,
                 const_cast<void*>(array.data()), static_cast<std::size_t>(array.strides(0)));
}

py::array mean_values(const MeanImage& mean) {
  py::array_t<float> values({mean.channels, mean.height, mean.width});
  if (!mean.data.empty()) {
    std::memcpy(values.mutable_data(), mean.data.data(), mean.data.size() * sizeof(float));
  }
  return std::move(values);
}

MeanImage mean_from_array(const py::array_t<float, py::array::c_style | py::array::forcecast>& values) {
  if (values.ndim() != 3) throw_invalid_argument("mean_file", "expected a (C, H, W) array");
  MeanImage mean;
  mean.channels = static_cast<int>(values.shape(0));
  mean.height = static_cast<int>(values.shape(1));
  mean.width = static_cast<int>(values.shape(2));
  mean.data.assign(values.data(), values.data() + values.size());
  return mean;
}

// The tensor of one image input, allocated for one image, and its transform.
py::tuple write_one(const ImagePreprocessor& preprocessor, const py::array& image) {
  // Anything else (Fortran order, a channel slice...) is copied to packed pixels first.
  const bool packed = image.ndim() == 3 && image.strides(2) == 1 && image.strides(1) == 3 &&
                      image.strides(0) >= 3 * image.shape(1);
  const py::array pixels = packed ? image : py::array_t<uint8_t, py::array::c_style>::ensure(image);
  if (!pixels) throw_invalid_argument("image", "expected an (H, W, 3) uint8 BGR array");
  const cv::Mat source = bgr_view(pixels);
  const ImageInputSpec& spec = preprocessor.spec();
  Tensor tensor;
  Transform transform;
  {
    py::gil_scoped_release release;
    const ResizePlan plan = plan_resize(spec, source.cols, source.rows);
    tensor = Tensor::zeros(spec.data_type == DataType::kFloat32 ? ElementType::kFloat32 : ElementType::kUint8,
                           image_tensor_shape(spec, plan));
    preprocessor.write(source, plan, tensor.data, transform);
  }
  return py::make_tuple(tensor_to_numpy(tensor), transform);
}

std::shared_ptr<BatchPreprocessor> make_batch_preprocessor(PreprocessingSpec spec, bool reduced_decoding,
                                                           int64_t max_pixels, std::optional<int> threads) {
  BatchOptions options;
  options.reduced_decoding = reduced_decoding;
  options.decode.max_pixels = max_pixels;
  if (threads) {
    if (*threads < 1 || *threads > 256) throw_invalid_argument("threads", "must be in 1..256");
    options.pool = std::make_shared<ThreadPool>(*threads - 1);  // the calling thread is one of them
  }
  return std::make_shared<BatchPreprocessor>(std::move(spec), std::move(options));
}

PreparedBatch prepare_batch(const BatchPreprocessor& preprocessor, const py::sequence& items) {
  std::vector<ImageRequest> requests;
  std::vector<py::buffer_info> views;  // keep every buffer exported while the GIL is released
  requests.reserve(items.size());
  views.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    const py::object entry = items[i];
    const bool pair =
        py::isinstance<py::sequence>(entry) && !py::isinstance<py::str>(entry) && py::len(entry) == 2;
    const py::sequence item = pair ? entry.cast<py::sequence>() : py::sequence();
    if (!pair || !py::isinstance<py::buffer>(item[0]) ||
        !(item[1].is_none() || py::isinstance<Roi>(item[1]))) {
      throw_invalid_argument("images[" + std::to_string(i) + "]", "expected (bytes, Roi | None)");
    }
    views.push_back(item[0].cast<py::buffer>().request());
    ImageRequest request;
    request.data = static_cast<const uint8_t*>(views.back().ptr);
    request.size = static_cast<std::size_t>(views.back().size * views.back().itemsize);
    if (!item[1].is_none()) request.roi = item[1].cast<Roi>();
    requests.push_back(std::move(request));
  }
  py::gil_scoped_release release;
  return preprocessor.prepare(requests);
}

py::dict group_feeds(const PreparedGroup& group) {
  py::dict feeds;
  for (const auto& [name, tensor] : group.feeds) feeds[py::str(name)] = tensor_to_numpy(tensor);
  return feeds;
}

}  // namespace

void bind_preprocess(py::module_& m) {
  py::enum_<ResizeType>(m, "ResizeType")
      .value("SQUASH", ResizeType::kSquash)
      .value("CROP", ResizeType::kCrop)
      .value("NETWORK", ResizeType::kNetwork)
      .value("LETTERBOX", ResizeType::kLetterbox);
  py::enum_<DataType>(m, "DataType").value("FLOAT32", DataType::kFloat32).value("UINT8", DataType::kUint8);
  py::enum_<DimensionOrder>(m, "DimensionOrder")
      .value("NCHW", DimensionOrder::kNCHW)
      .value("NHWC", DimensionOrder::kNHWC);
  py::enum_<ColorChannels>(m, "ColorChannels")
      .value("BGR", ColorChannels::kBGR)
      .value("RGB", ColorChannels::kRGB)
      .value("L", ColorChannels::kL);
  py::enum_<Interpolation>(m, "Interpolation")
      .value("LINEAR", Interpolation::kLinear)
      .value("AREA", Interpolation::kArea)
      .value("CUBIC", Interpolation::kCubic)
      .value("NEAREST", Interpolation::kNearest);
  py::enum_<LetterboxAlign>(m, "LetterboxAlign")
      .value("CENTER", LetterboxAlign::kCenter)
      .value("TOP_LEFT", LetterboxAlign::kTopLeft);

  py::class_<MeanImage>(m, "MeanImage")
      .def(py::init(&mean_from_array), py::arg("values"))
      .def_readonly("channels", &MeanImage::channels)
      .def_readonly("height", &MeanImage::height)
      .def_readonly("width", &MeanImage::width)
      .def_property_readonly("values", &mean_values)
      .def_property_readonly("per_channel", &MeanImage::per_channel)
      .def("__repr__", [](const MeanImage& mean) {
        return "MeanImage(" + std::to_string(mean.channels) + "x" + std::to_string(mean.height) + "x" +
               std::to_string(mean.width) + ")";
      });
  m.def(
      "parse_mean_file",
      [](const py::bytes& content) {
        const std::string_view view(content);
        py::gil_scoped_release release;
        return parse_mean_file(reinterpret_cast<const uint8_t*>(view.data()), view.size());
      },
      py::arg("content"));

  py::class_<ImageInputSpec>(m, "ImageInputSpec")
      .def(py::init<>())
      .def_readwrite("tensor_name", &ImageInputSpec::tensor_name)
      .def_readwrite("input_index", &ImageInputSpec::input_index)
      .def_readwrite("resize_type", &ImageInputSpec::resize_type)
      .def_readwrite("data_type", &ImageInputSpec::data_type)
      .def_readwrite("dimension_order", &ImageInputSpec::dimension_order)
      .def_readwrite("pixel_scaling", &ImageInputSpec::pixel_scaling)
      .def_readwrite("mean_file", &ImageInputSpec::mean_file)
      .def_readwrite("target_width", &ImageInputSpec::target_width)
      .def_readwrite("target_height", &ImageInputSpec::target_height)
      .def_readwrite("color_channels", &ImageInputSpec::color_channels)
      .def_readwrite("mean", &ImageInputSpec::mean)
      .def_readwrite("std", &ImageInputSpec::std)
      .def_readwrite("crop_ratio", &ImageInputSpec::crop_ratio)
      .def_readwrite("pad_value", &ImageInputSpec::pad_value)
      .def_readwrite("letterbox_align", &ImageInputSpec::letterbox_align)
      .def_readwrite("max_size", &ImageInputSpec::max_size)
      .def_readwrite("stride", &ImageInputSpec::stride)
      .def_readwrite("interpolation", &ImageInputSpec::interpolation)
      .def_readwrite("antialias", &ImageInputSpec::antialias)
      .def_property_readonly("channel_count", &ImageInputSpec::channel_count);

  py::class_<ConstantValue>(m, "ConstantValue")
      .def(py::init([](double number) {
             ConstantValue value;
             value.number = number;
             return value;
           }),
           py::arg("number"))
      .def(py::init([](std::string tensor_name, int dimension) {
             ConstantValue value;
             value.tensor_name = std::move(tensor_name);
             value.dimension = dimension;
             return value;
           }),
           py::arg("tensor_name"), py::arg("dimension"))
      .def_readwrite("number", &ConstantValue::number)
      .def_readwrite("tensor_name", &ConstantValue::tensor_name)
      .def_readwrite("dimension", &ConstantValue::dimension);

  py::class_<ConstantInputSpec>(m, "ConstantInputSpec")
      .def(py::init<>())
      .def_readwrite("tensor_name", &ConstantInputSpec::tensor_name)
      .def_readwrite("input_index", &ConstantInputSpec::input_index)
      .def_readwrite("shape", &ConstantInputSpec::shape)
      .def_readwrite("data", &ConstantInputSpec::data);

  py::class_<PreprocessingSpec>(m, "PreprocessingSpec")
      .def(py::init<>())
      .def_readwrite("image_inputs", &PreprocessingSpec::image_inputs)
      .def_readwrite("constant_inputs", &PreprocessingSpec::constant_inputs)
      .def_readwrite("batched_output", &PreprocessingSpec::batched_output);

  m.def("validate_preprocessing", &validate_preprocessing, py::arg("spec"));

  py::class_<ResizePlan>(m, "ResizePlan")
      .def_readonly("resized_width", &ResizePlan::resized_width)
      .def_readonly("resized_height", &ResizePlan::resized_height)
      .def_readonly("offset_x", &ResizePlan::offset_x)
      .def_readonly("offset_y", &ResizePlan::offset_y)
      .def_readonly("tensor_width", &ResizePlan::tensor_width)
      .def_readonly("tensor_height", &ResizePlan::tensor_height);
  m.def("plan_resize", &plan_resize, py::arg("spec"), py::arg("src_width"), py::arg("src_height"));
  m.def("image_tensor_shape", &image_tensor_shape, py::arg("spec"), py::arg("plan"));
  m.def(
      "neutral_colour",
      [](const ImageInputSpec& spec) -> std::optional<std::tuple<double, double, double>> {
        const auto colour = neutral_colour(spec);
        if (!colour) return std::nullopt;
        return std::make_tuple((*colour)[0], (*colour)[1], (*colour)[2]);
      },
      py::arg("spec"));

  py::class_<ImagePreprocessor>(m, "ImagePreprocessor")
      .def(py::init<ImageInputSpec>(), py::arg("spec"))
      .def_property_readonly("spec", &ImagePreprocessor::spec)
      .def("write", &write_one, py::arg("bgr"));

  py::class_<PreparedImage>(m, "PreparedImage")
      .def_readonly("ok", &PreparedImage::ok)
      .def_property_readonly("error_code",
                             [](const PreparedImage& image) -> std::optional<ErrorCode> {
                               if (image.ok) return std::nullopt;
                               return image.error_code;
                             })
      .def_readonly("error_field", &PreparedImage::error_field)
      .def_readonly("error_message", &PreparedImage::error_message)
      .def_readonly("transforms", &PreparedImage::transforms)
      .def_readonly("group", &PreparedImage::group)
      .def_readonly("row", &PreparedImage::row);
  py::class_<PreparedGroup>(m, "PreparedGroup")
      .def_readonly("images", &PreparedGroup::images)
      .def_property_readonly("feeds", &group_feeds);
  py::class_<PreparedBatch>(m, "PreparedBatch")
      .def_readonly("images", &PreparedBatch::images)
      .def_readonly("groups", &PreparedBatch::groups);

  py::class_<BatchPreprocessor, std::shared_ptr<BatchPreprocessor>>(m, "BatchPreprocessor")
      .def(py::init(&make_batch_preprocessor), py::arg("spec"), py::kw_only(),
           py::arg("reduced_decoding") = false, py::arg("max_pixels") = DecodeOptions().max_pixels,
           py::arg("threads") = py::none())
      .def_property_readonly("spec", &BatchPreprocessor::spec)
      .def("prepare", &prepare_batch, py::arg("images"));
}

}  // namespace sightd::bindings
