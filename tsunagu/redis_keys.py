"""Every Redis key tsunagu uses, in one place.

All keys carry the hash tag ``{tsunagu}`` (or the deployment's own prefix) so
they live in one Redis Cluster slot and multi-key Lua scripts stay legal.
The Lua scripts receive these names through KEYS; the per-id keys they build
themselves use the same ``prefix`` handed to them as ARGV, so the naming rule
is written here and in ``Keys.lua_prefix`` only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one deployment (``prefix`` is the hash-tagged namespace)."""

    prefix: str = "{tsunagu}"

    # -- routing -------------------------------------------------------------
    def queue(self, language: str) -> str:
        """ZSET call_id -> effective enqueue time in ms (lower = served first). No TTL."""
        return f"{self.prefix}:q:{language}"

    def call(self, call_id: str) -> str:
        """HASH of one call's fields (state, language, kiosk, interpreter, offer_id, times).

        TTL set when the call ends (1 day), none while live."""
        return f"{self.prefix}:call:{call_id}"

    def passed(self, call_id: str) -> str:
        """SET of interpreter ids who declined or missed this call. Deleted with the call."""
        return f"{self.prefix}:passed:{call_id}"

    def interp(self, interp_id: str) -> str:
        """HASH of one interpreter's routing state (state, since_ms, idle_since_ms,
        call_id, offer_id, languages, connected). No TTL."""
        return f"{self.prefix}:interp:{interp_id}"

    def idle(self, language: str) -> str:
        """ZSET interpreter_id -> idle-since ms, the *available* interpreters of a language."""
        return f"{self.prefix}:idle:{language}"

    def logged_in(self, language: str) -> str:
        """SET of interpreter ids connected (any state) who speak the language."""
        return f"{self.prefix}:in:{language}"

    @property
    def live_calls(self) -> str:
        """SET of call ids not yet ended."""
        return f"{self.prefix}:calls:live"

    @property
    def interpreters(self) -> str:
        """SET of interpreter ids ever seen (for the supervisor's table)."""
        return f"{self.prefix}:interps"

    def kiosk_call(self, kiosk_id: str) -> str:
        """STRING: the kiosk's live call id. Deleted when the call ends."""
        return f"{self.prefix}:kcall:{kiosk_id}"

    def kiosk_missed_end(self, kiosk_id: str) -> str:
        """STRING: the ``call.ended`` of the kiosk's current call, written whenever that call
        ends (unless the kiosk itself asked), whether or not a node holds the kiosk. Deleted
        by the kiosk's node once sent live (``Router.ended_seen``), else told and deleted by
        the next ``kiosk_connect`` on any node, or by a new ``call.request``. TTL 1 h."""
        return f"{self.prefix}:kended:{kiosk_id}"

    @property
    def deadlines(self) -> str:
        """ZSET "kind|id|token" -> due ms: offer timeouts, grace expiries, max wait, wrap-up."""
        return f"{self.prefix}:deadlines"

    @property
    def done(self) -> str:
        """STRING-per-request markers live under this prefix: ``done:<rid>`` (TTL 1 h)."""
        return f"{self.prefix}:done"

    @property
    def cfg(self) -> str:
        """HASH of routing timers the scripts read (offer_timeout_ms, wrapup_ms). No TTL."""
        return f"{self.prefix}:cfg"

    def node_clients(self, node_id: str) -> str:
        """SET of client ids whose socket a node holds (to clean up after a dead node)."""
        return f"{self.prefix}:nclients:{node_id}"

    @property
    def events(self) -> str:
        """STREAM of every routing transition (MAXLEN ~ 1,000,000)."""
        return f"{self.prefix}:events"

    # -- sessions and nodes --------------------------------------------------
    def session(self, session_id: str) -> str:
        """HASH session -> principal id, role, node, disconnected_ms. TTL = grace + margin."""
        return f"{self.prefix}:session:{session_id}"

    def client_session(self, client_id: str) -> str:
        """STRING: a kiosk's or interpreter's latest session id; its older session is deleted
        when a newer one opens, so reconnecting in a loop keeps one session. TTL = session's."""
        return f"{self.prefix}:csession:{client_id}"

    def client_node(self, client_id: str) -> str:
        """STRING client id -> node id holding its socket. TTL refreshed by the node."""
        return f"{self.prefix}:cnode:{client_id}"

    def node_inbox(self, node_id: str) -> str:
        """STREAM of messages for the clients of one signaling node (MAXLEN ~ 10,000)."""
        return f"{self.prefix}:inbox:{node_id}"

    @property
    def nodes(self) -> str:
        """ZSET node id -> last heartbeat ms."""
        return f"{self.prefix}:nodes"

    @property
    def sweep_lease(self) -> str:
        """STRING node id holding the sweeper lease (PX a few seconds)."""
        return f"{self.prefix}:sweep_lease"

    # -- flood limits (PROTOCOL.md section 13) -------------------------------
    def rate_messages(self, client_id: str, second: int) -> str:
        """STRING counter of a principal's messages in one wall-clock second, across all its
        sockets and nodes. TTL 2 s."""
        return f"{self.prefix}:rl:m:{client_id}:{second}"

    def rate_calls(self, kiosk_id: str) -> str:
        """ZSET of the ms times of a kiosk's call requests in the last minute (at most
        ``calls_per_minute`` members). TTL 60 s."""
        return f"{self.prefix}:rl:c:{kiosk_id}"

    def rate_flood(self, client_id: str) -> str:
        """STRING: ms when a principal's current flood (messages refused for the rate, with no
        2 s pause) began. TTL 2 s, renewed by each refusal."""
        return f"{self.prefix}:rl:f:{client_id}"

    @property
    def rate_pattern(self) -> str:
        """Glob matching every flood-limit key above."""
        return f"{self.prefix}:rl:*"

    # -- accounts ------------------------------------------------------------
    def user(self, username: str) -> str:
        """HASH of a staff account: role, name, languages, password hash. No TTL."""
        return f"{self.prefix}:user:{username}"

    def kiosk(self, kiosk_id: str) -> str:
        """HASH of a kiosk device: ward, counter, token generation. No TTL."""
        return f"{self.prefix}:kiosk:{kiosk_id}"

    @property
    def revoked(self) -> str:
        """SET of revoked token ids (jti) and kiosk ids. No TTL."""
        return f"{self.prefix}:revoked"

    # -- media relays --------------------------------------------------------
    @property
    def relays(self) -> str:
        """ZSET relay id -> last heartbeat ms. Entries older than 10 s are dead relays."""
        return f"{self.prefix}:relays"

    def relay(self, relay_id: str) -> str:
        """HASH of one relay: url, capacity, calls, cpu, updated_ms. TTL 10 s, renewed every 2 s."""
        return f"{self.prefix}:relay:{relay_id}"

    @property
    def relay_events(self) -> str:
        """STREAM of relay -> signaling events: relay_id, call_id, party, event, reason, at_ms."""
        return f"{self.prefix}:relay_events"

    def quality(self, call_id: str) -> str:
        """STRING JSON of the call's per-leg media quality, written by its relay. TTL 10 s."""
        return f"{self.prefix}:quality:{call_id}"
