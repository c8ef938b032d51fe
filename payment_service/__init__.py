"""payment_service."""
