import {
  type Attempt,
  type AttemptHistory,
  countAttempts,
  createAttemptRecorder,
  firstStartedMs,
  NO_ATTEMPTS,
} from './attempt-history.ts';
import { type BackoffOptions, computeRetryDelayMs, MAX_ATTEMPTS } from './backoff.ts';
import { type AttemptAnswer, classifyAttempt, parseRetryAfterMs } from './classify.ts';
import { createDeadlineSignals } from './deadline-signals.ts';
import type { PlatformEvent } from './events.ts';
import { canPostBytes, type PostAnswer, postBytes, timeoutError } from './http-post.ts';
import { createRetryScheduler, type RetryScheduler } from './retry-scheduler.ts';
import { SIGNATURE_HEADER, type Signer } from './sign.ts';
import { SimulatorError } from './simulator-error.ts';

export type { Attempt } from './attempt-history.ts';

/** How long one attempt may take, answer body included, before it counts as failed. */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 10_000;

/** What `onAttempt` hears after each attempt; `nextDelayMs` is null when no retry follows. */
export type AttemptReport = {
  event: PlatformEvent;
  attempt: Attempt;
  maxAttempts: number;
  nextDelayMs: number | null;
};

/**
 * The outcome for one event; `duration_ms` runs from the first send to the last answer.
 * `event` is read back from the bytes that were sent, so it is the event as the target got it.
 */
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
  /** Waits between attempts instead of `scheduler`, as a fake clock in a test does. */
  sleep?: (ms: number) => Promise<void>;
  /** Holds the deliveries waiting for a retry; by default one min-heap per call or batch. */
  scheduler?: Pick<RetryScheduler, 'scheduleAfter'>;
  random?: () => number;
  onAttempt?: (report: AttemptReport) => void;
};

/** What one POST got back, when it was sent (epoch ms by `now`) and how long it took. */
export type SendAnswer = AttemptAnswer & {
  error: string | null;
  startedMs: number;
  duration_ms: number;
};

/** How the deliveries of one {@link createDeliverer} end: each finished, or an error. */
export type DeliveryCallbacks = {
  onFinished: (delivery: FinishedDelivery, index: number) => void;
  onError: (error: unknown) => void;
};

/** Starts deliveries that share one set of options, and builds the results of finished ones. */
export type Deliverer = {
  /** Starts delivering one event; it comes back to `onFinished` with the same `index`. */
  start: (event: PlatformEvent, index: number) => void;
  /** The full result of a finished delivery, built anew on each call. */
  toResult: (delivery: FinishedDelivery) => DeliveryResult;
};

// Classes rather than object literals: V8 pretenures a literal's allocation site once most of
// its objects outlive a scavenge, and with 100,000 deliveries waiting that left 10-25 MB of
// old space committed and empty (npm run bench:scheduler).

/** All that a delivery holds while it waits: its event only as the bytes it was signed as. */
class PendingDelivery {
  readonly index: number;
  /** The signed body, one latin1 character per byte: a Buffer's object alone is 96 bytes. */
  readonly bodyLatin1: string;
  readonly signature: string;
  history: AttemptHistory = NO_ATTEMPTS;

  constructor(index: number, body: Buffer, signature: string) {
    this.index = index;
    this.bodyLatin1 = body.toString('latin1');
    this.signature = signature;
  }
}

/** A delivery that has ended, kept as small as it waited until its result is asked for. */
class FinishedDelivery {
  readonly bodyLatin1: string;
  readonly history: AttemptHistory;
  readonly delivered: boolean;
  readonly durationMs: number;

  constructor(pending: PendingDelivery, delivered: boolean, durationMs: number) {
    this.bodyLatin1 = pending.bodyLatin1;
    this.history = pending.history;
    this.delivered = delivered;
    this.durationMs = durationMs;
  }
}

export type { FinishedDelivery };

// Shared by every send in the process, as the timeouts of attempts started together are.
const takeDeadlineSignal = createDeadlineSignals(timeoutError);

/** Serialises the bytes that are signed and sent; done once per event, reused on every retry. */
export function encodeEvent(event: PlatformEvent): Buffer<ArrayBuffer> {
  return Buffer.from(JSON.stringify(event));
}

/** Delivers one event the way the Platform does: signed POSTs, retried with backoff, 7 at most. */
export function deliver(event: PlatformEvent, options: DeliverOptions): Promise<DeliveryResult> {
  return new Promise((resolve, reject) => {
    const deliverer = createDeliverer(options, {
      onFinished: (delivery) => resolve(deliverer.toResult(delivery)),
      onError: reject,
    });
    deliverer.start(event, 0);
  });
}

/**
 * Creates a deliverer for events that share one set of options. While a delivery waits for its
 * retry it is one small object and one entry in the scheduler: no promise, timer or suspended
 * function of its own, so a batch can hold 100,000 waiting in a few tens of megabytes.
 */
export function createDeliverer(options: DeliverOptions, callbacks: DeliveryCallbacks): Deliverer {
  const maxAttempts = options.maxAttempts ?? MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new SimulatorError(
      'invalid_option',
      `Invalid maxAttempts ${maxAttempts}: an event gets at least 1 attempt.`,
    );
  }
  const random = options.random ?? Math.random;
  const now = options.now ?? Date.now;
  const recorder = createAttemptRecorder();
  const waitThen = createWait(options, callbacks.onError);

  async function begin(event: PlatformEvent, index: number): Promise<void> {
    const body = encodeEvent(event);
    const signature = await options.sign(body);
    await attempt(new PendingDelivery(index, body, signature));
  }

  async function attempt(delivery: PendingDelivery): Promise<void> {
    const number = countAttempts(delivery.history) + 1;
    const body = Buffer.from(delivery.bodyLatin1, 'latin1');
    const answer = await send(body, delivery.signature, options);
    const verdict = classifyAttempt(answer, number, maxAttempts);
    const nextDelayMs =
      verdict.kind === 'retry'
        ? computeRetryDelayMs(number, verdict.retryAfterMs, options.backoff, random)
        : null;

    delivery.history = recorder.append(delivery.history, answer);
    options.onAttempt?.({
      event: decodeEvent(delivery.bodyLatin1),
      attempt: recorder.toAttempt(delivery.history, number),
      maxAttempts,
      nextDelayMs,
    });

    if (nextDelayMs === null) {
      const durationMs = now() - firstStartedMs(delivery.history);
      const delivered = verdict.kind === 'delivered';
      callbacks.onFinished(new FinishedDelivery(delivery, delivered, durationMs), delivery.index);
      return;
    }

    waitThen(nextDelayMs, retry, delivery);
  }

  function retry(delivery: PendingDelivery): void {
    attempt(delivery).catch(callbacks.onError);
  }

  return {
    start(event, index) {
      begin(event, index).catch(callbacks.onError);
    },
    toResult: (delivery) => ({
      event: decodeEvent(delivery.bodyLatin1),
      delivered: delivery.delivered,
      attempts: recorder.toAttempts(delivery.history),
      duration_ms: delivery.durationMs,
    }),
  };
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

  try {
    const headers = { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature };
    const url = toPostableUrl(options.url);
    // An injected fetch is what tests and fault runs rely on; a URL that fetch treats
    // specially is left to fetch as well, so only the plain default path changes transport.
    const answer =
      options.fetch === undefined && url !== null
        ? await postBytes({ url, headers, body, timeoutMs })
        : await postWithFetch(options.fetch ?? fetch, options.url, { headers, body }, timeoutMs);

    const retryAfterMs = parseRetryAfterMs(answer.retryAfter, now());
    const duration_ms = now() - startedMs;
    return { status: answer.status, retryAfterMs, error: null, startedMs, duration_ms };
  } catch (error) {
    const message = describeFetchError(error, timeoutMs);
    const duration_ms = now() - startedMs;
    return { status: null, retryAfterMs: null, error: message, startedMs, duration_ms };
  }
}

async function postWithFetch(
  fetchImpl: typeof fetch,
  url: string | URL,
  request: Pick<RequestInit, 'headers' | 'body'>,
  timeoutMs: number,
): Promise<PostAnswer> {
  // Not AbortSignal.timeout(): that keeps a timer and a signal of its own for the whole
  // timeout after the answer, held on while the delivery waits for its retry.
  const deadline = takeDeadlineSignal(timeoutMs);
  try {
    const response = await fetchImpl(url, { method: 'POST', ...request, signal: deadline.signal });
    // Read the answer to the end so the connection can be reused; its content is not needed.
    await response.arrayBuffer().catch(() => undefined);
    return { status: response.status, retryAfter: response.headers.get('retry-after') };
  } finally {
    deadline.release();
  }
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

/**
 * How a delivery waits for its next attempt: the injected sleep when there is one, else an
 * entry in the scheduler that holds the delivery itself, so no promise or closure is held.
 */
function createWait(
  options: Pick<DeliverOptions, 'sleep' | 'scheduler'>,
  onError: (error: unknown) => void,
): (
  delayMs: number,
  resume: (delivery: PendingDelivery) => void,
  delivery: PendingDelivery,
) => void {
  const { sleep } = options;
  if (sleep !== undefined) {
    return (delayMs, resume, delivery) => {
      sleep(delayMs).then(() => resume(delivery), onError);
    };
  }
  const scheduler = options.scheduler ?? createRetryScheduler();
  return (delayMs, resume, delivery) => scheduler.scheduleAfter(delayMs, resume, delivery);
}

function decodeEvent(bodyLatin1: string): PlatformEvent {
  return JSON.parse(Buffer.from(bodyLatin1, 'latin1').toString('utf8')) as PlatformEvent;
}
