import { request } from 'node:http';
import type { SinkFailure } from './slack-sink.ts';

/** Faults on the way from the Platform to the handler, each a share of attempts (0 to 1). */
export type DeliveryFaults = {
  /** Share of attempts held back before sending, by up to `maxDelayMs`. */
  delayShare: number;
  maxDelayMs: number;
  /** Share of attempts whose connection is dropped once the request is sent in full. */
  dropShare: number;
};

/** Faults on the way from the handler to Slack, each a share of posts (0 to 1). */
export type SlackFaults = {
  share500: number;
  /** Answered 429 with `Retry-After: 0`, which the handler waits out itself. */
  share429Short: number;
  /** Answered 429 with a long `Retry-After`, which the handler hands back to the Platform. */
  share429Long: number;
  /** Held for `slowMs`, past the handler's Slack timeout. */
  shareSlow: number;
  slowMs: number;
  longRetryAfterSeconds: number;
};

/** How long a dropped attempt's connection stays open after the request was sent. */
const DROP_AFTER_MS = 20;

/** A seeded generator (mulberry32), so a chaos run's fault decisions can be replayed. */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Fisher-Yates shuffle into a new array: the Platform does not promise order. */
export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const shuffled = [...items];
  for (let i = shuffled.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j] as T, shuffled[i] as T];
  }
  return shuffled;
}

/** Picks the Slack sink's answer for one post; null means an ordinary success. */
export function pickSlackFault(faults: SlackFaults, random: () => number): SinkFailure | null {
  let roll = random();
  const choices: [number, SinkFailure][] = [
    [faults.share500, { status: 500 }],
    [faults.share429Short, { status: 429, retryAfterSeconds: 0 }],
    [faults.share429Long, { status: 429, retryAfterSeconds: faults.longRetryAfterSeconds }],
    [faults.shareSlow, { delayMs: faults.slowMs }],
  ];
  for (const [share, failure] of choices) {
    if (roll < share) return failure;
    roll -= share;
  }
  return null;
}

/**
 * Wraps `fetch` with delivery faults. A dropped attempt writes the whole request, waits a
 * moment so the handler can start on it, and hangs up before reading the answer: the handler
 * may well have done the work while the Platform records a failure and retries.
 */
export function createFaultyFetch(
  faults: DeliveryFaults,
  random: () => number,
  baseFetch: typeof fetch = fetch,
): typeof fetch {
  return async (input, init = {}) => {
    if (random() < faults.delayShare) {
      await new Promise((resolve) => setTimeout(resolve, random() * faults.maxDelayMs));
    }
    if (random() < faults.dropShare) return sendThenDrop(String(input), init);
    return baseFetch(input, init);
  };
}

function sendThenDrop(url: string, init: RequestInit): Promise<Response> {
  return new Promise((_resolve, reject) => {
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const outgoing = request(url, { method: init.method ?? 'POST', headers });
    outgoing.on('error', reject);
    outgoing.end(init.body as Uint8Array, () => {
      setTimeout(() => {
        outgoing.destroy();
        reject(new TypeError('connection dropped after the request was sent'));
      }, DROP_AFTER_MS);
    });
  });
}
