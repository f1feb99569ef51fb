"""Runtime.validate: every violation of a version or network definition, with the field it is about, from
the documents, from checking them against the network, and from a trial run (what only real tensors
tell). The cache is not touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from runtime_support import LABELS, colour_network, network, preprocessing, version

from sightd.runtime import Runtime, RuntimeSettings, RuntimeStoppedError


@pytest.fixture(scope="module")
def colours(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return colour_network(tmp_path_factory.mktemp("validation") / "colours.onnx")


def classification(tensor: str = "means", labels: int = 3) -> list[dict[str, Any]]:
    return [{"classification": {"output_tensor": tensor, "thresholds": [0.5] * labels}}]


async def violations(definition: Any) -> list[tuple[str, str]]:
    async with Runtime(RuntimeSettings(warmup=False)) as runtime:
        found = await runtime.validate(definition)
        assert not runtime.is_loaded(definition.key)
        return found


def fields(found: list[tuple[str, str]]) -> list[str]:
    return [field for field, _ in found]


async def test_a_definition_that_builds_and_runs_has_no_violation(colours: Path) -> None:
    assert await violations(version(colours)) == []
    assert await violations(network(colours)) == []


async def test_preprocessing_that_does_not_fit_the_network(colours: Path) -> None:
    found = await violations(version(colours, pre=preprocessing("32x32")))
    assert fields(found) == ["preprocessing.inputs[0].image.target_size"]
    assert "16x12" in found[0][1]
    found = await violations(version(colours, pre=preprocessing(color_channels="L")))
    assert fields(found) == ["preprocessing.inputs[0].image.color_channels"]
    found = await violations(network(colours, pre=preprocessing("8x8")))
    assert fields(found) == ["preprocessing.inputs[0].image.target_size"]


async def test_every_violation_of_both_documents_is_reported(colours: Path) -> None:
    definition = version(
        colours, pre=preprocessing(resize_type="FOO"), post_processings=classification(labels=1)
    )
    assert fields(await violations(definition)) == [
        "preprocessing.inputs[0].image.resize_type",
        "post_processings[0].classification.thresholds",
    ]


async def test_mean_files_must_be_given_and_parse(colours: Path) -> None:
    missing = version(colours, pre=preprocessing(mean_file="mean.binaryproto"))
    assert fields(await violations(missing)) == ["preprocessing.inputs[0].image.mean_file"]
    corrupt = version(
        colours, pre=preprocessing(mean_file="mean.binaryproto"), mean_files={"mean.binaryproto": b"garbage"}
    )
    assert fields(await violations(corrupt)) == ["preprocessing.inputs[0].image.mean_file"]
    npy = Path(colours.parent / "mean.npy")
    np.save(npy, np.full((3, 1, 1), 0.25, np.float32))
    fine = version(
        colours, pre=preprocessing(mean_file="mean.npy"), mean_files={"mean.npy": npy.read_bytes()}
    )
    assert await violations(fine) == []


async def test_post_processing_tensors_must_be_outputs_of_the_network(colours: Path) -> None:
    found = await violations(version(colours, post_processings=classification("nope")))
    assert fields(found) == ["post_processings[0]"]
    assert "'means', 'doubled'" in found[0][1]
    found = await violations(version(colours, post_processings=classification("data")))
    assert fields(found) == ["post_processings[0]"]
    assert "image input" in found[0][1]


async def test_shapes_known_only_from_real_tensors_are_checked_by_a_trial_run(colours: Path) -> None:
    four = [{"labels": {"roi": "NONE", "exclusive": True, "labels": [*LABELS, {"id": 13, "name": "alpha"}]}}]
    found = await violations(version(colours, spec_outputs=four, post_processings=classification(labels=4)))
    assert fields(found) == ["post_processings[0].classification.output_tensor"]
    assert "3 classes" in found[0][1]


def reshape_network(path: Path) -> Path:
    """Declares (N, 3) outputs but reshapes each image's 576 values into rows of 7: fails when run."""
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["data", "shape"], ["rows"]),
            helper.make_node("ReduceMean", ["rows"], ["means"], axes=[1], keepdims=0),
        ],
        "broken",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 12, 16])],
        [helper.make_tensor_value_info("means", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(np.array([-1, 3, 7], np.int64), "shape")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


async def test_a_network_that_does_not_run_or_load_is_named(tmp_path: Path) -> None:
    found = await violations(version(reshape_network(tmp_path / "reshape.onnx")))
    assert fields(found) == ["network"]
    assert "does not run" in found[0][1]
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"junk")
    found = await violations(version(corrupt))
    assert fields(found) == ["network"]
    assert "cannot load the model" in found[0][1]
    found = await violations(network(corrupt))
    assert fields(found) == ["network"]


async def test_validation_needs_a_running_runtime(colours: Path) -> None:
    with pytest.raises(RuntimeStoppedError):
        await Runtime().validate(version(colours))
