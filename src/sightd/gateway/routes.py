"""The REST API's routes: every path the official client sends (``official-client-rest.md``), each with its
handlers and what the OpenAPI document says of them.

Paths are written as the client writes them (resources end with ``/``, the ``inference`` and ``versions``
suffixes do not); both spellings match. A private or a public id may be used under either base path of
networks and specs (the id names the resource): ``/recognition/public/{id}/`` is what the client uses for
string ids, ``/recognition/specs/{id}/`` for integers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sightd.gateway import inference, resources
from sightd.gateway.app import Handler, Route


@dataclass(frozen=True)
class Operation:
    """A method of a path: its handler and its OpenAPI description."""

    handler: Handler
    summary: str
    body: str | None = None  # schema of the JSON body (components/schemas)
    form: bool = False  # also takes multipart/form-data
    answer: str | None = None  # schema of the 2xx answer; None: 204
    status: int = 200
    query: tuple[str, ...] = ()  # query parameters


_PAGE = ("offset", "limit")


@dataclass(frozen=True)
class Path:
    path: str
    operations: dict[str, Operation]
    uploads: bool = False


PATHS: tuple[Path, ...] = (
    Path(
        "/accounts/{id}/",
        {
            "GET": Operation(
                resources.get_account, "What the API key can see (only `me` exists)", answer="Account"
            )
        },
    ),
    Path(
        "/networks/",
        {
            "GET": Operation(
                resources.list_networks, "List your networks", answer="NetworkPage", query=_PAGE
            ),
            "POST": Operation(
                resources.create_network,
                "Upload a network: JSON fields, and its model and mean files as multipart parts named by "
                "field name (`model.onnx`, `mean.binaryproto`)",
                body="NetworkCreate",
                form=True,
                answer="NetworkCreated",
                status=201,
            ),
        },
        uploads=True,
    ),
    Path(
        "/networks/public/",
        {
            "GET": Operation(
                resources.list_public_networks, "List the public networks", answer="NetworkPage", query=_PAGE
            )
        },
    ),
    *(
        Path(
            f"/networks/{base}{{id}}/",
            {
                "GET": Operation(resources.get_network, "Retrieve a network", answer="Network"),
                "PATCH": Operation(
                    resources.update_network,
                    "Change some of name, description, metadata",
                    body="NetworkUpdate",
                    answer="Network",
                ),
                "PUT": Operation(
                    resources.replace_network,
                    "Replace name, description and metadata",
                    body="NetworkUpdate",
                    answer="Network",
                ),
                "DELETE": Operation(
                    resources.delete_network, "Delete a network and its recognition versions"
                ),
            },
        )
        for base in ("", "public/")
    ),
    *(
        Path(
            f"/networks/{base}{{id}}/inference",
            {
                "POST": Operation(
                    inference.network_inference,
                    "Run a network on an image: a task whose data holds the raw output tensors",
                    body="NetworkInference",
                    form=True,
                    answer="TaskId",
                )
            },
        )
        for base in ("", "public/")
    ),
    Path(
        "/recognition/specs/",
        {
            "GET": Operation(
                resources.list_specs, "List your recognition specs", answer="SpecPage", query=_PAGE
            ),
            "POST": Operation(
                resources.create_spec,
                "Create a recognition spec",
                body="SpecCreate",
                answer="RecognitionSpec",
                status=201,
            ),
        },
    ),
    Path(
        "/recognition/public/",
        {
            "GET": Operation(
                resources.list_public_specs,
                "List the public recognition models",
                answer="SpecPage",
                query=_PAGE,
            )
        },
    ),
    *(
        Path(
            f"/recognition/{base}/{{id}}/",
            {
                "GET": Operation(resources.get_spec, "Retrieve a recognition spec", answer="RecognitionSpec"),
                "PATCH": Operation(
                    resources.update_spec,
                    "Change some of name, description, metadata, current_version_id",
                    body="SpecUpdate",
                    answer="RecognitionSpec",
                ),
                "PUT": Operation(
                    resources.replace_spec,
                    "Replace name, description, metadata and current_version_id",
                    body="SpecUpdate",
                    answer="RecognitionSpec",
                ),
                "DELETE": Operation(resources.delete_spec, "Delete a recognition spec and its versions"),
            },
        )
        for base in ("specs", "public")
    ),
    *(
        Path(
            f"/recognition/{base}/{{id}}/versions",
            {
                "GET": Operation(
                    resources.list_spec_versions,
                    "List the versions of a recognition spec",
                    answer="VersionPage",
                    query=_PAGE,
                )
            },
        )
        for base in ("specs", "public")
    ),
    *(
        Path(
            f"/recognition/{base}/{{id}}/inference",
            {
                "POST": Operation(
                    inference.spec_inference,
                    "Recognise an image with the spec's current version: answers a task id at once",
                    body="Inference",
                    form=True,
                    answer="TaskId",
                )
            },
        )
        for base in ("specs", "public")
    ),
    Path(
        "/recognition/versions/",
        {
            "GET": Operation(
                resources.list_versions, "List your recognition versions", answer="VersionPage", query=_PAGE
            ),
            "POST": Operation(
                resources.create_version,
                "Create a recognition version: a spec, a network and post-processings",
                body="VersionCreate",
                answer="RecognitionVersion",
                status=201,
            ),
        },
    ),
    Path(
        "/recognition/versions/{id}/",
        {
            "GET": Operation(
                resources.get_version, "Retrieve a recognition version", answer="RecognitionVersion"
            ),
            "DELETE": Operation(resources.delete_version, "Delete a recognition version"),
        },
    ),
    Path(
        "/recognition/versions/{id}/inference",
        {
            "POST": Operation(
                inference.version_inference,
                "Recognise an image with a version: answers a task id at once",
                body="Inference",
                form=True,
                answer="TaskId",
            )
        },
    ),
    Path(
        "/tasks/",
        {
            "GET": Operation(
                inference.list_tasks,
                "The tasks of a list of ids (`task_ids` repeated, or comma-separated)",
                answer="TaskPage",
                query=("task_ids", *_PAGE),
            )
        },
    ),
    Path("/tasks/{id}/", {"GET": Operation(inference.get_task, "Retrieve a task", answer="Task")}),
)


def routes() -> list[Route]:
    """The routing table of the gateway. Fixed paths come before the ones with an ``{id}`` they would
    otherwise match (``/networks/public/`` before ``/networks/{id}/``)."""
    ordered = sorted(PATHS, key=lambda path: "{" in path.path)
    return [
        Route(path.path, {method: op.handler for method, op in path.operations.items()}, path.uploads)
        for path in ordered
    ]
