import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { MAX_ATTEMPTS } from '../simulator/backoff.ts';
import { type AttemptReport, deliver } from '../simulator/deliver.ts';
import { loadFixture } from '../simulator/events.ts';
import { createSigner } from '../simulator/sign.ts';
import { sendTampered, tamperSignature } from '../simulator/tamper.ts';
import {
  answerInTurn,
  createFakeClock,
  createFakeTarget,
  hmacHex,
  SECRET,
} from './simulator-fakes.ts';

const URL = 'http://127.0.0.1:3000/webhooks/platform';
const sign = createSigner(SECRET);

describe('deliver', () => {
  it('posts the event as JSON, signed over the exact bytes sent', async () => {
    const target = createFakeTarget();
    const event = await loadFixture('install.created');

    const result = await deliver(event, { url: URL, sign, fetch: target.fetch });

    expect(result.delivered).toBe(true);
    const [received] = target.received;
    expect(received?.contentType).toBe('application/json');
    expect(received?.signature).toBe(hmacHex(SECRET, received?.raw ?? ''));
    expect(received?.event).toEqual(event);
  });

  it('sends the same bytes and signature on every retry', async () => {
    const target = createFakeTarget(answerInTurn(503, 500));
    const clock = createFakeClock();
    const event = await loadFixture('review.posted');

    await deliver(event, { url: URL, sign, fetch: target.fetch, ...clock });

    const [first, ...rest] = target.received;
    expect(rest).toHaveLength(2);
    for (const retry of rest) {
      expect(retry.raw).toBe(first?.raw);
      expect(retry.signature).toBe(first?.signature);
    }
  });

  it('gives a target that always fails exactly 7 attempts, then gives up', async () => {
    const target = createFakeTarget(() => new Response('down', { status: 500 }));
    const clock = createFakeClock();

    const result = await deliver(await loadFixture('skill.error'), {
      url: URL,
      sign,
      fetch: target.fetch,
      ...clock,
    });

    expect(result.delivered).toBe(false);
    expect(target.received).toHaveLength(MAX_ATTEMPTS);
    expect(result.attempts.map((a) => [a.attempt, a.status])).toEqual(
      [1, 2, 3, 4, 5, 6, 7].map((n) => [n, 500]),
    );
    expect(clock.sleeps).toHaveLength(MAX_ATTEMPTS - 1);
  });

  it('retries a network error and records it without a status', async () => {
    const target = createFakeTarget(answerInTurn('down'));
    const clock = createFakeClock();

    const result = await deliver(await loadFixture('payout.paid'), {
      url: URL,
      sign,
      fetch: target.fetch,
      ...clock,
    });

    expect(result.delivered).toBe(true);
    expect(result.attempts[0]).toMatchObject({
      status: null,
      error: 'fetch failed (ECONNREFUSED)',
    });
    expect(result.attempts[1]).toMatchObject({ status: 200, error: null });
  });

  it('waits at least a Retry-After, scaled, before the next attempt', async () => {
    const target = createFakeTarget((_received, index) =>
      index === 0
        ? new Response(null, { status: 503, headers: { 'retry-after': '30' } })
        : Response.json({ ok: true }),
    );
    const clock = createFakeClock();

    await deliver(await loadFixture('install.created'), {
      url: URL,
      sign,
      fetch: target.fetch,
      backoff: { scale: 0.01 },
      random: () => 0,
      ...clock,
    });

    expect(clock.sleeps).toEqual([300]);
  });

  it('reports each attempt with n/7 and the delay that follows', async () => {
    const target = createFakeTarget(answerInTurn(503));
    const reports: AttemptReport[] = [];

    await deliver(await loadFixture('install.created'), {
      url: URL,
      sign,
      fetch: target.fetch,
      random: () => 0.5,
      onAttempt: (report) => reports.push(report),
      ...createFakeClock(),
    });

    expect(reports.map((r) => [r.attempt.attempt, r.maxAttempts, r.nextDelayMs])).toEqual([
      [1, 7, 500],
      [2, 7, null],
    ]);
  });

  it('measures each attempt and the whole delivery with the injected clock', async () => {
    const clock = createFakeClock();
    const slowTarget = createFakeTarget(answerInTurn(500));
    const fetch: typeof globalThis.fetch = async (input, init) => {
      clock.advance(25);
      return slowTarget.fetch(input, init);
    };

    const result = await deliver(await loadFixture('install.created'), {
      url: URL,
      sign,
      fetch,
      random: () => 0.1,
      ...clock,
    });

    expect(result.attempts.map((a) => a.duration_ms)).toEqual([25, 25]);
    expect(result.duration_ms).toBe(25 + 100 + 25);
  });

  it('gives up on an attempt that outlasts the timeout', async () => {
    const hang: typeof fetch = (_input, init) =>
      new Promise((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => reject(init.signal?.reason));
      });

    const result = await deliver(await loadFixture('install.created'), {
      url: URL,
      sign,
      fetch: hang,
      timeoutMs: 5,
      maxAttempts: 1,
    });

    expect(result.attempts[0]).toMatchObject({ status: null, error: 'timed out after 5ms' });
  });

  it('sends text outside ASCII byte for byte, and reports the event as it was sent', async () => {
    const target = createFakeTarget(answerInTurn(503));
    const event = await loadFixture('review.posted');
    event.data.text = 'Zoë liked it — 日本語 too 🎉';

    const result = await deliver(event, {
      url: URL,
      sign,
      fetch: target.fetch,
      ...createFakeClock(),
    });

    expect(target.received.map((r) => r.raw)).toEqual([
      JSON.stringify(event),
      JSON.stringify(event),
    ]);
    expect(target.received.every((r) => r.signatureValid)).toBe(true);
    expect(result.event).toEqual(event);
  });

  it('waits for its retry on a scheduler of its own when given no sleep', async () => {
    const target = createFakeTarget(answerInTurn(503, 'down'));

    const result = await deliver(await loadFixture('install.created'), {
      url: URL,
      sign,
      fetch: target.fetch,
      // Every delay under 4 ms of real time.
      backoff: { scale: 0.001 },
    });

    expect(result.delivered).toBe(true);
    expect(result.attempts.map((a) => a.status)).toEqual([503, null, 200]);
  });

  it('leaves no timer running once an attempt over fetch has its answer', async () => {
    vi.useFakeTimers();
    try {
      const target = createFakeTarget();

      await deliver(await loadFixture('install.created'), { url: URL, sign, fetch: target.fetch });

      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses fewer than one attempt with invalid_option', async () => {
    const delivery = deliver(await loadFixture('install.created'), {
      url: URL,
      sign,
      maxAttempts: 0,
    });

    await expect(delivery).rejects.toMatchObject({ code: 'invalid_option' });
  });

  it('always delivers the exact bytes it signed, and reports them as the event', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string(), fc.string({ unit: 'binary' })), async (data) => {
        const target = createFakeTarget();
        const event = { id: 'evt_1', type: 'review.posted', created_at: '2026-12-01', data };

        const result = await deliver(event, { url: URL, sign, fetch: target.fetch });

        const [received] = target.received;
        expect(received?.raw).toBe(JSON.stringify(event));
        expect(received?.signatureValid).toBe(true);
        expect(result.event).toEqual(JSON.parse(JSON.stringify(event)));
      }),
      { numRuns: 50 },
    );
  });

  it('never makes more than 7 attempts, and stops at the first 2xx', async () => {
    const event = await loadFixture('install.created');

    await fc.assert(
      fc.asyncProperty(fc.array(answerArb, { maxLength: 12 }), async (answers) => {
        const target = createFakeTarget(answerInTurn(...answers));
        const result = await deliver(event, {
          url: URL,
          sign,
          fetch: target.fetch,
          ...createFakeClock(),
        });

        const firstSuccess = [...answers, 200].findIndex(isSuccess);
        const expected = Math.min(firstSuccess + 1, MAX_ATTEMPTS);
        expect(result.attempts).toHaveLength(expected);
        expect(result.delivered).toBe(firstSuccess < MAX_ATTEMPTS);
      }),
      { numRuns: 100 },
    );
  });
});

describe('sendTampered', () => {
  it('sends once with a wrong signature and sees the 401 as a refusal', async () => {
    const target = createFakeTarget();

    const result = await sendTampered(await loadFixture('install.created'), {
      url: URL,
      sign,
      fetch: target.fetch,
    });

    expect(target.received).toHaveLength(1);
    expect(target.received[0]?.signatureValid).toBe(false);
    expect(result).toMatchObject({ status: 401, rejected: true });
  });

  it('does not count a target that accepts the bad signature as a refusal', async () => {
    const target = createFakeTarget(() => Response.json({ ok: true }));

    const result = await sendTampered(await loadFixture('install.created'), {
      url: URL,
      sign,
      fetch: target.fetch,
    });

    expect(result).toMatchObject({ status: 200, rejected: false });
  });
});

describe('tamperSignature', () => {
  it('always changes exactly one digit and keeps 64 lowercase hex digits', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-f]{64}$/), (signature) => {
        const tampered = tamperSignature(signature);
        const changed = [...tampered].filter((char, i) => char !== signature[i]);

        expect(tampered).toMatch(/^[0-9a-f]{64}$/);
        expect(changed).toHaveLength(1);
      }),
    );
  });
});

// Helpers

const answerArb = fc.constantFrom<number | 'down'>(200, 201, 400, 401, 500, 503, 'down');

function isSuccess(answer: number | 'down'): boolean {
  return typeof answer === 'number' && answer >= 200 && answer < 300;
}
