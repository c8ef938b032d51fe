"""auth_service HTTP routes."""

from fastapi import APIRouter

from auth_service.api import admin, auth, internal

router = APIRouter()
router.include_router(auth.router)
router.include_router(admin.router)
router.include_router(internal.router)
