import { Hono } from 'hono';
import { SimulatorError } from './simulator-error.ts';

/** A message the sink accepted, as Slack would have posted it. */
export type SinkMessage = {
  path: string;
  text: string;
  body: Record<string, unknown>;
  received_at: string;
  /** When the answer went out: a crash between the two leaves the poster unsure. */
  answered_at: string;
};

/** A post the sink refused, by script or because the payload was invalid. */
export type SinkRejection = {
  path: string;
  status: number;
  body: string;
  received_at: string;
};

/**
 * A scripted failure for the next `count` posts (default 1): answer `status` (with Retry-After
 * when `retryAfterSeconds` is given) and/or wait `delayMs` first. Without `status` a delayed
 * post is then accepted as usual.
 */
export type SinkFailure = {
  status?: number;
  count?: number;
  delayMs?: number;
  retryAfterSeconds?: number;
};

/** Options for {@link createSlackSink}; `sleep` is injectable so delay tests need no real time. */
export type SlackSinkOptions = {
  onMessage?: (message: SinkMessage) => void;
  /** Consulted for each post no scripted failure claims: random faults for a chaos run. */
  faults?: () => SinkFailure | null;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
};

/** The sink: a fetch handler to serve or call in-process, its records, and its controls. */
export type SlackSink = {
  app: Hono;
  fetch: (request: Request) => Response | Promise<Response>;
  readonly messages: readonly SinkMessage[];
  readonly rejected: readonly SinkRejection[];
  fail: (failure: SinkFailure) => void;
  reset: () => void;
};

type PendingFailure = {
  status: number | null;
  remaining: number;
  delayMs: number;
  retryAfterSeconds: number | null;
};

/** Creates a stand-in for Slack's incoming webhooks that records posts and fails on command. */
export function createSlackSink(options: SlackSinkOptions = {}): SlackSink {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  const messages: SinkMessage[] = [];
  const rejected: SinkRejection[] = [];
  const failures: PendingFailure[] = [];

  function fail(failure: SinkFailure): void {
    failures.push(resolveFailure(failure));
  }

  function reset(): void {
    messages.length = 0;
    rejected.length = 0;
    failures.length = 0;
  }

  function takeFailure(): PendingFailure | undefined {
    const failure = failures[0];
    if (failure && --failure.remaining === 0) failures.shift();
    return failure;
  }

  const app = new Hono();

  // Control routes, so a process that only has the URL can drive the sink.
  app.get('/_sink/messages', (c) => c.json(messages));
  app.get('/_sink/rejected', (c) => c.json(rejected));
  app.post('/_sink/reset', (c) => {
    reset();
    return c.json({ ok: true });
  });
  app.post('/_sink/fail', async (c) => {
    try {
      fail((await c.req.json()) as SinkFailure);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return c.json({ error: 'invalid_failure', message }, 400);
    }
    return c.json({ ok: true });
  });

  // Every other path is a webhook, as Slack's are /services/T.../B.../secret.
  app.post('*', async (c) => {
    const path = c.req.path;
    const received_at = new Date(now()).toISOString();
    const raw = await c.req.text();
    const random = options.faults?.();
    const failure = takeFailure() ?? (random ? resolveFailure(random) : undefined);

    if (failure && failure.delayMs > 0) await sleep(failure.delayMs);
    if (c.req.raw.signal.aborted) {
      // The poster gave up waiting. This sink then drops the post, as a Slack that failed
      // would; a real Slack might still post it (see the README's delivery guarantees).
      rejected.push({ path, status: 499, body: raw, received_at });
      return c.text('client_gone', 503);
    }

    if (failure && failure.status !== null) {
      rejected.push({ path, status: failure.status, body: raw, received_at });
      const headers = new Headers({ 'content-type': 'text/plain; charset=UTF-8' });
      if (failure.retryAfterSeconds !== null) {
        headers.set('retry-after', String(failure.retryAfterSeconds));
      }
      return new Response('scripted_failure', { status: failure.status, headers });
    }

    const body = parseObject(raw);
    if (body === null || typeof body.text !== 'string') {
      rejected.push({ path, status: 400, body: raw, received_at });
      // Slack answers a payload it cannot use with 400 and this plain-text code.
      return c.text('invalid_payload', 400);
    }

    const answered_at = new Date(now()).toISOString();
    const message = { path, text: body.text, body, received_at, answered_at };
    messages.push(message);
    options.onMessage?.(message);
    return c.text('ok');
  });

  return {
    app,
    fetch: (request) => app.fetch(request),
    get messages() {
      return messages;
    },
    get rejected() {
      return rejected;
    },
    fail,
    reset,
  };
}

function resolveFailure(failure: SinkFailure): PendingFailure {
  const { status, count = 1, delayMs = 0, retryAfterSeconds } = failure ?? {};

  if (status !== undefined && !isIntegerIn(status, 400, 599)) {
    throw invalidFailure(`status ${status} is not an error status from 400 to 599`);
  }
  if (!isIntegerIn(count, 1, Number.MAX_SAFE_INTEGER)) {
    throw invalidFailure(`count ${count} is not a whole number of 1 or more`);
  }
  if (!(Number.isFinite(delayMs) && delayMs >= 0)) {
    throw invalidFailure(`delayMs ${delayMs} is not a number of 0 or more`);
  }
  if (retryAfterSeconds !== undefined && !isIntegerIn(retryAfterSeconds, 0, 86_400)) {
    throw invalidFailure(`retryAfterSeconds ${retryAfterSeconds} is not from 0 to 86400`);
  }
  if (status === undefined && delayMs === 0) {
    throw invalidFailure('it needs a status, a delayMs, or both');
  }

  return {
    status: status ?? null,
    remaining: count,
    delayMs,
    retryAfterSeconds: retryAfterSeconds ?? null,
  };
}

function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return Number.isInteger(value) && (value as number) >= min && (value as number) <= max;
}

function invalidFailure(why: string): SimulatorError {
  return new SimulatorError('invalid_option', `Invalid sink failure: ${why}.`);
}

function parseObject(raw: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(raw);
    const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
    return isObject ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
