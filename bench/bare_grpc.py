"""A bare grpc.aio server around sightd's core: bench/serving.py's ``grpc_bare`` variant, the reference for
what the gRPC transport itself costs.

It serves ``sightd.v1.InferenceService/Recognize`` for one public model and nothing else: it parses the
request, runs the core ``Recognizer`` on one of the runtime's worker threads (the service's default layout:
``workers`` threads, each session with ``cores // workers`` ONNX Runtime threads), and answers the v0.7
result message as sightd does. It has the service's channel arguments (``sightd.grpc.server``) but none of
its layers: no authentication (the API key is ignored), metrics, storage, definitions, limits, deadlines,
queueing or batching. What sightd's unary ``Recognize`` loses against it is what those layers cost; what it
loses against the limit is grpc.aio's own cost per call.

Usage: python bench/bare_grpc.py MODEL  (prints ``listening on 127.0.0.1:PORT`` once it serves)
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from sightd.config import load_settings
from sightd.grpc.inference import result_message
from sightd.grpc.server import server_options
from sightd.recognition import Recognizer, result_json
from sightd.runtime import RuntimeSettings
from sightd.v1 import inference_pb2

SERVICE = "sightd.v1.InferenceService"


async def serve(model: str) -> None:
    settings = load_settings(environ={})
    runtime = RuntimeSettings.from_settings(settings)
    recognizer = Recognizer.from_zoo(model, session=runtime.session_settings, max_pixels=runtime.max_pixels)
    workers = ThreadPoolExecutor(runtime.workers, thread_name_prefix="bare-inference")

    def run(data: bytes, max_predictions: int | None) -> dict[str, Any] | str:
        (result,) = recognizer.recognize([(data, None)], max_predictions=max_predictions)
        return result_json(result) if result.ok else result.error_message

    async def recognize(
        request: inference_pb2.RecognizeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> inference_pb2.RecognizeResponse:
        if len(request.inputs) != 1 or not request.inputs[0].image.data:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "one inline image input, please")
        limit = request.max_predictions if request.HasField("max_predictions") else None
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(workers, run, request.inputs[0].image.data, limit)
        if isinstance(answer, str):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, answer)
        return inference_pb2.RecognizeResponse(result=result_message(answer))

    handler = grpc.unary_unary_rpc_method_handler(
        recognize,
        request_deserializer=inference_pb2.RecognizeRequest.FromString,
        response_serializer=inference_pb2.RecognizeResponse.SerializeToString,
    )
    server = grpc.aio.server(options=server_options(settings))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Recognize": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    try:
        await server.wait_for_termination()
    finally:
        workers.shutdown(wait=False, cancel_futures=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
