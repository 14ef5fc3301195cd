/**
 * Every default limit and timing, in one place. Units are in the names.
 * The README's "Limits" table documents each of these.
 */
export const DEFAULTS = {
  /** How long a nonce from `fetch_nonce` may be used. */
  NONCE_TTL_MS: 300_000,
  /** Largest WebSocket text frame accepted. */
  MAX_FRAME_BYTES: 1_048_576,
  /** Largest JSON-RPC batch accepted. */
  MAX_BATCH_ENTRIES: 100,
  /** Requests a single socket may have awaiting an answer. */
  MAX_IN_FLIGHT_PER_SOCKET: 256,
  /** Answers waiting to be sent to one socket before it is cut as a slow consumer. */
  MAX_BUFFERED_BYTES: 16_777_216,
  /** A socket with no frames for this long is closed. */
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
  /** How often each sandbox host answers a probe run (read by `/healthz`, never triggered by it). */
  PROBE_INTERVAL_MS: 10_000,
  /** How long a cross-node task may wait for its owner beyond its run's wall limit. */
  QUEUE_ALLOWANCE_MS: 30_000,
  /** Time SIGTERM/SIGINT allow in-flight work to finish before it is answered SHUTTING_DOWN. */
  DRAIN_TIMEOUT_MS: 10_000,
} as const
