"""Keyset pagination over any of the listed tables (tasks, failures, videos)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from download_server.adapters.orm import FailureRow, TaskRow, VideoRow
from download_server.domain.listing import Cursor, Ordering, Page, SortField

R = TypeVar("R", TaskRow, FailureRow, VideoRow)


def _sort_column(model: type[R], ordering: Ordering) -> InstrumentedAttribute[Any]:
    if ordering.field is SortField.UPDATE_TIME:
        if model is not TaskRow:
            raise ValueError(f"{model.__tablename__} cannot be ordered by update_time")
        return TaskRow.update_time
    column: InstrumentedAttribute[Any] = model.create_time
    return column


def page(
    session: Session,
    model: type[R],
    filters: Sequence[ColumnElement[bool]],
    ordering: Ordering,
    cursor: Cursor | None,
    limit: int,
) -> Page[R]:
    """Rows after `cursor` in `ordering`, at most `limit`, with the last row's cursor if more follow.

    Keyset, not offset: rows inserted before the cursor position never shift what the next page shows.
    """
    column = _sort_column(model, ordering)
    ident = model.id
    query = select(model).where(*filters)
    if cursor is not None:
        if ordering.descending:
            after = or_(column < cursor.time, and_(column == cursor.time, ident < cursor.id))
        else:
            after = or_(column > cursor.time, and_(column == cursor.time, ident > cursor.id))
        query = query.where(after)
    order = (column.desc(), ident.desc()) if ordering.descending else (column.asc(), ident.asc())
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    total = session.scalar(select(func.count()).select_from(model).where(*filters)) or 0
    has_more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if has_more and rows else None
    next_cursor = Cursor(time=getattr(last, column.key), id=last.id) if last is not None else None
    return Page(items=rows, next_cursor=next_cursor, total_size=int(total))
