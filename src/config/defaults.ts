/**
 * Every default limit and timing, in one place. Units are in the names.
 * The "Limits and defaults" table of docs/configuration.md documents each of these.
 */
export const DEFAULTS = {
  /** How long a nonce from `fetch_nonce` may be used. */
  NONCE_TTL_MS: 300_000,
  /**
   * How far the times of a sign-in message may be from the client's clock: its issue time either
   * way, its expiry into the past. The client library refuses to sign a message outside it.
   */
  SIGN_IN_CLOCK_SKEW_MS: 300_000,
  /** Largest WebSocket text frame accepted. */
  MAX_FRAME_BYTES: 1_048_576,
  /** Largest JSON-RPC batch accepted. */
  MAX_BATCH_ENTRIES: 100,
  /** Requests a single socket may have awaiting an answer. */
  MAX_IN_FLIGHT_PER_SOCKET: 256,
  /** Deepest nesting of arrays and objects in a frame, checked by a linear scan before it is parsed. */
  MAX_FRAME_DEPTH: 32,
  /** Most JSON values (containers, members, elements) in a frame, counted by the same scan. */
  MAX_FRAME_VALUES: 10_000,
  /** Answer bytes waiting to be sent to one socket before it is cut as a slow consumer. */
  MAX_BUFFERED_BYTES: 16_777_216,
  /** Answer bytes waiting on the sockets of one remote address (IPv6: its /64) before the one holding most is cut. */
  MAX_BUFFERED_BYTES_PER_ADDRESS: 33_554_432,
  /** Answer bytes waiting on all sockets of the node before the one holding most is cut. */
  MAX_BUFFERED_BYTES_PER_NODE: 67_108_864,
  /**
   * Answer bytes a socket may have in the WebSocket layer, not yet taken by the kernel; past
   * them, further answers wait in the node and the socket is not read until they have gone out.
   */
  SOCKET_HIGH_WATER_BYTES: 65_536,
  /** A socket that neither sends a frame nor takes an answer for this long is closed. */
  IDLE_TIMEOUT_MS: 300_000,
  /** Wall-clock bound of one script run. */
  SCRIPT_TIMEOUT_MS: 1_000,
  /** CPU-time bound of one script run. */
  SCRIPT_CPU_MS: 1_000,
  /** Heap bound of the isolate a run executes in. */
  SCRIPT_MEMORY_MB: 64,
  /** Largest script source accepted by `play`. */
  MAX_SCRIPT_BYTES: 262_144,
  /** Largest completion value of a run: UTF-8 bytes of `output` and `result` as sent. */
  MAX_OUTPUT_BYTES: 1_048_576,
  /** Largest `logs` member of an answer, in UTF-8 bytes as sent (the rest of `print` output is cut and flagged). */
  MAX_LOG_BYTES: 65_536,
  /** Most `print` lines kept per run. */
  MAX_LOG_LINES: 1_000,
  /** Tasks a peer context may have waiting before callers get OVERLOADED. */
  MAILBOX_CAPACITY: 1_024,
  /** Runs of one context handed to the sandbox and not answered yet, at most (the rest wait in its mailbox). */
  MAX_RUNS_IN_FLIGHT_PER_CONTEXT: 64,
  /** Calls nested in one workflow (client → context → … ): a call deeper than this is CALL_DEPTH_EXCEEDED. */
  MAX_CALL_DEPTH: 8,
  /** Runs one workflow (a client's play and every call it leads to) may start; past it a call is CALL_BUDGET_EXCEEDED. */
  MAX_RUNS_PER_CALL_CHAIN: 256,
  /** Calls one run may have started and not seen settle; past it `call` is CALL_BUDGET_EXCEEDED. */
  MAX_CALLS_IN_FLIGHT_PER_RUN: 16,
  /**
   * Isolate contexts a sandbox thread keeps, per engine, for runs that were waiting on calls when
   * another run in their context was aborted (time limit); past it the oldest goes, and the runs
   * waiting in it are answered RUN_INTERRUPTED.
   */
  MAX_RETIRED_CONTEXTS: 8,
  /** A peer context with no work for this long is passivated (rebuilt on the next message). */
  PASSIVATE_AFTER_MS: 60_000,
  /** Largest single stored document (serialised JSON). */
  MAX_DOCUMENT_BYTES: 1_048_576,
  /**
   * Largest total cost of a context's stored documents; a document costs its value rounded up
   * to 4 KiB blocks plus its file name (src/storage/document-cost.ts).
   */
  MAX_NAMESPACE_BYTES: 67_108_864,
  /** Most documents one context may store (new documents past it are refused; overwrites are not). */
  MAX_DOCUMENTS: 10_000,
  /** Most names one `list_data` call returns: its default and largest `limit`. */
  MAX_LIST_NAMES: 1_000,
  /**
   * Estimated memory for the sorted name indexes that make listing O(log n + limit), per sandbox
   * worker thread; past it the least recently listed namespaces' indexes are dropped.
   */
  LIST_INDEX_BUDGET_BYTES: 16_777_216,
  /** Longest document name (UTF-8 bytes). */
  MAX_NAME_BYTES: 200,
  /** Signature checks waiting for the verifier before authenticate answers OVERLOADED. */
  MAX_PENDING_VERIFICATIONS: 1_024,
  /** Total UTF-8 bytes of the answers of one batch; entries past it are answered OUTPUT_TOO_LARGE. */
  MAX_BATCH_ANSWER_BYTES: 8_388_608,
  /** Open WebSocket connections per remote address (load limits; loopback exempt by default). */
  CONNECTIONS_PER_ADDRESS: 256,
  /** `fetch_nonce` requests per remote address per minute. */
  NONCES_PER_MINUTE_PER_ADDRESS: 600,
  /** Failed `authenticate` attempts per remote address per minute. */
  FAILED_AUTH_PER_MINUTE_PER_ADDRESS: 30,
  /** `play` requests per second per caller (key, or address when anonymous); also the burst. */
  PLAYS_PER_SECOND_PER_CALLER: 2_000,
  /** Frames per second per remote address, refused ones included; also the burst. Past it the address's sockets are not read for a while. */
  FRAMES_PER_SECOND_PER_ADDRESS: 5_000,
  /** Frame bytes per second per remote address, refused ones included; also the burst. Past it the address's sockets are not read for a while. */
  FRAME_BYTES_PER_SECOND_PER_ADDRESS: 16_777_216,
  /** Frames refused whole (nothing in them runs) per socket per minute; also the burst. Past it the socket is closed. */
  INVALID_FRAMES_PER_MINUTE_PER_SOCKET: 30,
  /** First back-off of the crash quarantine; it doubles with each crash. */
  QUARANTINE_BASE_MS: 1_000,
  /** Longest back-off of the crash quarantine. */
  QUARANTINE_MAX_MS: 300_000,
  /** Crashes are forgotten after this long without one; the crashes of one circle count together within it. */
  QUARANTINE_WINDOW_MS: 600_000,
  /** Origins (addresses, IPv6 /64s) whose crashes within the window quarantine the whole circle. */
  QUARANTINE_CIRCLE_ORIGINS: 3,
  /** How often each sandbox host answers a probe run (read by `/healthz`, never triggered by it). */
  PROBE_INTERVAL_MS: 10_000,
  /** How long a cross-node task may wait for its owner beyond its run's wall limit. */
  QUEUE_ALLOWANCE_MS: 30_000,
  /**
   * How long past a task's deadline its owner remembers having started it (never running it
   * twice): room for the owner's wall clock to be stepped back.
   */
  CLOCK_SKEW_ALLOWANCE_MS: 5_000,
  /**
   * Largest task or answer written to or read from the cross-node queue, in bytes (a task's JSON
   * with its script, an answer with its output). Above 6 × MAX_SCRIPT_BYTES — the most a script
   * of that size takes once JSON-escaped — and twice MAX_OUTPUT_BYTES plus MAX_LOG_BYTES.
   */
  MAX_QUEUE_ENTRY_BYTES: 4_194_304,
  /** Bytes of tasks one caller address may have stored in Redis by a gateway and not answered yet. */
  QUEUED_BYTES_PER_ADDRESS: 33_554_432,
  /** Bytes of tasks one gateway node may have stored in Redis and not answered yet, all callers together. */
  QUEUED_BYTES_PER_GATEWAY: 268_435_456,
  /** Time SIGTERM/SIGINT allow in-flight work to finish before it is answered SHUTTING_DOWN. */
  DRAIN_TIMEOUT_MS: 10_000,
  /** Subscriptions one socket may hold at once. */
  SUBSCRIPTIONS_PER_SOCKET: 64,
  /** Subscriptions the sockets of one remote address may hold at once, across the node. */
  SUBSCRIPTIONS_PER_ADDRESS: 4_096,
  /** Topic prefixes one subscription may list. */
  SUBSCRIPTION_TOPICS: 16,
  /** Subscriptions one context may have at once. */
  SUBSCRIPTIONS_PER_CONTEXT: 10_000,
  /** A subscribed socket is pinged this often; its pongs keep it from being closed as idle. */
  SUBSCRIBER_PING_INTERVAL_MS: 30_000,
  /** Changes and events a context keeps in memory for `subscribe { after }` to resume from, at most. */
  CHANGE_LOG_ENTRIES: 1_000,
  /** How long a change or event stays in a context's log. */
  CHANGE_LOG_AGE_MS: 300_000,
  /** Bytes of names, topics and values a context's log holds, at most (oldest dropped first). */
  CHANGE_LOG_BYTES: 4_194_304,
  /** Largest value a `changed` or `event` notification carries (UTF-8 bytes of its JSON); past it, `truncated: true`. */
  NOTIFY_VALUE_BYTES: 65_536,
  /** `emit` calls per run. */
  EMITS_PER_RUN: 100,
  /** UTF-8 bytes of topics and values one run may `emit` in all. */
  EMIT_BYTES_PER_RUN: 262_144,
  /**
   * Changes and events one run may report for notification: past either bound the run's are
   * dropped and the context's log starts a new epoch (subscribers are told RESYNC_REQUIRED).
   */
  NOTICES_PER_RUN: 1_000,
  /** Bytes of names, topics and values one run may report for notification (see NOTICES_PER_RUN). */
  NOTICE_BYTES_PER_RUN: 4_194_304,
} as const
