from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import event_payload


async def test_organizer_creates_and_publishes(client: httpx.AsyncClient, make_user: Any) -> None:
    _, organizer = await make_user("organizer")
    created = await client.post("/api/v1/events", json=event_payload(), headers=organizer)
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["status"] == "draft"
    assert [z["capacity"] for z in event["zones"]] == [10, 5]
    assert event["zones"][1]["seats"] == ["A1", "A2", "A3", "B1", "B2"]

    # A draft is invisible to the public.
    assert (await client.get(f"/api/v1/events/{event['event_id']}")).status_code == 404
    assert (await client.get("/api/v1/events")).json()["items"] == []

    published = await client.post(f"/api/v1/events/{event['event_id']}/publish", headers=organizer)
    assert published.status_code == 200
    assert published.json()["status"] == "on_sale"
    again = await client.post(f"/api/v1/events/{event['event_id']}/publish", headers=organizer)
    assert again.status_code == 200

    public = await client.get(f"/api/v1/events/{event['event_id']}")
    assert public.status_code == 200
    listed = (await client.get("/api/v1/events")).json()["items"]
    assert [e["event_id"] for e in listed] == [event["event_id"]]

    availability = (await client.get(f"/api/v1/events/{event['event_id']}/availability")).json()
    assert availability == {
        "event_id": event["event_id"],
        "zones": [
            {"zone_id": event["zones"][0]["zone_id"], "capacity": 10, "available": 10},
            {"zone_id": event["zones"][1]["zone_id"], "capacity": 5, "available": 5},
        ],
    }


async def test_customers_cannot_create_or_publish(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    _, customer = await make_user("customer")
    denied = await client.post("/api/v1/events", json=event_payload(), headers=customer)
    assert denied.status_code == 403
    assert denied.json()["code"] == "forbidden"

    _, organizer = await make_user("organizer")
    event = (await client.post("/api/v1/events", json=event_payload(), headers=organizer)).json()
    _, other_organizer = await make_user("organizer")
    hidden = await client.post(
        f"/api/v1/events/{event['event_id']}/publish", headers=other_organizer
    )
    assert hidden.status_code == 404
    _, admin = await make_user("admin")
    assert (
        await client.post(f"/api/v1/events/{event['event_id']}/publish", headers=admin)
    ).status_code == 200


async def test_bad_event_input_names_fields_and_creates_nothing(
    client: httpx.AsyncClient, make_user: Any, clean_db: Any
) -> None:
    _, organizer = await make_user("organizer")
    cases = {
        "max_per_user": event_payload(max_per_user=0),
        "currency": event_payload(currency="euro"),
        "zones": event_payload(zones=[]),
        "zones.0.seats": event_payload(
            zones=[{"name": "S", "price_minor": 1, "seats": ["A1", "A1"]}]
        ),
        "zones.0.price_minor": event_payload(
            zones=[{"name": "S", "price_minor": -1, "capacity": 3}]
        ),
        "starts_at": event_payload(starts_at="tomorrow"),
    }
    for field, payload in cases.items():
        answer = await client.post("/api/v1/events", json=payload, headers=organizer)
        assert answer.status_code == 422, field
        assert answer.json()["code"] == "invalid_request"
        assert field in {e["field"] for e in answer.json()["errors"]}, (field, answer.json())
    assert await clean_db.fetchval("SELECT count(*) FROM events") == 0


async def test_admin_stats_show_counters_and_drift(
    client: httpx.AsyncClient, make_user: Any, published_event: Any
) -> None:
    import uuid

    event, organizer = await published_event()
    _, buyer = await make_user()
    await client.post(
        "/api/v1/bookings/reserve",
        json={
            "event_id": event["event_id"],
            "zone_id": event["zones"][0]["zone_id"],
            "quantity": 2,
        },
        headers={**buyer, "Idempotency-Key": uuid.uuid4().hex},
    )
    url = f"/api/v1/admin/events/{event['event_id']}/stats"
    _, other_organizer = await make_user("organizer")
    for outsider in (buyer, other_organizer):
        refused = await client.get(url, headers=outsider)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    _, admin = await make_user("admin")
    for manager in (organizer, admin):  # the event's own organizer reads its stats too
        stats = (await client.get(url, headers=manager)).json()
        assert (stats["capacity"], stats["available"], stats["held"], stats["sold"]) == (
            15,
            13,
            2,
            0,
        )
        assert stats["drift"] == 0
        assert stats["zones"][0]["postgres"] == {"held": 2, "sold": 0}
        assert set(stats["live"]) == {
            "processes",
            "feed_watchers",
            "queue_streams",
            "events_per_s",
            "pass_deliveries",
            "pass_delivery_p99_s",
            "window_s",
        }


async def test_mine_lists_the_callers_events_with_drafts(
    client: httpx.AsyncClient, make_user: Any, published_event: Any
) -> None:
    published, organizer = await published_event(name="Mine on sale")
    draft = await client.post(
        "/api/v1/events", json=event_payload(name="Mine draft"), headers=organizer
    )
    assert draft.status_code == 201
    _, someone_else = await make_user("organizer")
    theirs = await client.post(
        "/api/v1/events", json=event_payload(name="Their draft"), headers=someone_else
    )
    assert theirs.status_code == 201

    def names(answer: httpx.Response) -> set[str]:
        assert answer.status_code == 200, answer.text
        return {event["name"] for event in answer.json()["items"]}

    # The public list is unchanged: no drafts, for anyone.
    assert names(await client.get("/api/v1/events")) == {"Mine on sale"}
    assert names(await client.get("/api/v1/events", headers=organizer)) == {"Mine on sale"}
    assert names(await client.get("/api/v1/events?mine=false", headers=organizer)) == {
        "Mine on sale"
    }
    mine = await client.get("/api/v1/events?mine=true", headers=organizer)
    assert names(mine) == {"Mine on sale", "Mine draft"}
    statuses = {event["name"]: event["status"] for event in mine.json()["items"]}
    assert statuses == {"Mine on sale": "on_sale", "Mine draft": "draft"}
    assert names(await client.get("/api/v1/events?mine=true", headers=someone_else)) == {
        "Their draft"
    }
    _, admin = await make_user("admin")
    assert names(await client.get("/api/v1/events?mine=true", headers=admin)) == {
        "Mine on sale",
        "Mine draft",
        "Their draft",
    }
    _, buyer = await make_user()
    assert names(await client.get("/api/v1/events?mine=true", headers=buyer)) == set()
    anonymous = await client.get("/api/v1/events?mine=true")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"
    for bad in ("mine=yes", "mine=True", "mine=1", "mine=", "mine=true&mine=true"):
        answer = await client.get(f"/api/v1/events?{bad}", headers=organizer)
        assert answer.status_code == 422, bad
        assert answer.json()["errors"] == [
            {"field": "mine", "message": "must be given once, as true or false"}
        ]
    assert published["status"] == "on_sale"
