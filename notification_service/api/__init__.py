"""notification_service HTTP routes."""

from fastapi import APIRouter

router = APIRouter()
