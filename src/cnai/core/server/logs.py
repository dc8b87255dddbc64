"""``GET .../namespaces/{ns}/pods/{name}/log``: a pod's output, streamed from the runtime.

``follow=true`` keeps the stream open until the process ends; ``offset`` (bytes) lets a
client that lost its connection, for instance across a platform restart, resume where
it stopped without seeing any line twice.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from cnai.core.auth import authorize
from cnai.core.errors import BadRequest, NotFound
from cnai.core.runtime import Runtime
from cnai.version import API_GROUP, API_VERSION

PATH = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{{ns}}/pods/{{name}}/log"


def log_route(api: object, runtime: Runtime | None) -> Route:
    """The route, bound to the API server's auth and service and to ``runtime``."""
    from cnai.core.server.app import ApiServer

    assert isinstance(api, ApiServer)

    async def pod_log(request: Request) -> Response:
        ns, name = request.path_params["ns"], request.path_params["name"]
        authorize(
            api.principal(request),
            namespace=ns,
            namespaced=True,
            plural="pods",
            name=name,
            verb="get",
        )
        q = request.query_params
        try:
            offset = int(q.get("offset", "0"))
        except ValueError:
            offset = -1
        if offset < 0:
            raise BadRequest("offset: must be a non-negative number of bytes")
        pod = await api.service.get("pods", ns, name)
        if runtime is None:
            raise NotFound("this platform runs no runtime, so it has no pod logs")
        follow = q.get("follow", "").lower() in ("1", "true")
        chunks = runtime.logs(pod["metadata"]["uid"], follow=follow, offset=offset)
        return StreamingResponse(chunks, media_type="text/plain; charset=utf-8")

    return Route(PATH, pod_log, methods=["GET"])
