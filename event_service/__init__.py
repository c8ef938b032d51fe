"""event_service."""
