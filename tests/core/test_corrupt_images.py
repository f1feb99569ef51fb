"""Hostile images (tests/core/corrupt_corpus.py) fail with the library's error types, never crash or hang.

The decoding runs in a child process, which reports each file before touching it: a crash (a signal) or a
hang is then a test failure naming the file, not a dead test run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from corrupt_corpus import ANY, ERROR, OK, TOO_LARGE, Case, build_corpus, write_corpus

# Runs in the child: header, full decode, reduced decode (a JPEG at 1/8 scale or so), one JSON line each.
WORKER = r"""
import json, sys
from pathlib import Path
from sightd import _core, errors

folder = Path(sys.argv[1])
for name in json.loads(sys.stdin.read()):
    print(json.dumps({"start": name}), flush=True)
    data = (folder / name).read_bytes()
    outcome = {"name": name}
    try:
        header = _core.read_image_header(memoryview(data))
        outcome["header"] = [header.oriented_width, header.oriented_height]
    except Exception as error:
        outcome["header"] = type(error).__name__
    for key, minimum in (("full", 0), ("reduced", 4)):
        try:
            image, reduction = _core.decode_image(data, min_width=minimum, min_height=minimum)
            outcome[key] = [list(image.shape), str(image.dtype), reduction, image.flags["C_CONTIGUOUS"]]
        except Exception as error:
            outcome[key] = type(error).__name__ + ": " + str(error)
    print(json.dumps(outcome), flush=True)
"""


@pytest.fixture(scope="module")
def corpus(darknet_data: Path) -> list[Case]:
    return build_corpus(darknet_data)


def test_corpus_is_seeded_and_large(darknet_data: Path, corpus: list[Case]) -> None:
    again = build_corpus(darknet_data)
    assert [(c.name, c.data, c.expect) for c in again] == [(c.name, c.data, c.expect) for c in corpus]
    assert len(corpus) >= 500
    assert {c.expect for c in corpus} == {ERROR, TOO_LARGE, OK, ANY}
    assert any(c.data == b"" for c in corpus)


def run_worker(folder: Path, names: list[str]) -> tuple[dict[str, dict[str, object]], str]:
    process = subprocess.run(
        [sys.executable, "-c", WORKER, str(folder)],
        input=json.dumps(names),
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    outcomes: dict[str, dict[str, object]] = {}
    last_started = ""
    for line in process.stdout.splitlines():
        record = json.loads(line)
        if "start" in record:
            last_started = record["start"]
        else:
            outcomes[record["name"]] = record
    if process.returncode != 0:
        died = f"the decoding process died (exit {process.returncode}) on {last_started!r}"
        pytest.fail(f"{died}:\n{process.stderr[-3000:]}")
    return outcomes, process.stderr


def is_decoded(result: object, header: object) -> bool:
    """A valid decode: HxWx3 uint8, contiguous, the header's oriented size divided by the reduction."""
    if not isinstance(result, list) or not isinstance(header, list):
        return False
    (height, width, channels), dtype, reduction, contiguous = result
    expected = [-(-header[1] // reduction), -(-header[0] // reduction)]
    return channels == 3 and dtype == "uint8" and contiguous and [height, width] == expected


def is_image_error(result: object, too_large: bool = False) -> bool:
    if not isinstance(result, str):
        return False
    kind = result.split(":", 1)[0]
    return kind == "ImageTooLargeError" if too_large else kind in ("ImageError", "ImageTooLargeError")


def test_corrupt_images_fail_cleanly(corpus: list[Case], tmp_path: Path) -> None:
    write_corpus(corpus, tmp_path)
    outcomes, _ = run_worker(tmp_path, [c.name for c in corpus])
    assert len(outcomes) == len(corpus)

    wrong = []
    for case in corpus:
        outcome = outcomes[case.name]
        header = outcome["header"]
        for key in ("full", "reduced"):
            result = outcome[key]
            if case.expect == ERROR:
                good = is_image_error(result) and not is_image_error(result, too_large=True)
            elif case.expect == TOO_LARGE:
                good = is_image_error(result, too_large=True) and isinstance(header, list)
            elif case.expect == OK:
                good = is_decoded(result, header)
            else:
                good = is_decoded(result, header) or is_image_error(result)
            if not good:
                wrong.append(f"{case.name} ({case.expect}, {key}): {result}")
        # A header either reads or fails with ImageError; never anything else.
        assert isinstance(header, list) or header == "ImageError", (case.name, header)
    assert not wrong, "\n".join(wrong)

    # Errors say what went wrong, in words.
    messages = [str(outcomes[c.name]["full"]) for c in corpus if c.expect == ERROR]
    assert all(len(m.split(": ", 1)[1]) > 10 for m in messages)


def test_truncated_jpeg_is_an_error_not_a_grey_image(corpus: list[Case]) -> None:
    from sightd import _core, errors

    cut = next(c for c in corpus if c.name == "no-eoi.jpg")
    with pytest.raises(errors.ImageError, match="truncated JPEG"):
        _core.decode_image(cut.data)
    scans = next(c for c in corpus if c.name == "many-scans.jpg")
    with pytest.raises(errors.ImageError, match="scans"):
        _core.decode_image(scans.data)
