"""``sightd recognize`` and ``sightd predict`` on the zoo's built files (subprocesses), and the recognition
facade's errors for documents that do not fit the network."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sightd.errors import InvalidArgumentError
from sightd.postprocessing import PostProcessingError
from sightd.preprocessing import PreprocessingError
from sightd.recognition import Recognizer, SessionSettings
from sightd.zoo import installed

MALAMUTE = 249  # ImageNet class index (docs/zoo.md: ids follow the WordNet-sorted class order)


def sightd(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sightd.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_recognize_prints_v07_results(zoo: installed.Zoo, images: dict[str, Path], tmp_path: Path) -> None:
    dog = images["darknet"] / "dog.jpg"
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(dog.read_bytes()[:400])
    run = sightd(
        "recognize",
        "--model",
        "imagenet-mobilenet-v2",
        "--model",
        "coco-yolov3-tiny",
        "--zoo",
        zoo.dest,
        "--threads",
        "1",
        "--max-predictions",
        "3",
        dog,
        broken,
    )
    assert run.returncode == 1, run.stderr
    documents = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(d["model"], Path(d["image"]).name) for d in documents] == [
        ("imagenet-mobilenet-v2", "dog.jpg"),
        ("imagenet-mobilenet-v2", "broken.jpg"),
        ("coco-yolov3-tiny", "dog.jpg"),
        ("coco-yolov3-tiny", "broken.jpg"),
    ]
    (classes,) = documents[0]["result"]["outputs"]
    assert set(classes["labels"]) == {"predicted", "discarded"}
    top = classes["labels"]["predicted"][0]
    assert (top["label_name"], top["label_id"]) == ("malamute", MALAMUTE)
    assert set(top) == {"label_name", "label_id", "score", "threshold"}
    assert len(classes["labels"]["predicted"]) == 3
    (boxes,) = documents[2]["result"]["outputs"]
    names = [p["label_name"] for p in boxes["labels"]["predicted"]]
    assert len(names) == 3  # capped: dog.jpg has two car boxes, a dog and a bicycle
    assert {"car", "dog"} <= set(names) <= {"car", "dog", "bicycle"}
    for prediction in boxes["labels"]["predicted"]:
        assert set(prediction["roi"]) == {"region_id", "bbox"}
        assert set(prediction["roi"]["bbox"]) == {"xmin", "ymin", "xmax", "ymax"}
    for document in (documents[1], documents[3]):
        assert document["error"]["type"] == "ImageError"
        assert "result" not in document


def test_recognize_with_a_bbox_roi(zoo: installed.Zoo, images: dict[str, Path]) -> None:
    run = sightd(
        "recognize",
        "--model",
        "coco-yolov3-tiny",
        "--zoo",
        zoo.dest,
        "--bbox",
        "0.55,0.05,0.95,0.40",
        "--show-discarded",
        "--pretty",
        images["darknet"] / "dog.jpg",
    )
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    (labels,) = document["result"]["outputs"]
    assert labels["labels"]["predicted"][0]["label_name"] in {"car", "truck"}
    for prediction in labels["labels"]["predicted"] + labels["labels"]["discarded"]:
        assert 0.55 - 1e-6 <= prediction["roi"]["bbox"]["xmin"] <= 0.95 + 1e-6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-model"], "unknown public model"),
        (["--model", "imagenet-mobilenet-v2", "--bbox", "0.5,0.5,0.2,0.9"], "bbox"),
        (["--model", "imagenet-mobilenet-v2", "--bbox", "1,2"], "--bbox"),
        (["--model", "imagenet-mobilenet-v2"], "no image"),
    ],
)
def test_recognize_refuses_bad_options(zoo: installed.Zoo, args: list[str], message: str) -> None:
    run = sightd("recognize", "--zoo", zoo.dest, *args)
    assert run.returncode == 2
    assert message in run.stderr


def test_recognize_says_when_the_zoo_is_not_built(tmp_path: Path, images: dict[str, Path]) -> None:
    run = sightd("recognize", "--model", "nsfw-v1", "--zoo", tmp_path, images["darknet"] / "dog.jpg")
    assert run.returncode == 2
    assert "sightd zoo build" in run.stderr


def test_predict_runs_the_zoo_files(zoo: installed.Zoo, images: dict[str, Path]) -> None:
    public = zoo.dest / "public" / "imagenet-mobilenet-v2"
    network = zoo.networks["imagenet-mobilenet-v2"].path
    dog = images["darknet"] / "dog.jpg"
    run = sightd("predict", "--network", network, "--preprocessing", public / "preprocessing.json",
                 "--values", "1000", dog)  # fmt: skip
    assert run.returncode == 0, run.stderr
    line = next(line for line in run.stdout.splitlines() if line.strip().startswith("logits "))
    assert "float32 [1000]" in line
    logits = np.array([float(v) for v in line.split(":", 1)[1].split()])
    assert logits.shape == (1000,)
    assert int(np.argmax(logits)) == MALAMUTE


def _documents(zoo: installed.Zoo, model: str) -> tuple[Path, dict[str, Any], list[Any], list[Any]]:
    public = zoo.models[model]
    network = zoo.networks[public.network]
    preprocessing = json.loads(json.dumps(network.preprocessing))
    return network.path, preprocessing, public.spec["outputs"], [public.post_processing]


def test_documents_that_do_not_fit_the_network_name_their_field(zoo: installed.Zoo) -> None:
    settings = SessionSettings(intra_op_threads=1)
    path, preprocessing, outputs, post_processings = _documents(zoo, "imagenet-mobilenet-v2")
    preprocessing["inputs"][0]["image"]["target_size"] = "256x256"
    with pytest.raises(InvalidArgumentError) as info:
        Recognizer.from_documents(path, preprocessing, outputs, post_processings, session=settings)
    assert info.value.field == "inputs[0].image.target_size"

    path, preprocessing, outputs, post_processings = _documents(zoo, "imagenet-mobilenet-v2")
    post_processings[0]["classification"]["output_tensor"] = "probabilities"
    with pytest.raises(InvalidArgumentError, match="'probabilities'") as info:
        Recognizer.from_documents(path, preprocessing, outputs, post_processings, session=settings)
    assert info.value.field == "post_processings[0]"

    path, preprocessing, outputs, post_processings = _documents(zoo, "imagenet-mobilenet-v2")
    preprocessing["inputs"][0]["image"]["resize_type"] = "STRETCH"
    with pytest.raises(PreprocessingError):
        Recognizer.from_documents(path, preprocessing, outputs, post_processings, session=settings)

    path, preprocessing, outputs, post_processings = _documents(zoo, "coco-yolov3-tiny")
    post_processings[0]["detection"]["nms_threshold"] = 2
    with pytest.raises(PostProcessingError) as info:
        Recognizer.from_documents(path, preprocessing, outputs, post_processings, session=settings)
    assert info.value.field == "post_processings[0].detection.nms_threshold"


def test_network_bytes_work_as_well_as_a_path(zoo: installed.Zoo, images: dict[str, Path]) -> None:
    path, preprocessing, outputs, post_processings = _documents(zoo, "face-retina-v1")
    recognizer = Recognizer.from_documents(
        path.read_bytes(),
        preprocessing,
        outputs,
        post_processings,
        session=SessionSettings(intra_op_threads=1),
    )
    (result,) = recognizer.recognize([((images["skimage"] / "astronaut.png").read_bytes(), None)])
    assert [p.label_name for p in result.outputs[0].predicted] == ["face"]


def test_max_predictions_must_be_a_count(zoo: installed.Zoo, images: dict[str, Path]) -> None:
    recognizer = Recognizer.from_zoo("nsfw-v1", zoo, session=SessionSettings(intra_op_threads=1))
    image = [((images["darknet"] / "dog.jpg").read_bytes(), None)]
    for bad in (True, -1):
        with pytest.raises(InvalidArgumentError) as info:
            recognizer.recognize(image, max_predictions=bad)
        assert info.value.field == "max_predictions"
    (result,) = recognizer.recognize(image, max_predictions=0)
    assert result.outputs[0].predicted == []
