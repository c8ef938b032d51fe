"""booking_service."""
