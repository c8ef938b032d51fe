"""``/internal``: lookups for other services (service token; never routed by the gateway)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from auth_service.api.deps import AuthServiceDep
from auth_service.schemas import UserOut
from ticketing_common.security import ServiceCaller

router = APIRouter(prefix="/internal", tags=["internal"], dependencies=[ServiceCaller])


@router.get("/users/{user_id}", response_model=UserOut)
async def internal_user(
    user_id: Annotated[int, Path(gt=0, lt=2**63)], auth: AuthServiceDep
) -> UserOut:
    """``{id, email, role, status, is_verified, created_at}``; deleted accounts included."""
    return UserOut.model_validate(await auth.user_for_service(user_id))
