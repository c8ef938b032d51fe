"""List pagination as DESIGN §4 has it: ``limit``/``offset`` in, total in ``X-Total-Count``.

Lists keep the original's body shapes (``{"bookings": [...]}``, bare arrays of events and
users), so the total travels in a header rather than in the body. Without ``limit`` a list
answers up to :data:`MAX_LIMIT` rows, so the original's clients (which never page) see
everything a list of that size holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Response

MAX_LIMIT = 1000
DEFAULT_LIMIT = MAX_LIMIT
MAX_OFFSET = 1_000_000_000
TOTAL_COUNT_HEADER = "X-Total-Count"
#: ids are BIGINT: anything larger is a 400, not a database error
MAX_ID = 2**63 - 1

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description="page size (at most 1,000, the default)")
]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]
DbId = Annotated[int, Path(ge=1, le=MAX_ID)]


def set_total_count(response: Response, total: int) -> None:
    response.headers[TOTAL_COUNT_HEADER] = str(total)


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int

    def answer_total(self, response: Response, total: int) -> None:
        set_total_count(response, total)


async def page_params(limit: Limit = DEFAULT_LIMIT, offset: Offset = 0) -> Page:
    return Page(limit=limit, offset=offset)


PageDep = Annotated[Page, Depends(page_params)]
