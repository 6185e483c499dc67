import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DeliveryResult } from '../simulator/deliver.ts';
import { createDelivery, loadFixture } from '../simulator/events.ts';
import { percentile, runBatch, summariseResults } from '../simulator/run.ts';
import { createSigner } from '../simulator/sign.ts';
import { answerOk, createFakeClock, createFakeTarget, SECRET } from './simulator-fakes.ts';

const URL = 'http://127.0.0.1:3000/webhooks/platform';
const sign = createSigner(SECRET);

describe('runBatch', () => {
  it('keeps no more than `concurrency` deliveries in flight', async () => {
    const target = createFakeTarget();
    const parked: (() => void)[] = [];
    let inFlight = 0;
    let peak = 0;
    const fetch: typeof globalThis.fetch = async (input, init) => {
      peak = Math.max(peak, ++inFlight);
      await new Promise<void>((release) => parked.push(release));
      inFlight--;
      return target.fetch(input, init);
    };

    let finished = false;
    const events = await copies('install.created', 10);
    const batch = runBatch(events, { url: URL, sign, fetch, concurrency: 3 }).finally(() => {
      finished = true;
    });

    await until(() => parked.length === 3);
    // Released in rounds, so every request has to wait for a free worker.
    await until(() => {
      for (const release of parked.splice(0)) release();
      return finished;
    });
    await batch;

    expect(peak).toBe(3);
    expect(target.received).toHaveLength(10);
  });

  it('returns results in the order of the events given', async () => {
    const events = await copies('review.posted', 6);
    const target = createFakeTarget();

    const { results } = await runBatch(events, { url: URL, sign, fetch: target.fetch });

    expect(results.map((r) => r.event.id)).toEqual(events.map((e) => e.id));
  });

  it('counts retried and dead-lettered events in the summary', async () => {
    const events = await copies('install.created', 3);
    const [, retried, dead] = events.map((e) => e.id);
    const failures = new Map<string, number>();
    const target = createFakeTarget((received) => {
      const seen = (failures.get(received.event.id) ?? 0) + 1;
      failures.set(received.event.id, seen);
      if (received.event.id === dead) return new Response(null, { status: 500 });
      if (received.event.id === retried && seen === 1) return new Response(null, { status: 503 });
      return answerOk(received);
    });

    const { summary } = await runBatch(events, {
      url: URL,
      sign,
      fetch: target.fetch,
      ...createFakeClock(),
    });

    expect(summary).toMatchObject({ sent: 3, delivered: 2, retried: 2, dead_lettered: 1 });
  });

  it('hands every result to onResult once', async () => {
    const seen: string[] = [];
    const events = await copies('skill.error', 5);

    await runBatch(events, {
      url: URL,
      sign,
      fetch: createFakeTarget().fetch,
      onResult: (result) => {
        seen.push(result.event.id);
      },
    });

    expect(seen.sort()).toEqual(events.map((e) => e.id).sort());
  });

  it('takes each event from an iterable only when its delivery starts', async () => {
    const fixture = await loadFixture('install.created');
    const parked: (() => void)[] = [];
    const target = createFakeTarget();
    const fetch: typeof globalThis.fetch = async (input, init) => {
      await new Promise<void>((release) => parked.push(release));
      return target.fetch(input, init);
    };
    let taken = 0;
    function* events() {
      while (taken < 5) {
        taken++;
        yield createDelivery(fixture);
      }
    }

    const batch = runBatch(events(), { url: URL, sign, fetch, concurrency: 2 });
    await until(() => parked.length === 2);
    expect(taken).toBe(2);

    await until(() => {
      for (const release of parked.splice(0)) release();
      return taken === 5 && target.received.length === 5;
    });
    expect((await batch).summary.delivered).toBe(5);
  });

  it('returns results in the order of the events, whatever order they finish in', async () => {
    const events = await copies('install.created', 4);
    const [slow] = events.map((e) => e.id);
    let slowAnswered = false;
    const target = createFakeTarget((received) => {
      if (received.event.id !== slow || slowAnswered) return answerOk(received);
      slowAnswered = true;
      return new Response(null, { status: 503 });
    });
    const finished: string[] = [];

    const { results } = await runBatch(events, {
      url: URL,
      sign,
      fetch: target.fetch,
      ...createFakeClock(),
      onResult: (result) => {
        finished.push(result.event.id);
      },
    });

    expect(finished.at(-1)).toBe(slow);
    expect(results.map((r) => r.event.id)).toEqual(events.map((e) => e.id));
    expect(results.map((r) => r.attempts.length)).toEqual([2, 1, 1, 1]);
  });

  it('starts no event once a hook has thrown, and rejects with its error', async () => {
    const events = await copies('install.created', 5);
    const target = createFakeTarget();
    const broken = new Error('disk full');
    let results = 0;

    const batch = runBatch(events, {
      url: URL,
      sign,
      fetch: target.fetch,
      concurrency: 2,
      onResult: () => {
        if (++results === 1) throw broken;
      },
    });

    await expect(batch).rejects.toBe(broken);
    await until(() => results === 2);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(target.received).toHaveLength(2);
  });

  it('delivers a batch wider than it starts in one turn of the event loop', async () => {
    const events = await copies('payout.paid', 600);
    const target = createFakeTarget();

    const { summary } = await runBatch(events, {
      url: URL,
      sign,
      fetch: target.fetch,
      concurrency: events.length,
    });

    expect(summary).toMatchObject({ sent: 600, delivered: 600 });
    expect(new Set(target.received.map((r) => r.event.id)).size).toBe(600);
  });

  it('refuses a concurrency of 0 with invalid_option', async () => {
    await expect(runBatch([], { url: URL, sign, concurrency: 0 })).rejects.toMatchObject({
      code: 'invalid_option',
    });
  });
});

describe('summariseResults', () => {
  it('measures latency over delivered events only, end to end', () => {
    const results = [result(true, 10, 1), result(true, 30, 2), result(false, 999, 7)];

    expect(summariseResults(results)).toEqual({
      sent: 3,
      delivered: 2,
      retried: 2,
      dead_lettered: 1,
      latency_ms: { p50: 10, p95: 30, max: 30 },
    });
  });

  it('has no latency when nothing was delivered', () => {
    expect(summariseResults([result(false, 5, 7)]).latency_ms).toBeNull();
  });
});

describe('percentile', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);

  it('takes the nearest rank', () => {
    expect(percentile(hundred, 50)).toBe(50);
    expect(percentile(hundred, 95)).toBe(95);
    expect(percentile(hundred, 100)).toBe(100);
    expect(percentile([7, 1, 3], 50)).toBe(3);
  });

  it('gives the only value of a single sample for every p', () => {
    expect(percentile([42], 1)).toBe(42);
    expect(percentile([42], 99)).toBe(42);
  });

  it('refuses an empty sample with invalid_option', () => {
    expect(() => percentile([], 50)).toThrow(expect.objectContaining({ code: 'invalid_option' }));
  });

  it('always gives one of the values, no more than the max', () => {
    fc.assert(
      fc.property(valuesArb, pArb, (values, p) => {
        const value = percentile(values, p);

        expect(values).toContain(value);
        expect(value).toBeLessThanOrEqual(Math.max(...values));
      }),
    );
  });

  it('never decreases as p grows', () => {
    fc.assert(
      fc.property(valuesArb, pArb, pArb, (values, p, q) => {
        const [low, high] = p <= q ? [p, q] : [q, p];

        expect(percentile(values, low)).toBeLessThanOrEqual(percentile(values, high));
      }),
    );
  });
});

// Helpers

// Polls between macrotasks; bounded so a broken pool fails the test instead of hanging it.
async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs}ms`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

const valuesArb = fc.array(fc.nat({ max: 100_000 }), { minLength: 1, maxLength: 200 });
const pArb = fc.integer({ min: 1, max: 100 });

async function copies(type: string, count: number) {
  const fixture = await loadFixture(type);
  return Array.from({ length: count }, () => createDelivery(fixture));
}

function result(delivered: boolean, durationMs: number, attempts: number): DeliveryResult {
  const attempt = { status: 200, error: null, at: '2026-12-01T12:00:00.000Z', duration_ms: 1 };
  return {
    event: { id: 'evt_x', type: 'install.created', created_at: '', data: {} },
    delivered,
    attempts: Array.from({ length: attempts }, (_, i) => ({ ...attempt, attempt: i + 1 })),
    duration_ms: durationMs,
  };
}
