"""tsunagu kiosk_client."""
