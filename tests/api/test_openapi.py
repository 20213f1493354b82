from __future__ import annotations

from typing import Any

import httpx
from starlette.routing import Mount, Route

from booking.middleware import route_template


def _served(app: Any) -> set[tuple[str, str]]:
    served = set()
    for mount in app.routes:
        if isinstance(mount, Mount) and mount.path == "/api/v1":
            for route in mount.routes:
                if isinstance(route, Route):
                    for method in route.methods or ():
                        if method != "HEAD":
                            template = route_template({"route": route})
                            served.add((method.lower(), template))
    return served


async def test_openapi_lists_exactly_the_served_routes(client: httpx.AsyncClient, app: Any) -> None:
    answer = await client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    listed = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert listed == _served(app)
    reserve = document["paths"]["/bookings/reserve"]["post"]
    schema_name = reserve["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_name.endswith("/ReserveBody")
    assert "quantity" in document["components"]["schemas"]["ReserveBody"]["properties"]
