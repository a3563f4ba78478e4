"""Every Redis key tsunagu uses, in one place.

All keys carry the hash tag ``{tsunagu}`` (or the deployment's own prefix) so
they live in one Redis Cluster slot and multi-key Lua scripts stay legal.
The Lua scripts receive these names through KEYS; the per-id keys they build
themselves use the same ``prefix`` handed to them as ARGV, so the naming rule
is written here only (the scripts get ``PARTS`` as a generated Lua table).
"""

from __future__ import annotations

from dataclasses import dataclass

# The name part of every key after the prefix, by the method that builds it. The routing
# scripts get this table as Lua (tsunagu.states.lua_tables), so a name is written once.
PARTS: dict[str, str] = {
    "queue": "q",
    "call": "call",
    "passed": "passed",
    "interp": "interp",
    "idle": "idle",
    "logged_in": "in",
    "live_calls": "calls:live",
    "interpreters": "interps",
    "kiosk_call": "kcall",
    "kiosk_missed_end": "kended",
    "deadlines": "deadlines",
    "done": "done",
    "cfg": "cfg",
    "node_clients": "nclients",
    "events": "events",
    "session": "session",
    "client_session": "csession",
    "client_node": "cnode",
    "node_inbox": "inbox",
    "node_chat": "chat",
    "nodes": "nodes",
    "rate_prefix": "rl",
    "rate_messages": "rl:m",
    "rate_calls": "rl:c",
    "rate_flood": "rl:f",
    "sweep_lease": "sweep_lease",
    "user": "user",
    "kiosk": "kiosk",
    "revoked": "revoked",
    "revocations": "revocations",
    "login_failures": "loginfail",
    "relays": "relays",
    "relay": "relay",
    "relay_events": "relay_events",
    "quality": "quality",
    "kiosk_health": "khealth",
    "kiosk_seen": "kseen",
    "kiosk_test": "ktest",
    "records": "records",
    "record_days": "record_days",
    "records_upto": "records_upto",
    "rating_pending": "rpending",
    "fleet_day": "fleet_day",
    "fleet_sample": "fleet_sample",
    "test_day": "ktday",
    "test_run": "ktrun",
    "test_clock": "test_clock",
}


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one deployment (``prefix`` is the hash-tagged namespace)."""

    prefix: str = "{tsunagu}"

    def _key(self, name: str, *ids: str) -> str:
        return ":".join((self.prefix, PARTS[name], *ids))

    # -- routing -------------------------------------------------------------
    def queue(self, language: str) -> str:
        """ZSET call_id -> effective enqueue time in ms (lower = served first). No TTL."""
        return self._key("queue", language)

    def call(self, call_id: str) -> str:
        """HASH of one call's fields (state, language, kiosk, interpreter, offer_id, times).

        TTL set when the call ends (1 day), none while live."""
        return self._key("call", call_id)

    def passed(self, call_id: str) -> str:
        """SET of interpreter ids who declined or missed this call. Deleted with the call."""
        return self._key("passed", call_id)

    def interp(self, interp_id: str) -> str:
        """HASH of one interpreter's routing state (state, since_ms, idle_since_ms,
        call_id, offer_id, languages, connected). No TTL."""
        return self._key("interp", interp_id)

    def idle(self, language: str) -> str:
        """ZSET interpreter_id -> idle-since ms, the *available* interpreters of a language."""
        return self._key("idle", language)

    def logged_in(self, language: str) -> str:
        """SET of interpreter ids connected (any state) who speak the language."""
        return self._key("logged_in", language)

    @property
    def live_calls(self) -> str:
        """SET of call ids not yet ended."""
        return self._key("live_calls")

    @property
    def interpreters(self) -> str:
        """SET of interpreter ids ever seen (for the supervisor's table)."""
        return self._key("interpreters")

    def kiosk_call(self, kiosk_id: str) -> str:
        """STRING: the kiosk's live call id. Deleted when the call ends."""
        return self._key("kiosk_call", kiosk_id)

    def kiosk_missed_end(self, kiosk_id: str) -> str:
        """STRING: the ``call.ended`` of the kiosk's current call, written whenever that call
        ends (unless the kiosk itself asked), whether or not a node holds the kiosk. Deleted
        by the kiosk's node once sent live (``Router.ended_seen``), else told and deleted by
        the next ``kiosk_connect`` on any node, or by a new ``call.request``. TTL 1 h."""
        return self._key("kiosk_missed_end", kiosk_id)

    @property
    def deadlines(self) -> str:
        """ZSET "kind|id|token" -> due ms: offer timeouts, grace expiries, max wait, wrap-up."""
        return self._key("deadlines")

    @property
    def done(self) -> str:
        """STRING-per-request markers live under this prefix: ``done:<rid>`` (TTL 1 h)."""
        return self._key("done")

    @property
    def cfg(self) -> str:
        """HASH of routing timers the scripts read (offer_timeout_ms, wrapup_ms). No TTL."""
        return self._key("cfg")

    def node_clients(self, node_id: str) -> str:
        """SET of client ids whose socket a node holds (to clean up after a dead node)."""
        return self._key("node_clients", node_id)

    @property
    def events(self) -> str:
        """STREAM of every routing transition: trimmed by age (``TSUNAGU_EVENTS_RETENTION_DAYS``,
        default 35) with a count cap as a safety (``TSUNAGU_EVENTS_MAX_ENTRIES``, default
        MAXLEN ~ 1,000,000)."""
        return self._key("events")

    # -- sessions and nodes --------------------------------------------------
    def session(self, session_id: str) -> str:
        """HASH session -> principal id, role, node, disconnected_ms. TTL = grace + margin."""
        return self._key("session", session_id)

    def client_session(self, client_id: str) -> str:
        """STRING: a kiosk's or interpreter's latest session id; its older session is deleted
        when a newer one opens, so reconnecting in a loop keeps one session. TTL = session's."""
        return self._key("client_session", client_id)

    def client_node(self, client_id: str) -> str:
        """STRING client id -> node id holding its socket. TTL refreshed by the node."""
        return self._key("client_node", client_id)

    def node_inbox(self, node_id: str) -> str:
        """STREAM of messages for the clients of one signaling node (MAXLEN ~ 10,000)."""
        return self._key("node_inbox", node_id)

    def node_chat(self, node_id: str) -> str:
        """Pub/sub CHANNEL of one node: chat for its clients and the receipts of chat its
        clients sent. Never persisted (chat text goes nowhere else in Redis)."""
        return self._key("node_chat", node_id)

    @property
    def nodes(self) -> str:
        """ZSET node id -> last heartbeat ms."""
        return self._key("nodes")

    @property
    def sweep_lease(self) -> str:
        """STRING node id holding the sweeper lease (PX a few seconds)."""
        return self._key("sweep_lease")

    # -- flood limits (PROTOCOL.md section 13) -------------------------------
    def rate_messages(self, client_id: str, second: int) -> str:
        """STRING counter of a principal's messages in one wall-clock second, across all its
        sockets and nodes. TTL 2 s."""
        return self._key("rate_messages", client_id, str(second))

    def rate_calls(self, kiosk_id: str) -> str:
        """ZSET of the ms times of a kiosk's call requests in the last minute (at most
        ``calls_per_minute`` members). TTL 60 s."""
        return self._key("rate_calls", kiosk_id)

    def rate_flood(self, client_id: str) -> str:
        """STRING: ms when a principal's current flood (messages refused for the rate, with no
        2 s pause) began. TTL 2 s, renewed by each refusal."""
        return self._key("rate_flood", client_id)

    @property
    def rate_pattern(self) -> str:
        """Glob matching every flood-limit key above."""
        return self._key("rate_prefix") + ":*"

    # -- accounts ------------------------------------------------------------
    def user(self, username: str) -> str:
        """HASH of a staff account: role, name, languages, password hash, gen (token
        generation: raised by set-password and disable-user), disabled. No TTL."""
        return self._key("user", username)

    def kiosk(self, kiosk_id: str) -> str:
        """HASH of a kiosk device: ward, counter, token generation. No TTL."""
        return self._key("kiosk", kiosk_id)

    @property
    def revoked(self) -> str:
        """SET of revoked token ids (jti) and kiosk ids. No TTL."""
        return self._key("revoked")

    @property
    def revocations(self) -> str:
        """Pub/sub CHANNEL: ``kiosk|<id>|<gen>`` or ``user|<name>|<gen>`` when a kiosk is
        revoked or rotated, a user disabled or given a new password; every node closes the
        principal's sockets with an older generation."""
        return self._key("revocations")

    def login_failures(self, kind: str, who: str) -> str:
        """ZSET of recent failed logins (member: a random id, score: time in ms) for one
        username (``kind`` "user") or client address ("addr"). TTL 5 minutes from the last
        failure (``TSUNAGU_LOGIN_*``)."""
        return self._key("login_failures", kind, who)

    # -- media relays --------------------------------------------------------
    @property
    def relays(self) -> str:
        """ZSET relay id -> last heartbeat ms. Entries older than 10 s are dead relays."""
        return self._key("relays")

    def relay(self, relay_id: str) -> str:
        """HASH of one relay: url, capacity, calls, cpu, updated_ms. TTL 10 s, renewed every 2 s."""
        return self._key("relay", relay_id)

    @property
    def relay_events(self) -> str:
        """STREAM of relay -> signaling events: relay_id, call_id, party, event, reason, at_ms."""
        return self._key("relay_events")

    def quality(self, call_id: str) -> str:
        """STRING JSON of the call's per-leg media quality, written by its relay. TTL 10 s."""
        return self._key("quality", call_id)

    # -- tablet fleet (PROTOCOL.md section 14) --------------------------------
    def kiosk_health(self, kiosk_id: str) -> str:
        """STRING JSON of the kiosk's latest ``kiosk.health`` report (plus ``at_ms``). No TTL:
        the fleet page keeps showing a kiosk's last report after restarts."""
        return self._key("kiosk_health", kiosk_id)

    @property
    def kiosk_seen(self) -> str:
        """ZSET kiosk id -> when it was last seen connected (ms). No TTL."""
        return self._key("kiosk_seen")

    def kiosk_test(self, kiosk_id: str) -> str:
        """STRING JSON of the kiosk's last test call result, the ``last_test`` of section 14:
        ``{at_ms, ok, fps_in, fps_out, rtt_ms, loss_pct, setup_ms, reason?}``. No TTL."""
        return self._key("kiosk_test", kiosk_id)

    # -- finished-call records (PROTOCOL.md section 15) ------------------------
    def records(self, day: str) -> str:
        """HASH call id -> JSON record (signaling/records.py) of the calls that ended on
        ``day`` (YYYY-MM-DD, UTC). Kept ``TSUNAGU_RECORD_RETENTION_DAYS``, then deleted."""
        return self._key("records", day)

    @property
    def record_days(self) -> str:
        """ZSET of the days (YYYY-MM-DD, UTC) that have a records hash -> that day's UTC
        midnight in epoch seconds; retention deletes the oldest."""
        return self._key("record_days")

    @property
    def records_upto(self) -> str:
        """STRING: the id of the latest event up to which every finished call has its record
        (advanced monotonically by the nodes' record writers; a starting node backfills from
        it). No TTL."""
        return self._key("records_upto")

    def rating_pending(self, call_id: str) -> str:
        """STRING: a ``call.rate`` score that came before its call's record was written; the
        record writer merges it. TTL: the events' retention."""
        return self._key("rating_pending", call_id)

    def fleet_day(self, day: str) -> str:
        """HASH of one local day's (YYYY-MM-DD) kiosk rollup for the report: fields
        ``<kiosk>|open_s`` (seconds of opening hours checked), ``<kiosk>|up_s`` (of those, seconds
        the kiosk was connected), ``<kiosk>|tests`` and ``<kiosk>|passed`` (test calls), each
        added with HINCRBY (signaling/fleet_rollup.py). Kept as long as the call records."""
        return self._key("fleet_day", day)

    def fleet_sample(self, minute: int) -> str:
        """STRING claim of one minute (epoch minutes) of the fleet's availability sample:
        the node that sets it counts that minute, so a sweep lease handover counts no minute
        twice. TTL 10 minutes."""
        return self._key("fleet_sample", str(minute))

    # -- test calls (PROTOCOL.md section 14, docs/testcall.md) ----------------
    # A kiosk's test time is the ``test_at`` field ("HH:MM") of its ``kiosk`` hash.
    def test_day(self, kiosk_id: str, day: str) -> str:
        """HASH: the scheduler's state of a kiosk's test on one local day (YYYY-MM-DD):
        ver (bumped by every change: nodes claim by compare-and-set), tries, next_ms,
        sent_ms, test_id, done. TTL 2 days."""
        return self._key("test_day", kiosk_id, day)

    def test_run(self, test_id: str) -> str:
        """HASH of one test: kiosk, source (scheduled|manual), day, sent_ms, call_id,
        requested_ms, and what the bot reported receiving (bot_video, bot_audio, bot_fps,
        bot_at_ms). TTL 1 h."""
        return self._key("test_run", test_id)

    @property
    def test_clock(self) -> str:
        """STRING, TEST ONLY (read only when TSUNAGU_TEST_CLOCK=1): ms added to the test-call
        scheduler's clock."""
        return self._key("test_clock")
