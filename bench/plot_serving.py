"""The serving benchmark's figure: throughput (img/s) and p99 latency against concurrency, for sightd over
gRPC (unary ``Recognize``), the limit of the machine (a horizontal line) and the peers, for one model on one
image (imagenet-mobilenet-v2 on dog.jpg unless told otherwise); one PNG, two panels side by side.

Reads the JSON line of bench/serving.py from a file or from stdin (``-``); given the script's whole output,
it takes the last line that is a JSON object. Needs matplotlib, which lives in .venv-peers, not in sightd's
venv; it imports nothing of sightd:

    .venv-peers/bin/python bench/plot_serving.py serving.json --out docs/serving.png
    .venv/bin/python bench/serving.py ... | .venv-peers/bin/python bench/plot_serving.py - --out serving.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

try:
    import matplotlib
except ImportError:
    sys.exit("bench/plot_serving.py needs matplotlib: run it with .venv-peers/bin/python (make peers)")

matplotlib.use("Agg")  # no display: write files only

import matplotlib.pyplot as plt  # (after the backend is chosen)
from matplotlib.ticker import FuncFormatter

# (variant, label, style) in drawing order: sightd first and boldest.
SERIES = (
    ("grpc_unary", "sightd gRPC (unary Recognize)", {"color": "C0", "marker": "o", "linewidth": 2.5}),
    ("diy", "do-it-yourself (FastAPI + uvicorn)", {"color": "C1", "marker": "s"}),
    ("diy_threadpool", "do-it-yourself, thread pool", {"color": "C2", "marker": "^"}),
    ("bentoml", "BentoML (2 workers)", {"color": "C3", "marker": "D"}),
)
EXTRA = {
    "grpc_stream": ("sightd gRPC (RecognizeStream)", {"color": "C4", "marker": "v", "linestyle": "--"}),
    "grpc_infer_wait": ("sightd gRPC (Infer + WaitTask)", {"color": "C5", "marker": "<", "linestyle": "--"}),
    "rest": ("sightd REST (official client's polling)", {"color": "C6", "marker": ">", "linestyle": "--"}),
    "rest_task_wait": (
        "sightd REST, GET waits for the task (1 s)",
        {"color": "C6", "marker": "1", "linestyle": ":"},
    ),
    "grpc_unary_batching": (
        "sightd gRPC, batching on (8)",
        {"color": "C7", "marker": "x", "linestyle": "--"},
    ),
    "inprocess_recognizer": ("in-process Recognizer", {"color": "C8", "marker": "*", "linestyle": ":"}),
    "inprocess_runtime": ("in-process Runtime", {"color": "C9", "marker": "P", "linestyle": ":"}),
    "grpc_bare": ("bare grpc.aio around the core", {"color": "k", "marker": "h", "linestyle": ":"}),
    "grpc_bare_native": ("the same behind gRPC C++", {"color": "0.5", "marker": "H", "linestyle": ":"}),
    "grpc_bare_native_threads": (
        "the same behind gRPC C++, no event loop",
        {"color": "0.7", "marker": "d", "linestyle": ":"},
    ),
}


def read_record(source: str) -> dict[str, Any]:
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    for raw in reversed(text.splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            record: dict[str, Any] = json.loads(line)
            if record.get("bench") == "serving":
                return record
    raise SystemExit(f"{source}: no JSON line of bench/serving.py found")


def plot(record: dict[str, Any], model: str, image: str, out: Path, extra: list[str]) -> list[str]:
    """Writes the PNG; answers the series drawn."""
    rows = [r for r in record["results"] if r["model"] == model and r["image"] == image]
    if not rows:
        raise SystemExit(f"no results for {model} on {image} in this record")
    series = [*SERIES, *((name, *EXTRA[name]) for name in extra)]
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    drawn = []
    for variant, label, style in series:
        points = sorted((r["concurrency"], r) for r in rows if r["variant"] == variant)
        if not points:
            continue
        concurrency = [c for c, _ in points]
        throughput.plot(concurrency, [r["images_per_second"] for _, r in points], label=label, **style)
        latency.plot(concurrency, [r["p99_ms"] for _, r in points], label=label, **style)
        drawn.append(variant)
    limit = record.get("limit", {}).get(model, {}).get("images_per_second", {}).get(image)
    if limit is not None:
        throughput.axhline(
            limit, color="black", linestyle="--", linewidth=1.5, label=f"limit {limit:.0f} img/s"
        )
        drawn.append("limit")
    concurrencies = sorted({r["concurrency"] for r in rows})
    for axis in (throughput, latency):
        axis.set_xscale("log", base=2)
        axis.set_xticks(concurrencies, [str(c) for c in concurrencies])
        axis.minorticks_off()
        axis.set_xlabel("concurrent clients")
        axis.grid(True, alpha=0.3)
    throughput.set_ylabel("images per second")
    throughput.set_ylim(bottom=0)
    throughput.set_title("throughput (higher is better)")
    latency.set_ylabel("p99 latency (ms)")
    latency.set_yscale("log")
    plain = FuncFormatter(lambda value, _position: f"{value:g}")  # 20, 50, 100 rather than 2 x 10^1
    latency.yaxis.set_major_formatter(plain)
    latency.yaxis.set_minor_formatter(plain)
    latency.set_title("p99 latency (lower is better)")
    throughput.legend(loc="best", fontsize="small")
    machine = record.get("machine", {})
    rounds = record.get("settings", {}).get("rounds", "?")
    figure.suptitle(
        f"{model} on {record.get('images', {}).get(image, image)}: {machine.get('cpu', '?')}, "
        f"{machine.get('cores', '?')} cores, medians of {rounds} rounds",
        fontsize="medium",
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return drawn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", help="the JSON line of bench/serving.py (a file, or - for stdin)")
    parser.add_argument("--out", type=Path, default=Path("serving.png"), help="the PNG to write")
    parser.add_argument("--model", default="imagenet-mobilenet-v2")
    parser.add_argument("--image", default="dog", help="image name of the run (dog, dog4000)")
    parser.add_argument(
        "--also", nargs="*", default=[], choices=sorted(EXTRA), help="more sightd variants to draw"
    )
    args = parser.parse_args(argv)
    drawn = plot(read_record(args.source), args.model, args.image, args.out, args.also)
    print(f"{args.out}: {args.model} on {args.image}; {', '.join(drawn)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
