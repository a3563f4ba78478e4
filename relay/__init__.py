"""tsunagu relay."""
