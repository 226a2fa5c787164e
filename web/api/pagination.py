"""One page of a listing, in the API's ``{items, page, per_page, total}`` shape."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


def paginate(
    db: Session, query: Select[Any], *, order_by: tuple[Any, ...], page: int, per_page: int
) -> dict[str, Any]:
    """Run ``query`` for one page and return its rows with the total count.

    The rows are dumped by the endpoint's output schema.

    Parameters
    ----------
    db : Session
    query : Select
        Selects ORM rows; filters applied, no ordering.
    order_by : tuple
        Columns to order by (newest first, then a tie-breaker, for a stable page order).
    page : int >= 1
    per_page : int >= 1
    """
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(query.order_by(*order_by).offset((page - 1) * per_page).limit(per_page))
    return {
        "items": list(rows),
        "page": page,
        "per_page": per_page,
        "total": total,
    }
