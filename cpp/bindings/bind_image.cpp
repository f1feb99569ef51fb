// sightd._core: decoding (ImageFormat, ImageHeader, read_image_header, decode_image) and regions of interest
// (Roi, validate_roi, apply_roi). Encoded bytes are borrowed from any bytes-like object without a copy;
// decoded pixels are handed to NumPy without a copy.
#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/stl.h>

#include "common.hpp"
#include "sightd/error.hpp"
#include "sightd/image.hpp"
#include "sightd/roi.hpp"

namespace sightd::bindings {

namespace {

// A bytes-like object's memory, held for the duration of a call: while the buffer is exported its owner
// cannot resize or free it, so it stays valid with the GIL released.
class BorrowedBytes {
 public:
  explicit BorrowedBytes(const py::object& object) {
    if (PyObject_GetBuffer(object.ptr(), &view_, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      throw py::type_error("data must be a contiguous bytes-like object (bytes, bytearray, memoryview), not " +
                           std::string(py::str(py::type::handle_of(object).attr("__name__"))));
    }
  }
  ~BorrowedBytes() { PyBuffer_Release(&view_); }
  BorrowedBytes(const BorrowedBytes&) = delete;
  BorrowedBytes& operator=(const BorrowedBytes&) = delete;

  const uint8_t* data() const { return static_cast<const uint8_t*>(view_.buf); }
  std::size_t size() const { return static_cast<std::size_t>(view_.len); }

 private:
  Py_buffer view_{};
};

// An HxWx3 uint8 array over an OpenCV-owned image, which the array keeps alive.
py::array owned_array(cv::Mat image) {
  auto* holder = new cv::Mat(std::move(image));
  py::capsule owner(holder, [](void* pointer) { delete static_cast<cv::Mat*>(pointer); });
  return py::array(py::dtype::of<uint8_t>(), {holder->rows, holder->cols, 3},
                   {static_cast<py::ssize_t>(holder->step[0]), py::ssize_t{3}, py::ssize_t{1}}, holder->data,
                   owner);
}

uint8_t colour_value(int value, const char* field) {
  if (value < 0 || value > 255) throw_invalid_argument(field, "must be integers within 0..255");
  return static_cast<uint8_t>(value);
}

std::optional<std::array<double, 4>> roi_bbox(const Roi& roi) {
  if (!roi.has_bbox) return std::nullopt;
  return std::array<double, 4>{roi.bbox.xmin, roi.bbox.ymin, roi.bbox.xmax, roi.bbox.ymax};
}

void set_roi_bbox(Roi& roi, const std::optional<std::array<double, 4>>& bbox) {
  roi.has_bbox = bbox.has_value();
  if (bbox) roi.bbox = BoundingBox{(*bbox)[0], (*bbox)[1], (*bbox)[2], (*bbox)[3]};
}

std::vector<std::pair<double, double>> roi_polygon(const Roi& roi) {
  std::vector<std::pair<double, double>> points;
  for (const NormalizedPoint& p : roi.polygon) points.emplace_back(p.x, p.y);
  return points;
}

void set_roi_polygon(Roi& roi, const std::optional<std::vector<std::pair<double, double>>>& polygon) {
  roi.polygon.clear();
  if (!polygon) return;
  // An explicit empty list would otherwise read as "no polygon".
  if (polygon->size() < 3) throw_invalid_argument("polygon", "needs at least 3 points");
  for (const auto& [x, y] : *polygon) roi.polygon.push_back(NormalizedPoint{x, y});
}

std::string header_repr(const ImageHeader& h) {
  return std::string("ImageHeader(format=") + image_format_name(h.format) + ", width=" + std::to_string(h.width) +
         ", height=" + std::to_string(h.height) + ", orientation=" + std::to_string(h.orientation) +
         ", channels=" + std::to_string(h.channels) + ", bit_depth=" + std::to_string(h.bit_depth) + ")";
}

}  // namespace

void bind_image(py::module_& m) {
  py::enum_<ImageFormat>(m, "ImageFormat")
      .value("JPEG", ImageFormat::kJpeg)
      .value("PNG", ImageFormat::kPng)
      .value("BMP", ImageFormat::kBmp)
      .value("WEBP", ImageFormat::kWebp)
      .value("TIFF", ImageFormat::kTiff)
      .value("PNM", ImageFormat::kPnm);

  py::class_<ImageHeader>(m, "ImageHeader")
      .def_readonly("format", &ImageHeader::format)
      .def_readonly("width", &ImageHeader::width)
      .def_readonly("height", &ImageHeader::height)
      .def_readonly("orientation", &ImageHeader::orientation)
      .def_readonly("channels", &ImageHeader::channels)
      .def_readonly("bit_depth", &ImageHeader::bit_depth)
      .def_property_readonly("oriented_width", &ImageHeader::oriented_width)
      .def_property_readonly("oriented_height", &ImageHeader::oriented_height)
      .def("__repr__", &header_repr);

  m.def(
      "read_image_header",
      [](const py::object& data) {
        const BorrowedBytes bytes(data);
        py::gil_scoped_release release;  // linear in the size at worst (garbage before a JPEG marker)
        return read_image_header(bytes.data(), bytes.size());
      },
      py::arg("data"), "Format, size, EXIF orientation and sample layout read from the first bytes.");

  m.def(
      "check_pixel_limit",
      [](const ImageHeader& header, int64_t max_pixels) {
        DecodeOptions options;
        options.max_pixels = max_pixels;
        check_pixel_limit(header, options);
      },
      py::arg("header"), py::arg("max_pixels"), "Raises ImageTooLargeError when width * height > max_pixels.");

  m.def(
      "decode_image",
      [](const py::object& data, int64_t max_pixels, int min_width, int min_height,
         std::array<int, 3> background) {
        DecodeOptions options;
        options.max_pixels = max_pixels;
        options.background_b = colour_value(background[0], "background");
        options.background_g = colour_value(background[1], "background");
        options.background_r = colour_value(background[2], "background");
        const BorrowedBytes bytes(data);
        DecodedImage decoded;
        {
          py::gil_scoped_release release;
          decoded = decode_image(bytes.data(), bytes.size(), options, min_width, min_height);
        }
        const int reduction = decoded.reduction;
        return py::make_tuple(owned_array(std::move(decoded.bgr)), reduction);
      },
      py::arg("data"), py::kw_only(), py::arg("max_pixels") = DecodeOptions().max_pixels,
      py::arg("min_width") = 0, py::arg("min_height") = 0,
      py::arg("background") = std::array<int, 3>{255, 255, 255},
      "Decodes to (HxWx3 uint8 BGR array, JPEG reduction 1/2/4/8); see docs/images.md.");

  py::class_<Roi>(m, "Roi")
      .def(py::init([](const std::optional<std::array<double, 4>>& bbox,
                       const std::optional<std::vector<std::pair<double, double>>>& polygon,
                       bool crop_uniform_background, int uniform_tolerance) {
             Roi roi;
             set_roi_bbox(roi, bbox);
             set_roi_polygon(roi, polygon);
             roi.crop_uniform_background = crop_uniform_background;
             roi.uniform_tolerance = uniform_tolerance;
             return roi;
           }),
           py::kw_only(), py::arg("bbox") = py::none(), py::arg("polygon") = py::none(),
           py::arg("crop_uniform_background") = false, py::arg("uniform_tolerance") = Roi().uniform_tolerance)
      .def_property("bbox", &roi_bbox, &set_roi_bbox)
      .def_property("polygon", &roi_polygon, &set_roi_polygon)
      .def_readwrite("crop_uniform_background", &Roi::crop_uniform_background)
      .def_readwrite("uniform_tolerance", &Roi::uniform_tolerance)
      .def("__repr__", [](const Roi& roi) {
        std::string text = "Roi(";
        if (roi.has_bbox) {
          text += "bbox=(" + std::to_string(roi.bbox.xmin) + ", " + std::to_string(roi.bbox.ymin) + ", " +
                  std::to_string(roi.bbox.xmax) + ", " + std::to_string(roi.bbox.ymax) + "), ";
        }
        if (!roi.polygon.empty()) text += "polygon=<" + std::to_string(roi.polygon.size()) + " points>, ";
        return text + "crop_uniform_background=" + (roi.crop_uniform_background ? "True" : "False") +
               ", uniform_tolerance=" + std::to_string(roi.uniform_tolerance) + ")";
      });

  m.def("validate_roi", &validate_roi, py::arg("roi"), "Raises InvalidArgumentError naming the bad field.");

  m.def(
      "apply_roi",
      [](const py::array& bgr, const Roi& roi, const std::optional<std::array<double, 3>>& fill) {
        if (!py::dtype::of<uint8_t>().is(bgr.dtype()) || bgr.ndim() != 3 || bgr.shape(2) != 3) {
          throw_invalid_argument("image", "must be an HxWx3 uint8 array");
        }
        if (bgr.shape(0) > INT32_MAX || bgr.shape(1) > INT32_MAX) throw_invalid_argument("image", "too large");
        // OpenCV needs packed pixels; rows may be strided (a view of a larger array).
        py::array source = bgr;
        if (bgr.strides(2) != 1 || bgr.strides(1) != 3 || bgr.strides(0) < 3 * bgr.shape(1)) {
          source = py::array_t<uint8_t, py::array::c_style>::ensure(bgr);
        }
        const cv::Mat image(static_cast<int>(source.shape(0)), static_cast<int>(source.shape(1)), CV_8UC3,
                            const_cast<void*>(source.data()), static_cast<std::size_t>(source.strides(0)));
        std::optional<cv::Scalar> colour;
        if (fill) colour = cv::Scalar((*fill)[0], (*fill)[1], (*fill)[2]);
        RoiResult result;
        {
          py::gil_scoped_release release;
          result = apply_roi(image, roi, colour);
        }
        py::array out;
        if (result.image.u == nullptr) {  // a view into `source`, which the new array keeps alive
          out = py::array(py::dtype::of<uint8_t>(), {result.image.rows, result.image.cols, 3},
                          {static_cast<py::ssize_t>(result.image.step[0]), py::ssize_t{3}, py::ssize_t{1}},
                          result.image.data, source);
        } else {
          out = owned_array(result.image);
        }
        return py::make_tuple(out, result.transform);
      },
      py::arg("bgr"), py::arg("roi"), py::arg("fill") = py::none(),
      "Crops an HxWx3 uint8 BGR image to the roi: (image, Transform); fill is (B, G, R) outside a polygon.");
}

}  // namespace sightd::bindings
