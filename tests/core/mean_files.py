"""Writers of mean files for the tests: Caffe BlobProto messages built with protobuf from a descriptor made
here with Caffe's field numbers (no compiled caffe.proto needed), and NumPy .npy files from numpy.save."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _blob_proto_class(packed: bool) -> Any:
    name = "packed" if packed else "unpacked"
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"sightd_test_caffe_{name}.proto", package=f"sightd_test_caffe_{name}", syntax="proto2"
    )
    shape = proto.message_type.add(name="BlobShape")
    dim = shape.field.add(name="dim", number=1, type=_F.TYPE_INT64, label=_F.LABEL_REPEATED)
    dim.options.packed = True
    blob = proto.message_type.add(name="BlobProto")
    blob.field.add(
        name="shape",
        number=7,
        type=_F.TYPE_MESSAGE,
        label=_F.LABEL_OPTIONAL,
        type_name=f".sightd_test_caffe_{name}.BlobShape",
    )
    for field_name, number, field_type in (
        ("data", 5, _F.TYPE_FLOAT),
        ("diff", 6, _F.TYPE_FLOAT),
        ("double_data", 8, _F.TYPE_DOUBLE),
        ("double_diff", 9, _F.TYPE_DOUBLE),
    ):
        repeated = blob.field.add(name=field_name, number=number, type=field_type, label=_F.LABEL_REPEATED)
        repeated.options.packed = packed
    for field_name, number in (("num", 1), ("channels", 2), ("height", 3), ("width", 4)):
        blob.field.add(name=field_name, number=number, type=_F.TYPE_INT32, label=_F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"sightd_test_caffe_{name}.BlobProto"))


_CLASSES = {True: _blob_proto_class(True), False: _blob_proto_class(False)}


def blobproto(
    values: np.ndarray, *, legacy: bool = True, packed: bool = True, double: bool = False, diff: bool = False
) -> bytes:
    """A serialized BlobProto holding `values` (any shape, Caffe's N, C, H, W order), with the legacy
    num/channels/height/width fields (4-D values) or the `shape` message."""
    message = _CLASSES[packed]()
    flat = values.reshape(-1).tolist()
    if double:
        message.double_data.extend(flat)
    else:
        message.data.extend(flat)
    if diff:
        message.diff.extend([1.0] * len(flat))
    if legacy:
        num, channels, height, width = values.shape
        message.num, message.channels, message.height, message.width = num, channels, height, width
    else:
        message.shape.dim.extend(values.shape)
    data: bytes = message.SerializeToString()
    return data


def npy(values: np.ndarray, *, fortran: bool = False, version: tuple[int, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    array = np.asfortranarray(values) if fortran else np.ascontiguousarray(values)
    if version is None:
        np.save(buffer, array, allow_pickle=False)
    else:
        np.lib.format.write_array(buffer, array, version=version, allow_pickle=False)
    return buffer.getvalue()
