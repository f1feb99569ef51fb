"""InferenceService: Infer (a task), Recognize (the result, within the call's deadline) and
RecognizeStream (many images in flight on one call, answered as each is ready).

Recognize and RecognizeStream answer a result with the message that the core serialized
(``ImageOutcome.message``), wrapped in their response's bytes, so that no Python message is built per
call: the server's handlers send bytes as they are (``sightd.grpc.wrapping``). A result the core could not
serialize is built from its v0.7 document (``result_message``), as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from sightd.app import documents
from sightd.app.errors import public_error
from sightd.app.inference import Inference
from sightd.grpc.auth import current_tenant
from sightd.grpc.handlers import answers_errors
from sightd.grpc.status import to_error_message, to_status
from sightd.runtime import ImageOutcome
from sightd.v1 import common_pb2, inference_pb2, inference_pb2_grpc

# Requests of one stream recognised at once; the stream reads no more until one is answered.
MAX_IN_FLIGHT_PER_STREAM = 64


def call_deadline(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    """The call's deadline as a ``time.monotonic()`` time (None: the client set none)."""
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + float(remaining)


def _prediction(item: dict[str, Any]) -> inference_pb2.Prediction:
    roi = item.get("roi")
    if roi is None:
        return inference_pb2.Prediction(
            label_id=item["label_id"],
            label_name=item["label_name"],
            score=item["score"],
            threshold=item["threshold"],
        )
    return inference_pb2.Prediction(
        label_id=item["label_id"],
        label_name=item["label_name"],
        score=item["score"],
        threshold=item["threshold"],
        roi=common_pb2.Roi(region_id=roi["region_id"], bbox=common_pb2.BoundingBox(**roi["bbox"])),
    )


def result_message(result: dict[str, Any]) -> inference_pb2.RecognitionResult:
    """The v0.7 result document (postprocessing.result_to_json's) as its message. Built field by field: the
    generic documents.to_message, which gives the same message, takes 3 times as long (21 against 7 µs for a
    top-5 classification, 60 against 18 µs for YOLOv3-tiny on dog.jpg)."""
    try:
        return inference_pb2.RecognitionResult(
            outputs=[
                inference_pb2.RecognitionOutput(
                    labels=inference_pb2.LabelsResult(
                        predicted=[_prediction(p) for p in output["labels"]["predicted"]],
                        discarded=[_prediction(p) for p in output["labels"]["discarded"]],
                    )
                )
                for output in result["outputs"]
            ]
        )
    except (KeyError, TypeError, ValueError):  # not the documented shape: the generic reader says what
        return documents.to_message(result, inference_pb2.RecognitionResult, ignore_unknown=True)


def _field_head(field: int, size: int) -> bytes:
    """The head of a protobuf field of wire type 2 (message, string, bytes; ``field`` below 16) holding
    ``size`` bytes: its tag and length, to which the payload is appended."""
    head = bytearray((field << 3 | 2,))
    while size >= 0x80:
        head.append(size & 0x7F | 0x80)
        size >>= 7
    head.append(size)
    return bytes(head)


def recognize_response(outcome: ImageOutcome) -> inference_pb2.RecognizeResponse | bytes:
    """The RecognizeResponse of a recognition: its ``result`` (field 1) around the core's serialized message,
    or the message built from the document."""
    message = outcome.message
    if message is None:
        assert outcome.result is not None  # a successful outcome
        return inference_pb2.RecognizeResponse(result=result_message(outcome.result))
    return _field_head(1, len(message)) + message


def stream_response(request_id: str, outcome: ImageOutcome) -> inference_pb2.RecognizeStreamResponse | bytes:
    """The RecognizeStreamResponse of a recognition: its ``request_id`` (field 1, left out when empty) and
    its ``result`` (field 2), as ``recognize_response``."""
    message = outcome.message
    if message is None:
        assert outcome.result is not None  # a successful outcome
        return inference_pb2.RecognizeStreamResponse(
            request_id=request_id, result=result_message(outcome.result)
        )
    result = (_field_head(2, len(message)), message)
    if not request_id:
        return b"".join(result)
    name = request_id.encode()
    return b"".join((_field_head(1, len(name)), name, *result))


class InferenceServicer(inference_pb2_grpc.InferenceServiceServicer):
    """sightd.v1.InferenceService. Recognize and RecognizeStream may answer serialized bytes: serve it
    through ``sightd.grpc.server.GrpcServer``, whose handlers send them as they are."""

    def __init__(self, inference: Inference) -> None:
        self.inference = inference

    @answers_errors
    async def Infer(
        self, request: inference_pb2.InferRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> inference_pb2.InferResponse:
        task_id = await self.inference.infer(current_tenant(), request)
        return inference_pb2.InferResponse(task_id=str(task_id))

    # Their answers may be bytes, sent as they are (the generated base class knows only messages).
    @answers_errors
    async def Recognize(  # type: ignore[override]
        self, request: inference_pb2.RecognizeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> inference_pb2.RecognizeResponse | bytes:
        outcome = await self.inference.recognize(current_tenant(), request, call_deadline(context))
        return recognize_response(outcome)

    async def RecognizeStream(  # type: ignore[override]
        self,
        request_iterator: AsyncIterator[inference_pb2.RecognizeStreamRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[inference_pb2.RecognizeStreamResponse | bytes]:
        tenant = current_tenant()
        deadline = call_deadline(context)
        answers: asyncio.Queue[inference_pb2.RecognizeStreamResponse | bytes | None] = asyncio.Queue()
        slots = asyncio.Semaphore(MAX_IN_FLIGHT_PER_STREAM)
        in_flight: set[asyncio.Task[None]] = set()

        async def answer(item: inference_pb2.RecognizeStreamRequest) -> None:
            response: inference_pb2.RecognizeStreamResponse | bytes
            try:
                outcome = await self.inference.recognize(tenant, item.request, deadline)
                response = stream_response(item.request_id, outcome)
            except Exception as error:
                response = inference_pb2.RecognizeStreamResponse(
                    request_id=item.request_id,
                    error=to_error_message(public_error(error, context="RecognizeStream")),
                )
            finally:
                slots.release()
            await answers.put(response)

        async def read() -> None:
            try:
                async for item in request_iterator:
                    await slots.acquire()
                    task = asyncio.create_task(answer(item))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                await asyncio.gather(*in_flight)
            finally:
                await answers.put(None)

        reader = asyncio.create_task(read())
        try:
            while (response := await answers.get()) is not None:
                yield response
            await reader  # a failure to read the requests ends the call with its error
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            if isinstance(error, asyncio.CancelledError):
                raise
            await context.abort_with_status(to_status(public_error(error, context="RecognizeStream")))
        finally:
            reader.cancel()
            for task in list(in_flight):
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(reader, *in_flight, return_exceptions=True)
