"""tsunagu signaling."""
