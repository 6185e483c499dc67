/**
 * Hostile input over real HTTP: fast-check drives raw requests at handler.ts running on each
 * runtime, with Slack replaced by a sink on 127.0.0.1 that counts what would have been posted.
 * Replay a failure with the printed seed: FUZZ_SEED=<seed> FUZZ_RUNS=<runs> npm run fuzz
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFUSALS } from '../handler.ts';
import { installEvent, sign, TEST_SECRET } from './support/deliveries.ts';
import {
  describeAnswer,
  encodeRequest,
  fuzzSettings,
  type HttpInput,
  isDocumentedRefusal,
  openStalledSenders,
  type RawAnswer,
  readRssBytes,
  refusalOf,
  type SendOptions,
  type ServedSink,
  sendRaw,
  sendRefusedUpload,
  serveSlackSink,
  sleep,
} from './support/fuzz-http.ts';
import {
  contentEncoding,
  deliverableBody,
  encodingHeader,
  extraHeaders,
  honestFraming,
  invalidSignature,
  isIdentityEncoding,
  lyingFraming,
  signatureHeaders,
  signedBody,
  unsignedRequest,
  validPlusAnotherCopy,
  validSignature,
  WEBHOOK_PATH,
} from './support/fuzz-inputs.ts';
import { type HandlerProcess, RUNTIMES, startHandler } from './support/runtimes.ts';

const { numRuns, seed } = fuzzSettings(200);
const PROPERTY_TIMEOUT_MS = 30_000 + numRuns * 300;
const MAX_RSS_GROWTH_BYTES = 150 * 1024 * 1024;
const MAX_LATENCY_MS = 1_000;
const TEN_MIB = 10 * 1024 * 1024;
// Holding 10,000 buffers of 64 KiB would take 625 MiB; Deno's churn alone takes about 160.
const MAX_CHUNKED_GROWTH_BYTES = 256 * 1024 * 1024;

describe.each(RUNTIMES)('handler.ts over HTTP on %s, under hostile input', (runtime) => {
  let served: ServedSink;
  let handler: HandlerProcess;
  let rssBefore = 0;
  const answers = new Map<string, number>();

  beforeAll(async () => {
    served = await serveSlackSink();
    handler = await startHandler(runtime, {
      PLATFORM_SIGNING_SECRET: TEST_SECRET,
      SLACK_WEBHOOK_URL: served.webhookUrl,
    });
    // Warm up first, so the baseline holds the code paths and not just an idle process.
    for (let i = 0; i < 5; i++) await send(signedDelivery(`evt_warmup_${i}`));
    rssBefore = readRssBytes(pidOf(handler));
    console.log(`fuzz ${runtime}: ${numRuns} runs per property, seed ${seed}`);
  });

  afterAll(async () => {
    await handler?.stop();
    await served?.close();
  });

  it('refuses a signature sent twice as malformed, even when one copy is valid', async () => {
    const body = deliveryBody(`evt_twice_${runtime}`);
    const valid = sign(body);
    const posted = served.sink.messages.length;
    const copies = [
      [valid, valid],
      [valid, ''],
      ['', valid],
      ['0'.repeat(64), valid],
      [valid.toUpperCase(), valid],
    ];
    for (const [first = '', second = ''] of copies) {
      const answer = await send({
        ...post(body),
        headers: [
          ['X-Platform-Signature', first],
          ['x-platform-signature', second],
        ],
      });
      expect(describeAnswer(answer)).toBe('401 malformed_signature');
    }
    expect(served.sink.messages.length).toBe(posted);
  });

  it('answers 415 to a body with any Content-Encoding but identity, signed or not', async () => {
    const body = deliveryBody(`evt_encoding_${runtime}`);
    for (const encoding of ['gzip', 'GZIP', 'deflate', 'br', 'zstd', 'identity, gzip', '*']) {
      const answer = await send({
        ...post(body),
        headers: [
          ['X-Platform-Signature', sign(body)],
          ['Content-Encoding', encoding],
        ],
      });
      expect(describeAnswer(answer)).toBe('415 unsupported_encoding');
    }
  });

  it('answers 413 to a 10 MiB body, with Content-Length or chunked', async () => {
    const body = new Uint8Array(TEN_MIB).fill(0x7b);
    const headers = [['X-Platform-Signature', sign(body)] as const];
    for (let i = 0; i < 3; i++) {
      for (const framing of [{ kind: 'length' }, { kind: 'chunked', chunks: 160 }]) {
        const input = { ...post(body), headers, framing } as HttpInput;
        const answer = await sendRefusedUpload(handler.origin, encodeRequest(input));
        expect(describeAnswer(answer)).toBe('413 body_too_large');
      }
    }
  });

  it('keeps answering other clients while a slow sender trickles a delivery', async () => {
    const slow = sendRaw(handler.origin, encodeRequest(signedDelivery(`evt_slow_${runtime}`)), {
      chunkBytes: 8,
      pauseMs: 20,
      timeoutMs: 20_000,
    });
    const latencies: number[] = [];
    for (let i = 0; i < 10; i++) {
      const startedAt = performance.now();
      const answer = await send(i % 2 ? healthz() : signedDelivery(`evt_meanwhile_${i}`));
      latencies.push(performance.now() - startedAt);
      expect(answer.status).toBe(200);
      await sleep(50);
    }
    expect(describeAnswer(await slow)).toBe('200 posted');
    expect(Math.max(...latencies)).toBeLessThan(MAX_LATENCY_MS);
  });

  it('keeps answering while 20 senders stall mid-body and 20 trickle their headers', async () => {
    const stalled = await openStalledSenders(handler.origin, {
      count: 20,
      declaredBytes: 1024 * 1024,
      sentBytes: 512 * 1024,
    });
    const trickling = openTricklingHeaders(20);
    try {
      for (let i = 0; i < 6; i++) {
        const startedAt = performance.now();
        const answer = await send(i % 2 ? healthz() : signedDelivery(`evt_stalled_${i}`));
        expect(answer.status).toBe(200);
        expect(performance.now() - startedAt).toBeLessThan(MAX_LATENCY_MS);
        await sleep(200);
      }
    } finally {
      stalled.close();
      await trickling;
    }
  });

  it(
    'never answers 2xx nor posts to Slack for a request without a valid signature',
    async () => {
      const posted = served.sink.messages.length;
      await fc.assert(
        fc.asyncProperty(unsignedRequest(), async (input) => {
          // Unsigned, so trying again has no effect to repeat (see sendRefusedUpload).
          const answer = await sendRefusedUpload(handler.origin, encodeRequest(input), {
            isHead: input.method === 'HEAD',
          });
          tally(answer);
          expect(answer.ended).toBe('complete');
          expect(answer.status).toBeLessThan(500);
          if (isSuccess(answer)) {
            // Only /healthz may say yes to a stranger.
            expect(['GET', 'HEAD']).toContain(input.method);
            if (input.method === 'GET') expect(json(answer)).toEqual({ ok: true });
          } else {
            expectDocumentedRefusal(answer, input.method === 'HEAD');
          }
          expect(served.sink.messages.length).toBe(posted);
        }),
        { numRuns, seed },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'refuses a valid signature sent along with any other copy, as malformed',
    async () => {
      const posted = served.sink.messages.length;
      await fc.assert(
        fc.asyncProperty(
          validPlusAnotherCopy,
          deliverableBody,
          honestFraming,
          async (plan, body, framing) => {
            const headers = signatureHeaders(plan, body);
            const answer = await send({ ...post(body), headers, framing });
            tally(answer);
            expect(describeAnswer(answer)).toBe('401 malformed_signature');
            expect(served.sink.messages.length).toBe(posted);
          },
        ),
        { numRuns, seed },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'accepts every deliverable event signed validly, and answers other signed bodies 4xx',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.record({ body: signedBody, plan: validSignature, extra: extraHeaders }),
          fc.record({ encoding: contentEncoding, framing: honestFraming }),
          async ({ body: { bytes, deliverable }, plan, extra }, { encoding, framing }) => {
            const before = served.sink.messages.length;
            const headers = [
              ...extra,
              ...signatureHeaders(plan, bytes),
              ...encodingHeader(encoding),
            ];
            const request = encodeRequest({ ...post(bytes), headers, framing });
            // A refused encoding is answered before the body is read (see sendRefusedUpload).
            const answer = isIdentityEncoding(encoding)
              ? await sendRaw(handler.origin, request)
              : await sendRefusedUpload(handler.origin, request);
            tally(answer);
            expect(answer.ended).toBe('complete');
            if (!isIdentityEncoding(encoding)) {
              expect(describeAnswer(answer)).toBe('415 unsupported_encoding');
            } else if (deliverable) {
              expect(answer.status, describeAnswer(answer)).toBe(200);
            }
            if (isSuccess(answer)) {
              expect(answer.status).toBe(200);
              // Exactly one Slack message per "posted", none for logged, ignored or duplicate.
              const posts = json(answer).outcome === 'posted' ? 1 : 0;
              expect(served.sink.messages.length).toBe(before + posts);
            } else {
              expect(answer.status).toBeLessThan(500);
              expectDocumentedRefusal(answer, false);
              expect(served.sink.messages.length).toBe(before);
            }
          },
        ),
        { numRuns, seed },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'never answers 2xx or 5xx, nor posts, when the framing lies about the body',
    async () => {
      const posted = served.sink.messages.length;
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            body: signedBody.filter(({ bytes }) => bytes.byteLength > 0),
            plan: fc.oneof(validSignature, invalidSignature),
            framing: lyingFraming,
          }),
          async ({ body: { bytes }, plan, framing }) => {
            // The signature, when valid, covers every byte sent, not what the framing claims.
            const headers = signatureHeaders(plan, bytes);
            // A sender that promised more than it sent must hang up, or nobody ever answers.
            const answer = await send(
              { ...post(bytes), headers, framing },
              { endAfterWrite: true },
            );
            tally(answer);
            expect(answer.ended).not.toBe('timeout');
            if (answer.status !== null) {
              expect(answer.status).toBeGreaterThanOrEqual(400);
              expect(answer.status).toBeLessThan(500);
              // The runtime's own parser may refuse with an empty body; the handler never does.
              if (answer.body.byteLength > 0) expectDocumentedRefusal(answer, false);
            }
          },
        ),
        { numRuns, seed },
      );
      await sleep(200);
      expect(served.sink.messages.length).toBe(posted);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it('stays up after all that: /healthz answers, no 500 logged, RSS within bounds', async () => {
    expect(handler.child.exitCode).toBeNull();
    expect(handler.child.signalCode).toBeNull();
    expect(describeAnswer(await send(healthz()))).toBe('200 ok');
    expect(handler.deliveries().filter((line) => line.status === 500)).toEqual([]);
    const rssAfter = readRssBytes(pidOf(handler));
    console.log(
      `rss ${runtime}: ${mib(rssBefore)} MiB before, ${mib(rssAfter)} MiB after ` +
        `(${rssAfter >= rssBefore ? '+' : ''}${mib(rssAfter - rssBefore)} MiB)`,
    );
    console.log(`answers ${runtime}: ${[...answers].map(([k, n]) => `${k} ×${n}`).join(', ')}`);
    expect(rssAfter - rssBefore).toBeLessThan(MAX_RSS_GROWTH_BYTES);
  });

  // Helpers (they close over this runtime's handler)

  function send(input: HttpInput, options: SendOptions = {}): Promise<RawAnswer> {
    return sendTo(handler, input, options);
  }

  function tally(answer: RawAnswer): void {
    const key = describeAnswer(answer);
    answers.set(key, (answers.get(key) ?? 0) + 1);
  }

  async function openTricklingHeaders(count: number): Promise<void> {
    const head = encodeRequest({
      ...post(new Uint8Array(0)),
      headers: [],
      framing: { kind: 'none' },
    });
    const senders = Array.from({ length: count }, () =>
      sendRaw(handler.origin, head, { chunkBytes: 1, pauseMs: 100, timeoutMs: 3_000 }),
    );
    await Promise.all(senders);
  }
});

describe.each(RUNTIMES)('reading a chunked body on %s', (runtime) => {
  let handler: HandlerProcess;

  beforeAll(async () => {
    handler = await startHandler(runtime, { PLATFORM_SIGNING_SECRET: TEST_SECRET });
  });
  afterAll(async () => {
    await handler?.stop();
  });

  // Regression: readBodyWithin keeps every chunk it reads until the body ends, and Deno hands
  // each chunk over as a view on a fresh 64 KiB buffer, so a stranger's 60 KB of one-byte
  // chunks pinned about 470 MiB and 1 MiB of them (6 MB on the wire) would pin 64 GiB.
  it('holds no buffer per chunk when a body comes in one-byte chunks', async () => {
    const chunks = 10_000;
    const input: HttpInput = {
      ...post(new Uint8Array(chunks).fill(0x61)),
      framing: { kind: 'chunked', chunks },
    };
    await sendTo(handler, {
      ...input,
      body: new Uint8Array(8),
      framing: { kind: 'chunked', chunks: 8 },
    });
    const before = readRssBytes(pidOf(handler));
    expect(describeAnswer(await sendTo(handler, input))).toBe('401 missing_signature');
    const growth = readRssBytes(pidOf(handler)) - before;
    console.log(`one-byte chunks ${runtime}: ${chunks} chunks, RSS +${mib(growth)} MiB`);
    expect(growth).toBeLessThan(MAX_CHUNKED_GROWTH_BYTES);
  });
});

// Helpers

function sendTo(
  handler: HandlerProcess,
  input: HttpInput,
  options: SendOptions = {},
): Promise<RawAnswer> {
  return sendRaw(handler.origin, encodeRequest(input), options);
}

function pidOf(handler: HandlerProcess): number {
  if (handler.child.pid === undefined) throw new Error(`${handler.runtime}: no pid`);
  return handler.child.pid;
}

function deliveryBody(id: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(installEvent({ id })));
}

function post(body: Uint8Array): HttpInput {
  return { method: 'POST', target: WEBHOOK_PATH, headers: [], body, framing: { kind: 'length' } };
}

function signedDelivery(id: string): HttpInput {
  const body = deliveryBody(id);
  return { ...post(body), headers: [['X-Platform-Signature', sign(body)]] };
}

function healthz(): HttpInput {
  return {
    ...post(new Uint8Array(0)),
    method: 'GET',
    target: '/healthz',
    framing: { kind: 'none' },
  };
}

function isSuccess(answer: RawAnswer): boolean {
  return answer.status !== null && answer.status >= 200 && answer.status < 300;
}

function json(answer: RawAnswer): Record<string, unknown> {
  return JSON.parse(Buffer.from(answer.body).toString('utf8'));
}

/** A refusal is `{ error, message }` with one of the handler's codes and that code's status. */
function expectDocumentedRefusal(answer: RawAnswer, isHead: boolean): void {
  if (isHead) {
    // A HEAD answer has no body to carry the code; its status must still be one of them.
    expect(Object.values(REFUSALS)).toContain(answer.status);
    return;
  }
  const refusal = refusalOf(answer);
  expect(refusal, describeAnswer(answer)).not.toBeNull();
  expect(isDocumentedRefusal(answer.status, refusal?.error ?? ''), describeAnswer(answer)).toBe(
    true,
  );
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
