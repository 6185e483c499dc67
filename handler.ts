/**
 * Receives the Platform's signed webhooks and turns installs into Slack messages.
 *
 * One file, one static import (`hono`), the same source on every runtime:
 *   npx tsx handler.ts | bun run handler.ts | deno run -A handler.ts
 * `node:crypto` and `node:fs` are loaded when first needed; Node, Bun and Deno all have them.
 *
 * It reads top to bottom: configuration, verification, events, Slack, the dedupe ledger,
 * routes, and the runtime start. Importing it starts nothing; running it serves.
 */
import { type Context, Hono } from 'hono';

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

const DEFAULT_PORT = 3000;
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_SLACK_TIMEOUT_MS = 5_000;
/** Time a request may spend waiting out Slack's Retry-After before it hands the wait back. */
const DEFAULT_SLACK_RETRY_BUDGET_MS = 3_000;
const SLACK_ATTEMPTS_PER_REQUEST = 3;
const DEFAULT_DEDUPE_MAX_ENTRIES = 100_000;
const DEFAULT_DEDUPE_MAX_AGE_SECONDS = 7 * 24 * 60 * 60;
const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
const FLUSH_GRACE_MS = 1_000;

/** Everything the handler needs; `readConfig` builds it from the environment. */
export interface HandlerOptions {
  /** The endpoint's signing secret first; during a rotation, the previous one after it. */
  signingSecrets: readonly string[];
  /** Unset means dry run: each message is logged, marked as not sent. */
  slackWebhookUrl?: string | undefined;
  maxBodyBytes?: number;
  slackTimeoutMs?: number;
  slackRetryBudgetMs?: number;
  /** Where finished event ids are remembered; in memory unless given. */
  ledger?: DeliveryLedger;
  /** Receives one line per delivery; silent unless given. */
  log?: (line: DeliveryLogLine) => void;
  /** Injected in tests so Retry-After waits take no real time. */
  sleep?: (ms: number) => Promise<void>;
}

/** What `readConfig` returns: handler options plus where to listen. */
export interface ServerConfig extends HandlerOptions {
  port: number;
  host: string;
  dedupeFile?: string | undefined;
  dedupeMaxEntries: number;
  dedupeMaxAgeSeconds: number;
}

/** Our own misconfiguration: reported once at start-up, never per request. */
export class ConfigError extends Error {
  readonly code: 'missing_secret' | 'invalid_slack_url' | 'invalid_number';

  constructor(code: ConfigError['code'], message: string) {
    super(message);
    this.name = 'ConfigError';
    this.code = code;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** Reads the handler's settings from environment variables, failing on the first bad one. */
export function readConfig(env: Env): ServerConfig {
  const current = env.PLATFORM_SIGNING_SECRET?.trim();
  if (!current) {
    throw new ConfigError(
      'missing_secret',
      'PLATFORM_SIGNING_SECRET is not set: set it to the signing_secret of your Platform ' +
        'endpoint (in .env or the environment).',
    );
  }
  const previous = env.PLATFORM_SIGNING_SECRET_PREVIOUS?.trim();
  const slackWebhookUrl = env.SLACK_WEBHOOK_URL?.trim() || undefined;
  if (slackWebhookUrl) validateSlackWebhookUrl(slackWebhookUrl);

  return {
    signingSecrets: previous ? [current, previous] : [current],
    slackWebhookUrl,
    port: readInteger(env, 'PORT', DEFAULT_PORT, 0, 65_535),
    host: env.HOST?.trim() || DEFAULT_HOST,
    maxBodyBytes: readInteger(env, 'MAX_BODY_BYTES', DEFAULT_MAX_BODY_BYTES, 1),
    slackTimeoutMs: readInteger(env, 'SLACK_TIMEOUT_MS', DEFAULT_SLACK_TIMEOUT_MS, 1),
    slackRetryBudgetMs: readInteger(env, 'SLACK_RETRY_BUDGET_MS', DEFAULT_SLACK_RETRY_BUDGET_MS, 0),
    dedupeFile: env.DEDUPE_FILE?.trim() || undefined,
    dedupeMaxEntries: readInteger(env, 'DEDUPE_MAX_ENTRIES', DEFAULT_DEDUPE_MAX_ENTRIES, 1),
    dedupeMaxAgeSeconds: readInteger(
      env,
      'DEDUPE_MAX_AGE_SECONDS',
      DEFAULT_DEDUPE_MAX_AGE_SECONDS,
      1,
    ),
  };
}

function readInteger(
  env: Env,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new ConfigError('invalid_number', `${name} must be an integer ${range}, got "${raw}".`);
  }
  return value;
}

const SLACK_HOOKS_HOST = 'hooks.slack.com';

/**
 * Accepts Slack's own hooks host over https, or plain http on a loopback address (the
 * simulator's Slack sink). Anything else could leak every buyer's email to a stranger.
 */
export function validateSlackWebhookUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('invalid_slack_url', 'SLACK_WEBHOOK_URL is not a valid URL.');
  }
  const isSlack = url.protocol === 'https:' && url.hostname === SLACK_HOOKS_HOST;
  const isLocal = url.protocol === 'http:' && isLoopbackHost(url.hostname);
  if (!isSlack && !isLocal) {
    // The path of a webhook URL is its secret: name only the scheme and host.
    throw new ConfigError(
      'invalid_slack_url',
      `SLACK_WEBHOOK_URL must be https://${SLACK_HOOKS_HOST}/services/... or http on a ` +
        `loopback address, got ${url.protocol}//${url.host}/...`,
    );
  }
  if (url.username || url.password) {
    throw new ConfigError('invalid_slack_url', 'SLACK_WEBHOOK_URL must not carry credentials.');
  }
  return url;
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** Parses a `.env` file: `KEY=value` lines, `#` comments, optional quotes, `export ` prefix. */
export function parseDotEnv(text: string): Record<string, string> {
  const entries: Record<string, string> = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    const [, key = '', rest = ''] = match;
    const quoted = /^(['"])(.*)\1$/.exec(rest);
    entries[key] = quoted ? (quoted[2] ?? '') : rest.replace(/\s+#.*$/, '');
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

export const SIGNATURE_HEADER = 'X-Platform-Signature';

/** Why a delivery's signature was refused; never thrown, always returned. */
export type SignatureFailure = 'missing_signature' | 'malformed_signature' | 'signature_mismatch';

export type VerifyResult = { ok: true } | { ok: false; reason: SignatureFailure };

/** Checks a signature header against the raw body. */
export type SignatureVerifier = (body: Uint8Array, header: string | null) => Promise<VerifyResult>;

/**
 * Which HMAC implementation checks signatures; both compare in constant time. `auto` is
 * node:crypto on Node and Bun, WebCrypto elsewhere.
 */
export type HmacEngine = 'auto' | 'webcrypto';

/** One secret's check: synchronous where node:crypto is there, a promise with WebCrypto. */
type KeyCheck = (
  body: Uint8Array,
  signature: Uint8Array<ArrayBuffer>,
) => boolean | Promise<boolean>;

/**
 * Imports each secret once as an HMAC-SHA256 key and returns the verifier. No signature is
 * ever compared as a string: `timingSafeEqual` or `crypto.subtle.verify` does it.
 */
export function createVerifier(
  secrets: readonly string[],
  engine: HmacEngine = 'auto',
): SignatureVerifier {
  if (secrets.length === 0) {
    throw new ConfigError('missing_secret', 'createVerifier needs at least one signing secret.');
  }
  let checks: KeyCheck[] | undefined;
  const imported = importKeys(secrets, engine).then((ready) => {
    checks = ready;
    return ready;
  });

  return async function verifySignature(body, header) {
    if (header === null || header === '') return { ok: false, reason: 'missing_signature' };
    const signature = decodeSignature(header);
    if (signature === null) return { ok: false, reason: 'malformed_signature' };

    let matched = false;
    // Every key is tried, so the time taken does not say which secret matched.
    for (const check of checks ?? (await imported)) {
      const result = check(body, signature);
      if (typeof result === 'boolean' ? result : await result) matched = true;
    }
    return matched ? { ok: true } : { ok: false, reason: 'signature_mismatch' };
  };
}

async function importKeys(secrets: readonly string[], engine: HmacEngine): Promise<KeyCheck[]> {
  const encoder = new TextEncoder();
  // On Node and Bun node:crypto checks 1 KB in 2-5 us where crypto.subtle takes 14-17. Deno's
  // node:crypto is a compatibility layer that cost more CPU per delivery under load than its
  // crypto.subtle (npm run bench), so Deno, and any runtime without node:crypto, uses WebCrypto.
  const useNodeCrypto = engine === 'auto' && !('Deno' in globalThis);
  const node = useNodeCrypto ? await import('node:crypto').catch(() => null) : null;
  return Promise.all(
    secrets.map(async (secret): Promise<KeyCheck> => {
      const bytes = encoder.encode(secret);
      if (node) {
        const key = node.createSecretKey(bytes);
        return (body, signature) =>
          node.timingSafeEqual(node.createHmac('sha256', key).update(body).digest(), signature);
      }
      const key = await crypto.subtle.importKey(
        'raw',
        bytes,
        { name: 'HMAC', hash: 'SHA-256' },
        false,
        ['verify'],
      );
      return (body, signature) =>
        crypto.subtle.verify('HMAC', key, signature, body as Uint8Array<ArrayBuffer>);
    }),
  );
}

const SIGNATURE_BYTES = 32;
// The value of each hex digit by character code, -1 for anything else.
const HEX_DIGITS = new Int8Array(128).fill(-1);
for (const [index, digit] of [...'0123456789abcdef'].entries()) {
  HEX_DIGITS[digit.charCodeAt(0)] = index;
  HEX_DIGITS[digit.toUpperCase().charCodeAt(0)] = index;
}

/**
 * The 32 bytes of a header that is exactly 64 hex digits, or null: no prefix, no padding, no
 * second value joined in by a repeated header. (The runtime has already trimmed the value.)
 */
function decodeSignature(hex: string): Uint8Array<ArrayBuffer> | null {
  if (hex.length !== SIGNATURE_BYTES * 2) return null;
  const bytes = new Uint8Array(SIGNATURE_BYTES);
  for (let i = 0; i < SIGNATURE_BYTES; i++) {
    const high = HEX_DIGITS[hex.charCodeAt(2 * i)] ?? -1;
    const low = HEX_DIGITS[hex.charCodeAt(2 * i + 1)] ?? -1;
    if (high < 0 || low < 0) return null;
    bytes[i] = (high << 4) | low;
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/** The envelope every Platform event shares. */
export interface PlatformEvent {
  id: string;
  type: string;
  created_at: string;
  data: Record<string, unknown>;
}

export const EVENT_TYPES = [
  'install.created',
  'install.canceled',
  'usage.metered.daily',
  'payout.released',
  'payout.paid',
  'review.posted',
  'skill.error',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export type ParseResult =
  | { ok: true; event: PlatformEvent }
  | { ok: false; reason: 'invalid_json' | 'invalid_event'; message: string };

const EVENT_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
const RFC3339_PATTERN =
  /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

// Fatal: a body that is not UTF-8 is refused rather than read with replacement characters.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** Decodes and validates a verified body. Call it only after the signature passed. */
export function parseEvent(body: Uint8Array): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(body));
  } catch {
    return { ok: false, reason: 'invalid_json', message: 'Body is not UTF-8 JSON.' };
  }

  if (!isRecord(value)) return invalidEvent('Body must be a JSON object.');
  const { id, type, created_at, data } = value;
  if (typeof id !== 'string' || !EVENT_ID_PATTERN.test(id)) {
    return invalidEvent('"id" must be 1-128 characters of letters, digits and _.:-');
  }
  if (typeof type !== 'string' || type === '') return invalidEvent('"type" must be a string.');
  if (typeof created_at !== 'string' || !RFC3339_PATTERN.test(created_at)) {
    return invalidEvent('"created_at" must be an RFC 3339 timestamp.');
  }
  if (!isRecord(data)) return invalidEvent('"data" must be an object.');

  const event: PlatformEvent = { id, type, created_at, data };
  const problem = isEventType(type) ? DATA_CHECKS[type](data) : null;
  return problem ? invalidEvent(`${type}: ${problem}`) : { ok: true, event };
}

function invalidEvent(message: string): ParseResult {
  return { ok: false, reason: 'invalid_event', message };
}

function isEventType(type: string): type is EventType {
  return (EVENT_TYPES as readonly string[]).includes(type);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads `data.a.b` as a string, or undefined when any step is missing or of another type. */
function textAt(data: Record<string, unknown>, path: string): string | undefined {
  let value: unknown = data;
  for (const step of path.split('.')) value = isRecord(value) ? value[step] : undefined;
  return typeof value === 'string' ? value : undefined;
}

function numberAt(data: Record<string, unknown>, key: string): number | undefined {
  const value = data[key];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function requireText(data: Record<string, unknown>, ...paths: string[]): string | null {
  const missing = paths.find((path) => !textAt(data, path));
  return missing ? `data.${missing} must be a non-empty string.` : null;
}

function requirePayout(data: Record<string, unknown>): string | null {
  const amount = numberAt(data, 'amount_minor');
  if (amount === undefined || !Number.isSafeInteger(amount) || amount < 0) {
    return 'data.amount_minor must be a non-negative integer.';
  }
  if (!/^[A-Z]{3}$/.test(textAt(data, 'currency') ?? '')) {
    return 'data.currency must be an ISO 4217 code such as "USD".';
  }
  return requireText(data, 'payout_id');
}

// The fields each message reads, checked before anything is posted.
const DATA_CHECKS: Record<EventType, (data: Record<string, unknown>) => string | null> = {
  'install.created': (data) => requireText(data, 'buyer.email', 'pack.name'),
  'install.canceled': (data) => requireText(data, 'buyer.email', 'pack.name'),
  'usage.metered.daily': (data) =>
    requireText(data, 'pack.name', 'date') ??
    (numberAt(data, 'units') === undefined ? 'data.units must be a number.' : null),
  'payout.released': requirePayout,
  'payout.paid': requirePayout,
  'review.posted': (data) => {
    const rating = numberAt(data, 'rating');
    if (rating === undefined || !Number.isInteger(rating) || rating < 1 || rating > 5) {
      return 'data.rating must be an integer from 1 to 5.';
    }
    return requireText(data, 'pack.name', 'author.display_name');
  },
  'skill.error': (data) => requireText(data, 'pack.name', 'skill', 'error.code'),
};

// ---------------------------------------------------------------------------------------------
// Slack
// ---------------------------------------------------------------------------------------------

/** Longest a single user-supplied field may be in a message, in code points. */
export const SLACK_FIELD_MAX_CHARS = 200;
export const TRUNCATION_MARKER = '…';

/**
 * Makes user text safe for a Slack message: control and bidi characters become visible,
 * over-long text is cut with a marker, and `&`, `<`, `>` are escaped so nothing can become
 * a mention (`<!channel>`), a user ping (`<@U1>`) or a link (`<https://x|y>`).
 * https://api.slack.com/reference/surfaces/formatting#escaping
 */
export function escapeSlackText(text: string, maxChars = SLACK_FIELD_MAX_CHARS): string {
  let safe = text.replace(UNSAFE_CHARACTERS, visibleForm);
  // Code points never outnumber UTF-16 units, so only a long string needs counting.
  if (safe.length > maxChars) {
    const chars = Array.from(safe);
    if (chars.length > maxChars) safe = chars.slice(0, maxChars - 1).join('') + TRUNCATION_MARKER;
  }
  return safe.replace(/[&<>]/g, (char) => SLACK_ENTITIES[char] ?? char);
}

const SLACK_ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;' };

// Controls (C0, DEL, C1), lone surrogates, and the bidi marks that can reorder a line.
const UNSAFE_CHARACTERS = /[\p{Cc}\p{Cs}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

function visibleForm(char: string): string {
  const code = char.charCodeAt(0);
  // C0 controls have printable stand-ins in Unicode's Control Pictures block (U+2400).
  if (code < 0x20) return String.fromCharCode(0x2400 + code);
  if (code === 0x7f) return '\u2421';
  return '\ufffd';
}

/** The Slack text for an event, or null when the event is only acknowledged in the log. */
export function formatSlackMessage(event: PlatformEvent): string | null {
  const field = (path: string) => escapeSlackText(textAt(event.data, path) ?? '');
  switch (event.type) {
    case 'install.created':
      return `${field('buyer.email')} just installed ${field('pack.name')}`;
    case 'install.canceled':
      return `${field('buyer.email')} canceled ${field('pack.name')}`;
    case 'review.posted':
      return `${field('author.display_name')} rated ${field('pack.name')} ${rating(event)}/5`;
    case 'payout.released':
      return `Payout ${field('payout_id')} of ${formatAmount(event.data)} was released`;
    case 'payout.paid':
      return `Payout ${field('payout_id')} of ${formatAmount(event.data)} was paid`;
    case 'skill.error':
      return `${field('pack.name')}: skill ${field('skill')} failed (${field('error.code')})`;
    default:
      // usage.metered.daily arrives once a day per pack: a log line, not a ping.
      return null;
  }
}

function rating(event: PlatformEvent): number {
  return numberAt(event.data, 'rating') ?? 0;
}

function formatAmount(data: Record<string, unknown>): string {
  const currency = textAt(data, 'currency') ?? 'USD';
  const format = new Intl.NumberFormat('en-US', { style: 'currency', currency });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return escapeSlackText(format.format((numberAt(data, 'amount_minor') ?? 0) / 10 ** digits));
}

/** How a Slack post ended: posted, worth retrying later, or refused for good. */
export type SlackResult =
  | { ok: true }
  | { ok: false; retryable: true; error: string; retryAfterSeconds?: number }
  | { ok: false; retryable: false; error: string; status: number };

interface SlackPostOptions {
  timeoutMs: number;
  retryBudgetMs: number;
  sleep: (ms: number) => Promise<void>;
}

/**
 * Posts one message to an incoming webhook. A 429 whose Retry-After fits the budget is waited
 * out here; a longer one is handed back so the Platform retries later.
 */
export async function postToSlack(
  url: string,
  text: string,
  options: SlackPostOptions,
): Promise<SlackResult> {
  let budgetMs = options.retryBudgetMs;
  for (let attempt = 1; ; attempt++) {
    const result = await postOnce(url, text, options.timeoutMs);
    if (result.ok || !result.retryable || result.retryAfterSeconds === undefined) return result;
    const waitMs = result.retryAfterSeconds * 1000;
    // The attempt cap matters when Slack keeps answering "Retry-After: 0".
    if (waitMs > budgetMs || attempt >= SLACK_ATTEMPTS_PER_REQUEST) return result;
    budgetMs -= waitMs;
    await options.sleep(waitMs);
  }
}

async function postOnce(url: string, text: string, timeoutMs: number): Promise<SlackResult> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      // mrkdwn off: a pack called *FREE* or an email with _ should read as typed.
      body: JSON.stringify({ text, mrkdwn: false }),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
  } catch (error) {
    const timedOut = error instanceof Error && error.name === 'TimeoutError';
    return { ok: false, retryable: true, error: timedOut ? 'slack_timeout' : 'slack_unreachable' };
  }
  // Slack explains a refusal in a short plain-text body such as "invalid_payload".
  const detail = (await response.text().catch(() => '')).slice(0, 200);
  if (response.ok) return { ok: true };
  if (response.status === 429 || response.status >= 500) {
    const retryAfterSeconds = parseRetryAfter(response.headers.get('retry-after'));
    return {
      ok: false,
      retryable: true,
      error: `slack_${response.status}${detail ? `: ${detail}` : ''}`,
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    };
  }
  return { ok: false, retryable: false, status: response.status, error: detail || 'no body' };
}

/** Reads Retry-After as whole seconds: delta-seconds or an HTTP date (RFC 9110, 10.2.3). */
export function parseRetryAfter(value: string | null, nowMs = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const dateMs = Date.parse(value);
  return Number.isNaN(dateMs) ? undefined : Math.max(0, Math.ceil((dateMs - nowMs) / 1000));
}

// ---------------------------------------------------------------------------------------------
// Dedupe ledger
// ---------------------------------------------------------------------------------------------

/**
 * Remembers which event ids already had their effect, so a redelivery is answered 200
 * without a second Slack message. A shared store (Redis, a database) implements the same
 * three methods to serve several instances; see the README.
 */
export interface DeliveryLedger {
  /** True when this id's effect is recorded as done and not yet expired. */
  has(id: string): Promise<boolean>;
  /** Records this id's effect as done; resolves once the record would survive a crash. */
  add(id: string): Promise<void>;
  /** Flushes what is pending and releases files; called once at shutdown. */
  close(): Promise<void>;
}

export interface MemoryLedgerOptions {
  maxEntries?: number;
  maxAgeSeconds?: number;
  now?: () => number;
}

/** The in-memory ledger, with what the file ledger needs to replay and compact it. */
export interface MemoryLedger extends DeliveryLedger {
  readonly size: number;
  /** Puts back an id recorded at `atMs` (from a file), oldest first. */
  restore(id: string, atMs: number): void;
  /** The live ids with the time each was recorded, oldest first. */
  entries(): [id: string, atMs: number][];
}

/** An in-memory ledger bounded by count and age; the oldest entries are evicted first. */
export function createMemoryLedger(options: MemoryLedgerOptions = {}): MemoryLedger {
  const maxAgeMs = (options.maxAgeSeconds ?? DEFAULT_DEDUPE_MAX_AGE_SECONDS) * 1000;
  const now = options.now ?? Date.now;
  const maxEntries = options.maxEntries ?? DEFAULT_DEDUPE_MAX_ENTRIES;
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new RangeError(`maxEntries must be a whole number of at least 1, got ${maxEntries}.`);
  }
  const ids = createRecentIds(maxEntries);
  const forgetExpired = () => ids.dropRecordedBy(now() - maxAgeMs);

  function restore(id: string, atMs: number): void {
    forgetExpired(); // first, so the new record can reuse what expired ids held
    ids.add(id, atMs);
    forgetExpired();
  }

  return {
    get size() {
      forgetExpired();
      return ids.size();
    },
    async has(id) {
      forgetExpired();
      return ids.has(id);
    },
    async add(id) {
      restore(id, now());
    },
    restore,
    entries() {
      forgetExpired();
      return ids.entries();
    },
    async close() {},
  };
}

/**
 * The memory ledger's store: an exact set of the most recent ids, oldest first, held in typed
 * arrays. Kept as strings in a Map, 100,000 ids survived every collection of the young
 * generation, so each delivery paid to copy its id out of it, and Node's handler ended a bench
 * run at 133 MB instead of 113 (npm run bench); here the id string dies with its request.
 *
 * Records sit in a ring of slots, oldest at `head`. Their ids' bytes are appended, in the same
 * order, to a circular byte log, so evicting the oldest record frees the oldest bytes. An
 * open-addressing table (linear probing) maps an id to its live record. Recording an id again
 * supersedes its old record, which stays in the ring, dead, until evicted or rebuilt away.
 */
function createRecentIds(maxEntries: number) {
  // Slack in the ring for superseded records, so the O(n) rebuild that drops them is rare.
  const maxCapacity = maxEntries + Math.max(1, Math.floor(maxEntries / 4));
  // The ring starts small and doubles as ids arrive, so memory follows the most ids it has
  // held, not the bound: DEDUPE_MAX_ENTRIES=10000000 costs nothing until that many deliveries
  // came. It never shrinks.
  let capacity = Math.min(maxCapacity, INITIAL_RING_SLOTS);
  let starts = new Int32Array(capacity); // where the record's id starts in `bytes`
  let lengths = new Int32Array(capacity); // the id's encoded length
  let hashes = new Int32Array(capacity);
  let times = new Float64Array(capacity);
  let live = new Uint8Array(capacity); // 0 once superseded
  let head = 0;
  let count = 0; // records in the ring, live or superseded
  let size = 0; // live records
  let bytes = new Uint8Array(Math.max(1024, capacity * 8));
  let tail = 0; // where the next id's bytes go
  // slot + 1 per cell, 0 for empty; at most half full, so every probe ends.
  let cells = new Int32Array(cellsFor(capacity));
  let mask = cells.length - 1;

  function cellOf(id: string, hash: number): number {
    for (let cell = hash & mask; ; cell = (cell + 1) & mask) {
      const entry = cells[cell] ?? 0;
      if (entry === 0) return -1;
      if (hashes[entry - 1] === hash && holds(entry - 1, id)) return cell;
    }
  }

  function holds(slot: number, id: string): boolean {
    let at = starts[slot] ?? 0;
    const end = at + (lengths[slot] ?? 0);
    for (let i = 0; i < id.length; i++) {
      const unit = id.charCodeAt(i);
      if (unit < 0x80) {
        if (at >= end || bytes[at++] !== unit) return false;
      } else {
        if (at + 3 > end || bytes[at] !== 0x80) return false;
        if (bytes[at + 1] !== unit >>> 8 || bytes[at + 2] !== (unit & 0xff)) return false;
        at += 3;
      }
    }
    return at === end;
  }

  function index(slot: number): void {
    let cell = (hashes[slot] ?? 0) & mask;
    while (cells[cell] !== 0) cell = (cell + 1) & mask;
    cells[cell] = slot + 1;
  }

  function unindex(slot: number): void {
    let hole = (hashes[slot] ?? 0) & mask;
    while (cells[hole] !== slot + 1) hole = (hole + 1) & mask;
    // Backward-shift deletion: pull later entries of the probe run into the hole, so lookups
    // need no tombstones. An entry stays put when its home cell lies in (hole, next].
    for (let next = (hole + 1) & mask; cells[next] !== 0; next = (next + 1) & mask) {
      const home = (hashes[(cells[next] ?? 0) - 1] ?? 0) & mask;
      const stays = hole < next ? hole < home && home <= next : hole < home || home <= next;
      if (stays) continue;
      cells[hole] = cells[next] ?? 0;
      hole = next;
    }
    cells[hole] = 0;
  }

  function dropOldest(): void {
    if (live[head]) {
      unindex(head);
      size--;
    }
    head = (head + 1) % capacity;
    count--;
  }

  // Where `footprint` bytes fit without overwriting a record still in the ring, or -1.
  function roomFor(footprint: number): number {
    if (count === 0) return footprint <= bytes.length ? 0 : -1;
    const oldest = starts[head] ?? 0;
    // Not wrapped: records fill [oldest, tail), free space is after them, then before them.
    if (tail > oldest) {
      if (tail + footprint <= bytes.length) return tail;
      return footprint <= oldest ? 0 : -1;
    }
    return tail + footprint <= oldest ? tail : -1; // wrapped: free space is [tail, oldest)
  }

  // Drops superseded records and lays the live ones out from slot 0 and byte 0, doubling the
  // ring (up to its cap) when more than half of it is live, and the byte log when live ids
  // fill more than half of it.
  function rebuild(footprint: number): void {
    let liveBytes = footprint;
    for (let i = 0, slot = head; i < count; i++, slot = (slot + 1) % capacity) {
      if (live[slot]) liveBytes += Math.max(1, lengths[slot] ?? 0);
    }
    const old = { capacity, starts, lengths, hashes, times, live, bytes };
    if (2 * (size + 1) > capacity) capacity = Math.min(maxCapacity, 2 * capacity);
    starts = new Int32Array(capacity);
    lengths = new Int32Array(capacity);
    hashes = new Int32Array(capacity);
    times = new Float64Array(capacity);
    live = new Uint8Array(capacity);
    bytes = new Uint8Array(Math.max(old.bytes.length, 2 * liveBytes));
    cells = new Int32Array(cellsFor(capacity));
    mask = cells.length - 1;
    let kept = 0;
    tail = 0;
    for (let i = 0, slot = head; i < count; i++, slot = (slot + 1) % old.capacity) {
      if (!old.live[slot]) continue;
      const start = old.starts[slot] ?? 0;
      const length = old.lengths[slot] ?? 0;
      bytes.set(old.bytes.subarray(start, start + length), tail);
      starts[kept] = tail;
      lengths[kept] = length;
      hashes[kept] = old.hashes[slot] ?? 0;
      times[kept] = old.times[slot] ?? 0;
      live[kept] = 1;
      index(kept);
      kept++;
      tail += Math.max(1, length);
    }
    head = 0;
    count = kept;
  }

  return {
    size: () => size,
    has: (id: string) => cellOf(id, hashOf(id)) !== -1,
    /** Records `id` at `atMs` as the newest record, evicting the oldest beyond `maxEntries`. */
    add(id: string, atMs: number): void {
      const hash = hashOf(id);
      const cell = cellOf(id, hash);
      if (cell !== -1) {
        const slot = (cells[cell] ?? 0) - 1;
        unindex(slot);
        live[slot] = 0;
        size--;
      }
      while (size >= maxEntries) dropOldest();
      const length = encodedLength(id);
      // An empty id still takes a byte, so a non-empty ring never looks empty to roomFor.
      const footprint = Math.max(1, length);
      let at = count < capacity ? roomFor(footprint) : -1;
      if (at === -1) {
        rebuild(footprint);
        at = tail;
      }
      encodeInto(id, bytes, at);
      tail = at + footprint;
      const slot = (head + count) % capacity;
      starts[slot] = at;
      lengths[slot] = length;
      hashes[slot] = hash;
      times[slot] = atMs;
      live[slot] = 1;
      index(slot);
      count++;
      size++;
    },
    /**
     * Evicts the records made at or before `cutoffMs`, oldest first, up to the first newer
     * one. Records are in the order they were made, which is time order unless the clock
     * stepped back or a file was restored out of order: then expiry comes late, never early.
     */
    dropRecordedBy(cutoffMs: number): void {
      while (count > 0 && (!live[head] || (times[head] ?? 0) <= cutoffMs)) dropOldest();
    },
    entries(): [id: string, atMs: number][] {
      const found: [string, number][] = [];
      for (let i = 0, slot = head; i < count; i++, slot = (slot + 1) % capacity) {
        if (!live[slot]) continue;
        const start = starts[slot] ?? 0;
        found.push([decodeId(bytes, start, start + (lengths[slot] ?? 0)), times[slot] ?? 0]);
      }
      return found;
    },
  };
}

const INITIAL_RING_SLOTS = 64;

/** A power of two at least twice `slots`, so the table of that many records is half empty. */
function cellsFor(slots: number): number {
  return 2 ** Math.ceil(Math.log2(2 * slots + 1));
}

// An id's UTF-16 code units, each as one byte below 0x80 and as three bytes (0x80, high, low)
// otherwise: a prefix code, so exact for any string (lone surrogates too). Event ids are ASCII.
function encodedLength(id: string): number {
  let length = id.length;
  for (let i = 0; i < id.length; i++) if (id.charCodeAt(i) >= 0x80) length += 2;
  return length;
}

function encodeInto(id: string, bytes: Uint8Array, at: number): void {
  for (let i = 0; i < id.length; i++) {
    const unit = id.charCodeAt(i);
    if (unit < 0x80) {
      bytes[at++] = unit;
    } else {
      bytes[at++] = 0x80;
      bytes[at++] = unit >>> 8;
      bytes[at++] = unit & 0xff;
    }
  }
}

function decodeId(bytes: Uint8Array, start: number, end: number): string {
  let id = '';
  for (let at = start; at < end; ) {
    const byte = bytes[at] ?? 0;
    if (byte < 0x80) {
      id += String.fromCharCode(byte);
      at += 1;
    } else {
      id += String.fromCharCode(((bytes[at + 1] ?? 0) << 8) | (bytes[at + 2] ?? 0));
      at += 3;
    }
  }
  return id;
}

// FNV-1a over the code units, then murmur3's finaliser so nearby ids spread over the table.
// Ids reach the ledger only after their signature is checked, so no outsider picks them to
// collide.
function hashOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  return hash ^ (hash >>> 16);
}

/** Where the file ledger keeps its records, and when it compacts them. */
export interface FileLedgerOptions extends MemoryLedgerOptions {
  path: string;
}

// LIMITATION: one process per file, and each append reaches the OS but is fsynced only at
// shutdown: a SIGKILL keeps every record, a power cut may lose the last ones. Several
// instances need a shared store with set-if-absent (README, "The dedupe ledger").
/**
 * A ledger that survives a restart: an append-only file of `{"id","at"}` lines, replayed into
 * memory at start and rewritten without expired or evicted ids whenever it doubles in size.
 * It uses only `node:fs`, which Node, Bun and Deno all provide.
 */
export async function openFileLedger(options: FileLedgerOptions): Promise<MemoryLedger> {
  const fs = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  await fs.mkdir(dirname(options.path), { recursive: true });
  const memory = createMemoryLedger(options);
  const maxEntries = options.maxEntries ?? DEFAULT_DEDUPE_MAX_ENTRIES;
  const now = options.now ?? Date.now;

  const text = await fs.readFile(options.path, 'utf8').catch((error: { code?: string }) => {
    if (error.code === 'ENOENT') return '';
    throw error;
  });
  for (const line of text.split('\n')) {
    // A hard kill can leave the last line half written; its event is in doubt either way.
    const record = parseLedgerLine(line);
    if (record) memory.restore(record.id, record.at);
  }

  let file = await compact();
  let linesInFile = memory.size;
  // One queue for every write, so a compaction never interleaves with an append.
  let writes: Promise<unknown> = Promise.resolve();

  async function compact() {
    const temporary = `${options.path}.tmp`;
    const lines = memory.entries().map(([id, at]) => `${JSON.stringify({ id, at })}\n`);
    await fs.writeFile(temporary, lines.join(''));
    await fs.rename(temporary, options.path);
    return fs.open(options.path, 'a');
  }

  function enqueue<T>(write: () => Promise<T>): Promise<T> {
    const next = writes.then(write);
    writes = next.catch(() => {});
    return next;
  }

  return {
    get size() {
      return memory.size;
    },
    has: (id) => memory.has(id),
    restore: memory.restore,
    entries: memory.entries,
    async add(id) {
      const at = now();
      memory.restore(id, at);
      // The append completes before the 200 goes out: after that, even SIGKILL keeps it.
      await enqueue(() => file.write(`${JSON.stringify({ id, at })}\n`));
      if (++linesInFile > 2 * maxEntries) {
        await enqueue(async () => {
          await file.close();
          file = await compact();
          linesInFile = memory.size;
        });
      }
    },
    close: () =>
      enqueue(async () => {
        await file.sync();
        await file.close();
      }),
  };
}

function parseLedgerLine(line: string): { id: string; at: number } | null {
  try {
    const record: unknown = JSON.parse(line);
    // Only what add() writes: a validated event id and a finite time. An edited or foreign
    // line (an "at" of 1e999 would hold back every expiry) is skipped like a torn one.
    const { id, at } = isRecord(record) ? record : {};
    if (typeof id === 'string' && EVENT_ID_PATTERN.test(id) && Number.isFinite(at)) {
      return { id, at: at as number };
    }
  } catch {}
  return null;
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

/** Every refusal the handler gives, with its status; the `error` field of the JSON body. */
export const REFUSALS = {
  not_found: 404,
  method_not_allowed: 405,
  unsupported_encoding: 415,
  body_too_large: 413,
  body_unreadable: 400,
  missing_signature: 401,
  malformed_signature: 401,
  signature_mismatch: 401,
  invalid_json: 400,
  invalid_event: 400,
  slack_rejected: 502,
  slack_unavailable: 503,
  shutting_down: 503,
  internal_error: 500,
} as const;

export type RefusalCode = keyof typeof REFUSALS;

/** What happened to a delivery, as logged and as answered in `outcome`. */
export type Outcome = 'posted' | 'not_sent' | 'logged' | 'ignored' | 'duplicate' | RefusalCode;

/** One structured line per delivery. It never holds a secret or the Slack URL. */
export interface DeliveryLogLine {
  at: string;
  event_id: string | null;
  type: string | null;
  outcome: Outcome;
  status: number;
  duration_ms: number;
  detail?: string;
  text?: string;
}

/** The handler and what its runtime start needs to stop it gracefully. */
export interface WebhookHandler {
  app: Hono;
  fetch: (request: Request) => Response | Promise<Response>;
  /** Resolves when no delivery is in flight, or after `timeoutMs`; true when idle. */
  waitForIdle(timeoutMs: number): Promise<boolean>;
  /** From now on, answer new deliveries 503 so the Platform retries them elsewhere or later. */
  stopAccepting(): void;
}

interface EffectResult {
  outcome: Outcome;
  status: number;
  detail?: string;
  text?: string;
  retryAfterSeconds?: number;
}

const WEBHOOK_PATH = '/webhooks/platform';
const JOINED: EffectResult = { outcome: 'duplicate', status: 200, detail: 'joined_in_flight' };

/** Builds the Hono app: `POST /webhooks/platform` and `GET /healthz`. */
export function createWebhookHandler(options: HandlerOptions): WebhookHandler {
  const verifySignature = createVerifier(options.signingSecrets);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const ledger = options.ledger ?? createMemoryLedger();
  const log = options.log ?? (() => {});
  const slack: SlackPostOptions = {
    timeoutMs: options.slackTimeoutMs ?? DEFAULT_SLACK_TIMEOUT_MS,
    retryBudgetMs: options.slackRetryBudgetMs ?? DEFAULT_SLACK_RETRY_BUDGET_MS,
    sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
  };
  // Copies of one event that arrive together share the first copy's work instead of racing it.
  const inFlight = new Map<string, Promise<EffectResult>>();
  let activeRequests = 0;
  let accepting = true;
  const idleWaiters = new Set<() => void>();

  async function applyEffect(event: PlatformEvent): Promise<EffectResult> {
    // LIMITATION: the scheme signs no timestamp, so this ledger is the only replay defence,
    // and it remembers an id for DEDUPE_MAX_AGE_SECONDS at most.
    if (await ledger.has(event.id)) return { outcome: 'duplicate', status: 200 };
    if (!isEventType(event.type)) return { outcome: 'ignored', status: 200 };

    const text = formatSlackMessage(event);
    if (text === null) return remember(event, { outcome: 'logged', status: 200 });
    if (!options.slackWebhookUrl)
      return remember(event, { outcome: 'not_sent', status: 200, text });

    // LIMITATION: Slack's incoming webhooks take no idempotency key, so a hard kill between
    // Slack's answer and `remember` leaves the event in doubt: its retry posts again.
    const result = await postToSlack(options.slackWebhookUrl, text, slack);
    if (result.ok) return remember(event, { outcome: 'posted', status: 200 });
    if (result.retryable) {
      return {
        outcome: 'slack_unavailable',
        status: REFUSALS.slack_unavailable,
        detail: result.error,
        ...(result.retryAfterSeconds === undefined
          ? {}
          : { retryAfterSeconds: result.retryAfterSeconds }),
      };
    }
    return {
      outcome: 'slack_rejected',
      status: REFUSALS.slack_rejected,
      detail: `Slack answered ${result.status}: ${result.error}`,
    };
  }

  async function remember(event: PlatformEvent, result: EffectResult): Promise<EffectResult> {
    await ledger.add(event.id);
    return result;
  }

  function applyOnce(event: PlatformEvent): Promise<EffectResult> {
    const running = inFlight.get(event.id);
    // A copy that joins is a duplicate of the first: only the first logs "posted".
    if (running) return running.then((result) => (result.status < 300 ? JOINED : result));
    const effect = applyEffect(event).finally(() => inFlight.delete(event.id));
    inFlight.set(event.id, effect);
    return effect;
  }

  async function receive(c: Context): Promise<Response> {
    const startedAt = performance.now();
    if (!accepting) {
      // A keep-alive connection can still bring a request after the server stopped listening.
      return refuse(c, startedAt, 'shutting_down', 'The handler is restarting; retry shortly.');
    }

    const encoding = c.req.header('content-encoding')?.trim().toLowerCase();
    if (encoding && encoding !== 'identity') {
      // The signature covers the bytes as sent; inflating unverified input invites a zip bomb.
      return refuse(
        c,
        startedAt,
        'unsupported_encoding',
        'Send the body without Content-Encoding.',
      );
    }
    const read = await readBodyWithin(c.req.raw, maxBodyBytes);
    if (!read.ok && read.reason === 'body_too_large') {
      return refuse(c, startedAt, 'body_too_large', `Body is larger than ${maxBodyBytes} bytes.`);
    }
    if (!read.ok) {
      return refuse(c, startedAt, 'body_unreadable', 'The body ended before it was complete.');
    }

    const verified = await verifySignature(read.body, c.req.raw.headers.get(SIGNATURE_HEADER));
    if (!verified.ok) {
      return refuse(c, startedAt, verified.reason, SIGNATURE_MESSAGES[verified.reason]);
    }

    const parsed = parseEvent(read.body);
    if (!parsed.ok) return refuse(c, startedAt, parsed.reason, parsed.message);

    const { id, type } = parsed.event;
    return answer(c, startedAt, id, type, await applyOnce(parsed.event));
  }

  function refuse(c: Context, startedAt: number, code: RefusalCode, detail: string): Response {
    return answer(c, startedAt, null, null, { outcome: code, status: REFUSALS[code], detail });
  }

  // Logs the delivery's one line, then answers. Built field by field: this runs per delivery.
  function answer(
    c: Context,
    startedAt: number,
    eventId: string | null,
    type: string | null,
    result: EffectResult,
  ): Response {
    const line: DeliveryLogLine = {
      at: new Date().toISOString(),
      event_id: eventId,
      type,
      outcome: result.outcome,
      status: result.status,
      duration_ms: Math.round((performance.now() - startedAt) * 100) / 100,
    };
    if (result.detail !== undefined) line.detail = result.detail;
    if (result.text !== undefined) line.text = result.text;
    log(line);
    // Draining: tell the sender not to reuse the connection, which is about to close. Bun and
    // Deno close it without a word, and a request sent on it then meets a reset.
    if (!accepting) c.header('Connection', 'close');
    if (result.retryAfterSeconds !== undefined) {
      c.header('Retry-After', String(result.retryAfterSeconds));
    }
    if (result.status < 300) return c.json({ ok: true, outcome: result.outcome }, 200);
    return c.json(
      { error: result.outcome, message: result.detail ?? result.outcome },
      result.status as 400,
    );
  }

  const app = new Hono();
  app.get('/healthz', (c) => c.json({ ok: true }));
  // One route for every method: a second one would take each POST off Hono's single-handler
  // fast path (npm run bench).
  const webhook = (c: Context) => {
    if (c.req.method === 'POST') return receive(c);
    c.header('Allow', 'POST');
    return c.json({ error: 'method_not_allowed', message: `Use POST on ${WEBHOOK_PATH}.` }, 405);
  };
  app.all(WEBHOOK_PATH, webhook);
  app.notFound((c) => {
    // Node and Bun resolve dot segments (/webhooks/./platform) before routing, Deno routes the
    // path as sent: resolving it here makes all three answer alike, at no cost to other paths.
    // (Bun hands a CONNECT request over with a bare host:port as its URL, hence canParse.)
    const url = c.req.url;
    if (URL.canParse(url) && new URL(url).pathname === WEBHOOK_PATH) return webhook(c);
    return c.json({ error: 'not_found', message: `Deliveries go to ${WEBHOOK_PATH}.` }, 404);
  });
  app.onError((error, c) => {
    // Only the error's name: a message could quote configuration.
    log({
      at: new Date().toISOString(),
      event_id: null,
      type: null,
      outcome: 'internal_error',
      status: 500,
      duration_ms: 0,
      detail: error.name,
    });
    return c.json({ error: 'internal_error', message: 'The handler failed; retry later.' }, 500);
  });

  // Counted here rather than in a Hono middleware, which would take every request off Hono's
  // single-handler fast path (npm run bench).
  function settled(): void {
    activeRequests--;
    if (activeRequests === 0) for (const wake of idleWaiters) wake();
  }

  return {
    app,
    fetch(request) {
      activeRequests++;
      let answered: Response | Promise<Response>;
      try {
        answered = app.fetch(request);
      } catch (error) {
        settled();
        throw error;
      }
      if (answered instanceof Response) {
        settled();
        return answered;
      }
      return answered.finally(settled);
    },
    stopAccepting() {
      accepting = false;
    },
    waitForIdle(timeoutMs) {
      if (activeRequests === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const done = (idle: boolean) => {
          clearTimeout(timer);
          idleWaiters.delete(wake);
          resolve(idle);
        };
        const wake = () => done(true);
        const timer = setTimeout(() => done(false), timeoutMs);
        idleWaiters.add(wake);
      });
    },
  };
}

const SIGNATURE_MESSAGES: Record<SignatureFailure, string> = {
  missing_signature: `The ${SIGNATURE_HEADER} header is missing.`,
  malformed_signature: `${SIGNATURE_HEADER} must be exactly 64 hex digits, sent once.`,
  signature_mismatch: `${SIGNATURE_HEADER} does not match the body for any configured secret.`,
};

export type BodyResult =
  | { ok: true; body: Uint8Array }
  | { ok: false; reason: 'body_too_large' | 'body_unreadable' };

/**
 * Reads the body once, as bytes, and gives up as soon as it passes `maxBytes`, so an
 * oversized body is never buffered whole.
 */
export async function readBodyWithin(request: Request, maxBytes: number): Promise<BodyResult> {
  const declared = Number(request.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    // Cancelled, not left unread: Deno closes a kept-alive connection whose body nobody read
    // or cancelled, which costs the sender a reconnect for every 413 (npm run bench).
    await request.body?.cancel().catch(() => {});
    return { ok: false, reason: 'body_too_large' };
  }
  if (declared >= 0) {
    // A declared length within the limit bounds the read already. arrayBuffer() skips the web
    // stream that touching `request.body` makes the Node adapter build (npm run bench).
    try {
      return { ok: true, body: new Uint8Array(await request.arrayBuffer()) };
    } catch {
      return { ok: false, reason: 'body_unreadable' };
    }
  }
  if (!request.body) return { ok: true, body: new Uint8Array(0) };

  // LIMITATION: no deadline of its own for a sender that stalls mid-body; the runtime's
  // timeouts apply (Node 300 s, Bun 10 s idle, Deno none), so put a proxy in front if needed.
  const reader = request.body.getReader();
  let first: Uint8Array | undefined;
  let copy: Uint8Array | undefined;
  let length = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (length + value.byteLength > maxBytes) {
        await reader.cancel().catch(() => {});
        return { ok: false, reason: 'body_too_large' };
      }
      if (!first) {
        first = value;
        length = value.byteLength;
        continue;
      }
      // From the second chunk on, copy into one buffer of our own as the bytes arrive: a
      // runtime may hand each chunk over as a view on a far larger buffer (Deno: 64 KiB), so
      // keeping the chunks would let 1-byte chunks pin gigabytes.
      if (!copy || copy.byteLength < length + value.byteLength) {
        const size = Math.min(maxBytes, Math.max(2 * (length + value.byteLength), 16 * 1024));
        const grown = new Uint8Array(size);
        grown.set(copy ? copy.subarray(0, length) : first);
        copy = grown;
      }
      copy.set(value, length);
      length += value.byteLength;
    }
  } catch {
    // The sender went away mid-body, or its chunked framing was broken.
    return { ok: false, reason: 'body_unreadable' };
  }
  const body = copy ? copy.subarray(0, length) : (first ?? new Uint8Array(0));
  return { ok: true, body };
}

// ---------------------------------------------------------------------------------------------
// Runtime start
// ---------------------------------------------------------------------------------------------

interface RunningServer {
  port: number;
  /** Stops accepting; resolves once the open connections have had their answers and ended. */
  close(): Promise<void>;
  /** Ends keep-alive connections that sit idle, so `close` can finish. */
  closeIdle(): void;
}

type ServeOptions = { port: number; host: string; fetch: WebhookHandler['fetch'] };

interface RuntimeGlobals {
  Bun?: {
    serve(options: { port: number; hostname: string; fetch: ServeOptions['fetch'] }): {
      port: number;
      stop(closeActiveConnections?: boolean): Promise<void>;
    };
  };
  Deno?: {
    serve(
      options: { port: number; hostname: string; onListen?: () => void },
      fetch: ServeOptions['fetch'],
    ): { addr: { port: number }; shutdown(): Promise<void> };
    addSignalListener(signal: 'SIGINT' | 'SIGTERM', listener: () => void): void;
  };
}

const runtime = globalThis as typeof globalThis & RuntimeGlobals;

function runtimeName(): 'bun' | 'deno' | 'node' {
  if (runtime.Bun) return 'bun';
  if (runtime.Deno) return 'deno';
  return 'node';
}

async function serve({ port, host, fetch }: ServeOptions): Promise<RunningServer> {
  if (runtime.Bun) {
    const server = runtime.Bun.serve({ port, hostname: host, fetch });
    return { port: server.port, close: () => server.stop(), closeIdle: () => {} };
  }
  if (runtime.Deno) {
    const server = runtime.Deno.serve({ port, hostname: host, onListen: () => {} }, fetch);
    return { port: server.addr.port, close: () => server.shutdown(), closeIdle: () => {} };
  }
  // Imported here only: Bun and Deno never load the Node adapter.
  const { serve: serveNode } = await import('@hono/node-server');
  return new Promise((resolve, reject) => {
    const server = serveNode({ fetch, port, hostname: host }, (info) =>
      resolve({
        port: info.port,
        close: () => new Promise((closed) => server.close(() => closed())),
        closeIdle: () => {
          if ('closeIdleConnections' in server) server.closeIdleConnections();
        },
      }),
    );
    server.once('error', reject);
  });
}

function onShutdownSignal(listener: (signal: string) => void): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    if (runtime.Deno) runtime.Deno.addSignalListener(signal, () => listener(signal));
    else process.on(signal, () => listener(signal));
  }
}

async function loadDotEnvFile(env: Record<string, string | undefined>): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile('.env', 'utf8').catch(() => null);
  if (text === null) return;
  // Real environment variables win over the file, as with every other .env loader.
  for (const [key, value] of Object.entries(parseDotEnv(text))) env[key] ??= value;
}

/** Reads the configuration, serves, and stops gracefully on SIGINT or SIGTERM. */
export async function start(): Promise<void> {
  await loadDotEnvFile(process.env);
  let config: ServerConfig;
  try {
    config = readConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`handler: ${error.message}`);
    process.exit(1);
  }
  const logLines = createLineWriter();
  const limits = { maxEntries: config.dedupeMaxEntries, maxAgeSeconds: config.dedupeMaxAgeSeconds };
  const ledger = config.dedupeFile
    ? await openFileLedger({ path: config.dedupeFile, ...limits })
    : createMemoryLedger(limits);
  const handler = createWebhookHandler({
    ...config,
    ledger,
    log: (line) => logLines.write(JSON.stringify(line)),
  });
  let server: RunningServer;
  try {
    server = await serve({ port: config.port, host: config.host, fetch: handler.fetch });
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as Error).name;
    console.error(`handler: cannot listen on ${config.host}:${config.port} (${code}).`);
    process.exit(1);
  }

  const where = `http://${config.host}:${server.port}${WEBHOOK_PATH}`;
  console.log(`handler: listening on ${where} (${runtimeName()})`);
  if (!config.slackWebhookUrl) {
    console.log('handler: SLACK_WEBHOOK_URL is not set, so messages are logged, not sent.');
  }

  let stopping = false;
  onShutdownSignal(async (signal) => {
    if (stopping) return;
    stopping = true;
    handler.stopAccepting();
    const closed = server.close();
    const idle = await handler.waitForIdle(DEFAULT_SHUTDOWN_GRACE_MS);
    // The last answers are written after the handler returns them: let them reach the wire.
    server.closeIdle();
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, FLUSH_GRACE_MS))]);
    await ledger.close();
    logLines.flush();
    console.log(`handler: ${signal}, stopped ${idle ? 'cleanly' : 'with deliveries cut off'}`);
    process.exit(0);
  });
}

/**
 * Writes log lines to stdout in batches, one write per turn of the event loop: a write per
 * line cost Node about 40 us per delivery (npm run bench). A hard kill loses at most the
 * last few milliseconds of lines, never a delivery's effect.
 */
export function createLineWriter(): { write(line: string): void; flush(): void } {
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const text = `${pending.join('\n')}\n`;
    pending = [];
    process.stdout.write(text);
  };
  return {
    write(line) {
      if (pending.push(line) === 1) setTimeout(flush, 0);
    },
    flush,
  };
}

function isEntryPoint(): boolean {
  // Bun, Deno and Node 24+ say so directly; older Node is told by the script path.
  const main = (import.meta as { main?: boolean }).main;
  if (typeof main === 'boolean') return main;
  const script = process.argv[1]?.replace(/\\/g, '/');
  // The URL spells a space as %20 and a Windows drive as /C:/.
  const self = decodeURIComponent(new URL(import.meta.url).pathname);
  return script !== undefined && (self === script || self === `/${script}`);
}

if (isEntryPoint()) await start();
