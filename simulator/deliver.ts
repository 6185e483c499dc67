import { type BackoffOptions, computeRetryDelayMs, MAX_ATTEMPTS } from './backoff.ts';
import { type AttemptAnswer, classifyAttempt, parseRetryAfterMs } from './classify.ts';
import type { PlatformEvent } from './events.ts';
import { canPostBytes, type PostAnswer, postBytes } from './http-post.ts';
import { SIGNATURE_HEADER, type Signer } from './sign.ts';
import { SimulatorError } from './simulator-error.ts';

/** How long one attempt may take, answer body included, before it counts as failed. */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 10_000;

/** One attempt as recorded in results and dead letters; `status` is null on a network error. */
export type Attempt = {
  attempt: number;
  status: number | null;
  error: string | null;
  at: string;
  duration_ms: number;
};

/** What `onAttempt` hears after each attempt; `nextDelayMs` is null when no retry follows. */
export type AttemptReport = {
  event: PlatformEvent;
  attempt: Attempt;
  maxAttempts: number;
  nextDelayMs: number | null;
};

/** The outcome for one event; `duration_ms` runs from the first send to the last answer. */
export type DeliveryResult = {
  event: PlatformEvent;
  delivered: boolean;
  attempts: Attempt[];
  duration_ms: number;
};

/** Options for one POST; `fetch` and `now` are injectable so tests need no network or clock. */
export type SendOptions = {
  url: string | URL;
  sign: Signer;
  fetch?: typeof fetch;
  now?: () => number;
  timeoutMs?: number;
};

/** Options for {@link deliver}: one POST's options plus the retry policy and its clock. */
export type DeliverOptions = SendOptions & {
  maxAttempts?: number;
  backoff?: BackoffOptions;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  onAttempt?: (report: AttemptReport) => void;
};

/** What one POST got back, with the time it was sent and how long it took. */
export type SendAnswer = AttemptAnswer & {
  error: string | null;
  at: string;
  duration_ms: number;
};

const encoder = new TextEncoder();

/** Serialises the bytes that are signed and sent; done once per event, reused on every retry. */
export function encodeEvent(event: PlatformEvent): Uint8Array<ArrayBuffer> {
  return encoder.encode(JSON.stringify(event));
}

/** Delivers one event the way the Platform does: signed POSTs, retried with backoff, 7 at most. */
export async function deliver(
  event: PlatformEvent,
  options: DeliverOptions,
): Promise<DeliveryResult> {
  const maxAttempts = options.maxAttempts ?? MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new SimulatorError(
      'invalid_option',
      `Invalid maxAttempts ${maxAttempts}: an event gets at least 1 attempt.`,
    );
  }
  const sleep = options.sleep ?? defaultSleep;
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;

  const body = encodeEvent(event);
  const signature = await options.sign(body);
  const attempts: Attempt[] = [];
  const startedMs = now();

  // No loop condition: classifyAttempt ends the loop by dead-lettering at maxAttempts.
  for (let attempt = 1; ; attempt++) {
    const answer = await send(body, signature, options);
    const verdict = classifyAttempt(answer, attempt, maxAttempts);
    const nextDelayMs =
      verdict.kind === 'retry'
        ? computeRetryDelayMs(attempt, verdict.retryAfterMs, options.backoff, random)
        : null;

    const record: Attempt = {
      attempt,
      status: answer.status,
      error: answer.error,
      at: answer.at,
      duration_ms: answer.duration_ms,
    };
    attempts.push(record);
    options.onAttempt?.({ event, attempt: record, maxAttempts, nextDelayMs });

    if (nextDelayMs === null) {
      const delivered = verdict.kind === 'delivered';
      return { event, delivered, attempts, duration_ms: now() - startedMs };
    }

    await sleep(nextDelayMs);
  }
}

/** Sends exact bytes with a given signature once; never throws for what the target does. */
export async function send(
  body: Uint8Array<ArrayBuffer>,
  signature: string,
  options: SendOptions,
): Promise<SendAnswer> {
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
  const startedMs = now();
  const at = new Date(startedMs).toISOString();

  try {
    const headers = { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature };
    const url = toPostableUrl(options.url);
    // An injected fetch is what tests and fault runs rely on; a URL that fetch treats
    // specially is left to fetch as well, so only the plain default path changes transport.
    const answer =
      options.fetch === undefined && url !== null
        ? await postBytes({ url, headers, body, timeoutMs })
        : await postWithFetch(options.fetch ?? fetch, options.url, {
            headers,
            body,
            signal: AbortSignal.timeout(timeoutMs),
          });

    const retryAfterMs = parseRetryAfterMs(answer.retryAfter, now());
    const duration_ms = now() - startedMs;
    return { status: answer.status, retryAfterMs, error: null, at, duration_ms };
  } catch (error) {
    const message = describeFetchError(error, timeoutMs);
    const duration_ms = now() - startedMs;
    return { status: null, retryAfterMs: null, error: message, at, duration_ms };
  }
}

async function postWithFetch(
  fetchImpl: typeof fetch,
  url: string | URL,
  request: Pick<RequestInit, 'headers' | 'body' | 'signal'>,
): Promise<PostAnswer> {
  const response = await fetchImpl(url, { method: 'POST', ...request });
  // Read the answer to the end so the connection can be reused; its content is not needed.
  await response.arrayBuffer().catch(() => undefined);
  return { status: response.status, retryAfter: response.headers.get('retry-after') };
}

function toPostableUrl(url: string | URL): URL | null {
  const parsed = url instanceof URL ? url : URL.canParse(url) ? new URL(url) : null;
  return parsed !== null && canPostBytes(parsed) ? parsed : null;
}

// undici hides the useful part ("ECONNREFUSED") in `cause`; surface it.
function describeFetchError(error: unknown, timeoutMs: number): string {
  if (error instanceof DOMException && error.name === 'TimeoutError') {
    return `timed out after ${timeoutMs}ms`;
  }
  if (!(error instanceof Error)) return String(error);

  const code = (error.cause as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? `${error.message} (${code})` : error.message;
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
