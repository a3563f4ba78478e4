"""tsunagu's ground floor: what the signaling server, the relay, the kiosk client and the
console share. It imports none of them."""
