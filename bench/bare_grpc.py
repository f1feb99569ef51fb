"""A bare grpc.aio server around sightd's core: bench/serving.py's ``grpc_bare`` variant, the reference for
what the gRPC transport itself costs.

It serves ``sightd.v1.InferenceService/Recognize`` for one public model and nothing else: it parses the
request, runs the core ``Recognizer`` on one of the runtime's worker threads (the service's default layout:
``workers`` threads, each session with ``cores // workers`` ONNX Runtime threads), and answers the v0.7
result message as sightd does. It has the service's channel arguments (``sightd.grpc.server``) but none of
its layers: no authentication (the API key is ignored), metrics, storage, definitions, limits, deadlines,
queueing or batching. What sightd's unary ``Recognize`` loses against it is what those layers cost; what it
loses against the limit is grpc.aio's own cost per call.

With ``--transport native`` (bench/serving.py's ``grpc_bare_native``) the same handler answers the calls that
gRPC C++ receives (bench/native/grpc_bridge.cc, built by ``make bench-loadgen`` into build/bench/): HTTP/2 and
the call's life in C++ threads, the handler on the event loop. What it gains over grpc.aio is what grpc.aio
costs per call beyond the handler. With ``--transport native-threads`` (``grpc_bare_native_threads``) the
bridge's own ``workers`` threads run the whole handler, with the GIL but without the event loop: what is
left is the Python of the handler itself. Together they measure the designs of a native front end.

Usage: python bench/bare_grpc.py MODEL [--transport aio|native|native-threads]
(prints ``listening on 127.0.0.1:PORT`` once it serves)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from sightd.config import load_settings
from sightd.grpc.inference import result_message
from sightd.grpc.server import server_options
from sightd.recognition import Recognizer, result_json
from sightd.runtime import RuntimeSettings
from sightd.v1 import inference_pb2

SERVICE = "sightd.v1.InferenceService"
METHOD = f"/{SERVICE}/Recognize"
BRIDGE_DIR = Path(__file__).resolve().parent.parent / "build" / "bench"


class RejectedError(Exception):
    """A request the handler refuses, with its status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Handler = Callable[[inference_pb2.RecognizeRequest], Awaitable[inference_pb2.RecognizeResponse]]


def parse(method: str, data: bytes) -> inference_pb2.RecognizeRequest:
    """A call the native transports received, as the request grpc.aio would hand its handler; refused as
    grpc.aio refuses a method it does not serve or a request that does not parse."""
    if method != METHOD:
        raise RejectedError(grpc.StatusCode.UNIMPLEMENTED, f"no method {method}")
    try:
        return inference_pb2.RecognizeRequest.FromString(data)
    except DecodeError:
        raise RejectedError(grpc.StatusCode.INTERNAL, "the request does not parse") from None


async def serve(model: str, transport: str) -> None:
    settings = load_settings(environ={})
    runtime = RuntimeSettings.from_settings(settings)
    recognizer = Recognizer.from_zoo(model, session=runtime.session_settings, max_pixels=runtime.max_pixels)
    workers = ThreadPoolExecutor(runtime.workers, thread_name_prefix="bare-inference")

    def run(data: bytes, max_predictions: int | None) -> dict[str, Any] | str:
        (result,) = recognizer.recognize([(data, None)], max_predictions=max_predictions)
        return result_json(result) if result.ok else result.error_message

    def inputs(request: inference_pb2.RecognizeRequest) -> tuple[bytes, int | None]:
        if len(request.inputs) != 1 or not request.inputs[0].image.data:
            raise RejectedError(grpc.StatusCode.INVALID_ARGUMENT, "one inline image input, please")
        limit = request.max_predictions if request.HasField("max_predictions") else None
        return request.inputs[0].image.data, limit

    def response(answer: dict[str, Any] | str) -> inference_pb2.RecognizeResponse:
        if isinstance(answer, str):
            raise RejectedError(grpc.StatusCode.INVALID_ARGUMENT, answer)
        return inference_pb2.RecognizeResponse(result=result_message(answer))

    async def recognize(request: inference_pb2.RecognizeRequest) -> inference_pb2.RecognizeResponse:
        data, limit = inputs(request)
        loop = asyncio.get_running_loop()
        return response(await loop.run_in_executor(workers, run, data, limit))

    def recognize_now(request: inference_pb2.RecognizeRequest) -> inference_pb2.RecognizeResponse:
        return response(run(*inputs(request)))

    try:
        if transport == "native":
            await serve_native(recognize, server_options(settings))
        elif transport == "native-threads":
            await serve_native_threads(recognize_now, server_options(settings), runtime.workers)
        else:
            await serve_aio(recognize, server_options(settings))
    finally:
        workers.shutdown(wait=False, cancel_futures=True)


async def serve_aio(recognize: Handler, options: list[tuple[str, int]]) -> None:
    async def handle(
        request: inference_pb2.RecognizeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> inference_pb2.RecognizeResponse:
        try:
            return await recognize(request)
        except RejectedError as rejected:
            await context.abort(rejected.code, rejected.message)
            raise

    handler = grpc.unary_unary_rpc_method_handler(
        handle,
        request_deserializer=inference_pb2.RecognizeRequest.FromString,
        response_serializer=inference_pb2.RecognizeResponse.SerializeToString,
    )
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Recognize": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


def bridge_module() -> Any:
    sys.path.insert(0, str(BRIDGE_DIR))
    return importlib.import_module("grpc_bridge")


async def serve_native(recognize: Handler, options: list[tuple[str, int]]) -> None:
    server = bridge_module().Server("127.0.0.1:0", options)
    tasks: set[asyncio.Task[None]] = set()

    async def answer(call: int, method: str, data: bytes) -> None:
        try:
            response = await recognize(parse(method, data))
        except RejectedError as rejected:
            server.fail(call, rejected.code.value[0], rejected.message)
        except Exception as error:  # every call is answered, as grpc.aio answers a handler that raises
            server.fail(call, grpc.StatusCode.UNKNOWN.value[0], f"Unexpected {error!r}")
        else:
            server.finish(call, response.SerializeToString())

    def receive() -> None:
        for call, method, data in server.take():
            task = loop.create_task(answer(call, method, data))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    loop = asyncio.get_running_loop()
    loop.add_reader(server.fd, receive)
    print(f"listening on 127.0.0.1:{server.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        loop.remove_reader(server.fd)
        server.shutdown()


async def serve_native_threads(
    recognize_now: Callable[[inference_pb2.RecognizeRequest], inference_pb2.RecognizeResponse],
    options: list[tuple[str, int]],
    workers: int,
) -> None:
    def handle(method: str, data: bytes) -> bytes | tuple[int, str]:  # on a bridge worker, with the GIL
        try:
            return recognize_now(parse(method, data)).SerializeToString()
        except RejectedError as rejected:
            return rejected.code.value[0], rejected.message

    server = bridge_module().Server("127.0.0.1:0", options, handle, workers)
    print(f"listening on 127.0.0.1:{server.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        server.shutdown()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--transport", choices=("aio", "native", "native-threads"), default="aio")
    arguments = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(arguments.model, arguments.transport))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
