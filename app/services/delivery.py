"""The offices the counter delivers to: a list the admin keeps."""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from app.models import DeliveryPlace
from app.services.accounts import Actor, require_admin
from app.services.errors import DomainError, NotFound


def active_places(session: Session) -> list[DeliveryPlace]:
    return list(
        session.scalars(
            sa.select(DeliveryPlace)
            .where(DeliveryPlace.active.is_(True))
            .order_by(DeliveryPlace.building_zh, DeliveryPlace.room)
        )
    )


def all_places(session: Session) -> list[DeliveryPlace]:
    return list(
        session.scalars(
            sa.select(DeliveryPlace).order_by(
                DeliveryPlace.active.desc(), DeliveryPlace.building_zh, DeliveryPlace.room
            )
        )
    )


def get_place(session: Session, place_id: int) -> DeliveryPlace:
    place = session.get(DeliveryPlace, place_id)
    if place is None:
        raise NotFound(_l("No such delivery place."))
    return place


def save_place(
    session: Session,
    actor: Actor,
    place: DeliveryPlace | None,
    *,
    building_zh: str,
    room: str,
    active: bool,
) -> DeliveryPlace:
    require_admin(actor)
    building_zh, room = building_zh.strip(), room.strip()
    if not building_zh or len(building_zh) > 64:
        raise DomainError(_l("Enter the building (at most 64 characters)."), field="building_zh")
    if not room or len(room) > 32:
        raise DomainError(_l("Enter the room (at most 32 characters)."), field="room")
    clash = session.scalar(
        sa.select(DeliveryPlace).where(
            DeliveryPlace.building_zh == building_zh, DeliveryPlace.room == room
        )
    )
    if clash is not None and clash is not place:
        raise DomainError(_l("This place is already on the list."), field="room")
    if place is None:
        place = DeliveryPlace()
        session.add(place)
    place.building_zh, place.room, place.active = building_zh, room, active
    session.flush()
    return place
