import { createHmac } from 'node:crypto';
import { Hono } from 'hono';

// In-process stand-ins for the simulator's tests: a webhook target and a clock. Nothing here
// opens a socket or waits for real time.

/** The secret the fake target verifies with. */
export const SECRET = 'whsec_simulator_test';

/** One request as the fake target saw it. */
export type Received = {
  path: string;
  contentType: string | null;
  signature: string | null;
  raw: string;
  event: { id: string; type: string; [key: string]: unknown };
  signatureValid: boolean;
};

/** How the fake target answers request number `index` (0-based); an Error means no answer. */
export type Script = (received: Received, index: number) => Response | Error;

/** A fake creator's webhook endpoint: verifies like the real handler, then follows a script. */
export function createFakeTarget(script: Script = answerOk) {
  const received: Received[] = [];
  const app = new Hono();

  app.post('/webhooks/platform', async (c) => {
    const raw = await c.req.text();
    const signature = c.req.header('x-platform-signature') ?? null;
    const entry: Received = {
      path: c.req.path,
      contentType: c.req.header('content-type') ?? null,
      signature,
      raw,
      event: JSON.parse(raw),
      signatureValid: signature === hmacHex(SECRET, raw),
    };
    received.push(entry);

    const answer = script(entry, received.length - 1);
    if (answer instanceof Error) throw answer;
    return answer;
  });

  // A thrown Error stands for a connection that failed, as fetch reports it.
  app.onError((error) => {
    throw error;
  });

  const fetch = async (input: string | URL | Request, init?: RequestInit) =>
    app.fetch(new Request(input, init));

  return { fetch: fetch as typeof globalThis.fetch, received };
}

/** Answers 401 to a bad signature and 200 otherwise, like a healthy handler. */
export function answerOk(received: Received): Response {
  if (!received.signatureValid) return Response.json({ error: 'mismatch' }, { status: 401 });
  return Response.json({ ok: true, outcome: 'posted' });
}

/** Answers with the given statuses in turn, then 200; `'down'` fails the connection. */
export function answerInTurn(...answers: (number | 'down')[]): Script {
  return (received, index) => {
    const answer = answers[index];
    if (answer === undefined) return answerOk(received);
    if (answer === 'down') return connectionRefused();
    return new Response('try later', { status: answer });
  };
}

/** The error undici gives for a refused connection. */
export function connectionRefused(): Error {
  return new TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } });
}

/** Lowercase hex HMAC-SHA256, computed independently of the simulator with node:crypto. */
export function hmacHex(secret: string, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** A clock whose sleep moves time forward instantly and records every delay asked for. */
export function createFakeClock(startMs = Date.UTC(2026, 11, 1, 12, 0, 0)) {
  let nowMs = startMs;
  const sleeps: number[] = [];

  return {
    now: () => nowMs,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      nowMs += ms;
    },
    advance: (ms: number) => {
      nowMs += ms;
    },
    sleeps,
  };
}
