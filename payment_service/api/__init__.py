"""payment_service HTTP routes."""

from fastapi import APIRouter

from payment_service.api.checkout import router as checkout_router
from payment_service.api.payments import router as payments_router

router = APIRouter()
router.include_router(payments_router)
router.include_router(checkout_router)
