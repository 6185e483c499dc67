import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deliver } from '../simulator/deliver.ts';
import { createRetryScheduler } from '../simulator/retry-scheduler.ts';
import { runBatch } from '../simulator/run.ts';
import { createSigner } from '../simulator/sign.ts';
import { answerInTurn, createFakeTarget, SECRET } from './simulator-fakes.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('createRetryScheduler', () => {
  it('fires an item once its due time has come, and not before', () => {
    const timers = createManualTimers();
    const scheduler = createRetryScheduler(timers);
    const fired: number[] = [];

    scheduler.schedule(100, () => fired.push(timers.now()));
    timers.advanceTo(99);
    expect(fired).toEqual([]);

    timers.advanceTo(1000);
    expect(fired).toEqual([100]);
    expect(scheduler.size()).toBe(0);
  });

  it('keeps one timer armed however many items are pending', () => {
    const timers = createManualTimers();
    const scheduler = createRetryScheduler(timers);

    for (let i = 0; i < 1000; i++) scheduler.schedule(1000 - i, () => undefined);

    expect(scheduler.size()).toBe(1000);
    expect(timers.armed()).toBe(1);
  });

  it('fires in due order, and items due at the same time in the order scheduled', () => {
    const timers = createManualTimers();
    const scheduler = createRetryScheduler(timers);
    const fired: string[] = [];

    for (const [name, dueMs] of [
      ['c', 30],
      ['a', 10],
      ['b1', 20],
      ['b2', 20],
    ] as const) {
      scheduler.schedule(dueMs, () => fired.push(name));
    }
    timers.advanceTo(100);

    expect(fired).toEqual(['a', 'b1', 'b2', 'c']);
  });

  it('re-arms its timer for an item due earlier than every pending one', () => {
    const timers = createManualTimers();
    const scheduler = createRetryScheduler(timers);
    const fired: number[] = [];

    scheduler.schedule(500, () => fired.push(timers.now()));
    scheduler.schedule(100, () => fired.push(timers.now()));
    timers.advanceTo(100);

    expect(fired).toEqual([100]);
    expect(timers.armed()).toBe(1);
  });

  it('waits again, without firing, when its timer wakes before the due time', () => {
    const timers = createManualTimers({ earlyShare: 0.5 });
    const scheduler = createRetryScheduler(timers);
    const fired: number[] = [];

    scheduler.schedule(64, () => fired.push(timers.now()));
    timers.advanceTo(63.9);
    expect(fired).toEqual([]);

    timers.advanceTo(1000);
    expect(fired).toEqual([64]);
  });

  it('fires an item that a callback schedules for now on a later turn of its timer', () => {
    const timers = createManualTimers();
    const scheduler = createRetryScheduler(timers);
    const order: string[] = [];

    scheduler.schedule(10, () => {
      order.push('first');
      scheduler.schedule(timers.now(), () => order.push('again'));
      order.push('first returned');
    });
    timers.advanceTo(10);

    expect(order).toEqual(['first', 'first returned', 'again']);
  });

  it('drops every pending item unfired on clear', () => {
    const timers = createManualTimers();
    const scheduler = createRetryScheduler(timers);
    const fired: number[] = [];

    scheduler.schedule(10, () => fired.push(10));
    scheduler.clear();
    timers.advanceTo(100);

    expect(fired).toEqual([]);
    expect(scheduler.size()).toBe(0);
    expect(timers.armed()).toBe(0);
  });

  it('still fires the other items when one callback throws, and rethrows it apart', () => {
    const rethrown: unknown[] = [];
    vi.spyOn(globalThis, 'queueMicrotask').mockImplementation((callback) => {
      try {
        callback();
      } catch (error) {
        rethrown.push(error);
      }
    });
    const timers = createManualTimers();
    const scheduler = createRetryScheduler(timers);
    const fired: string[] = [];

    scheduler.schedule(10, () => {
      throw new Error('boom');
    });
    scheduler.schedule(10, () => fired.push('after'));
    timers.advanceTo(10);

    expect(fired).toEqual(['after']);
    expect(rethrown).toEqual([new Error('boom')]);
  });

  it('refuses a NaN due time with invalid_option', () => {
    const scheduler = createRetryScheduler(createManualTimers());

    expect(() => scheduler.schedule(Number.NaN, () => undefined)).toThrow(
      expect.objectContaining({ code: 'invalid_option' }),
    );
  });

  it('resolves sleep(ms) once its clock has moved on by ms', async () => {
    const timers = createManualTimers();
    const scheduler = createRetryScheduler(timers);
    let woke = false;

    const sleeping = scheduler.sleep(250).then(() => {
      woke = true;
    });
    timers.advanceTo(249);
    await Promise.resolve();
    expect(woke).toBe(false);

    timers.advanceTo(250);
    await sleeping;
    expect(woke).toBe(true);
  });

  it("serves as deliver()'s sleep between a 503 and the retry that gets 200", async () => {
    const timers = createManualTimers();
    const scheduler = createRetryScheduler(timers);
    const target = createFakeTarget(answerInTurn(503));
    const event = { id: 'evt_1', type: 'install.created', created_at: 'x', data: {} };

    const delivering = deliver(event, {
      url: 'http://127.0.0.1/webhooks/platform',
      sign: createSigner(SECRET),
      fetch: target.fetch,
      random: () => 0.5,
      sleep: scheduler.sleep,
    });
    while (scheduler.size() === 0) await new Promise((resolve) => setImmediate(resolve));
    timers.advanceTo(500);
    const result = await delivering;

    expect(result.delivered).toBe(true);
    expect(result.attempts.map((a) => a.status)).toEqual([503, 200]);
  });

  it('hands each item to its callback, as setTimeout hands on its extra arguments', () => {
    const timers = createManualTimers();
    const scheduler = createRetryScheduler(timers);
    const fired: string[] = [];
    const note = (item: { name: string }) => fired.push(item.name);

    scheduler.schedule(20, note, { name: 'second' });
    scheduler.scheduleAfter(10, note, { name: 'first' });
    timers.advanceTo(100);

    expect(fired).toEqual(['first', 'second']);
  });

  it('tells onFire each due time and the clock as it fires, before the callback runs', () => {
    const timers = createManualTimers({ earlyShare: 0.5 });
    const heard: string[] = [];
    const scheduler = createRetryScheduler({
      ...timers,
      onFire: (dueMs, firedMs) => heard.push(`due ${dueMs} fired ${firedMs}`),
    });

    scheduler.scheduleAfter(40, () => heard.push('callback'));
    timers.advanceTo(100);

    expect(heard).toEqual(['due 40 fired 40', 'callback']);
  });

  it('leaves an item that comes due while callbacks run for its next turn', () => {
    let nowMs = 0;
    const armed: (() => void)[] = [];
    const scheduler = createRetryScheduler({
      now: () => nowMs,
      setTimer: (fire) => armed.push(fire),
      clearTimer: () => undefined,
    });
    const fired: string[] = [];

    scheduler.schedule(10, () => {
      fired.push('slow');
      nowMs += 5;
    });
    scheduler.schedule(12, () => fired.push('came due meanwhile'));
    nowMs = 10;
    armed.shift()?.();

    expect(fired).toEqual(['slow']);
    armed.shift()?.();
    expect(fired).toEqual(['slow', 'came due meanwhile']);
  });

  it('holds 1,000 deliveries waiting to retry as 1,000 entries under one timer', async () => {
    const timers = createManualTimers();
    const scheduler = createRetryScheduler(timers);
    const attempts = new Map<string, number>();
    const target = createFakeTarget((received) => {
      const seen = (attempts.get(received.event.id) ?? 0) + 1;
      attempts.set(received.event.id, seen);
      return new Response(null, { status: seen === 1 ? 503 : 200 });
    });
    const events = Array.from({ length: 1000 }, (_, i) => ({
      id: `evt_${i}`,
      type: 'install.created',
      created_at: '2026-12-01T12:00:00Z',
      data: {},
    }));

    const batch = runBatch(events, {
      url: 'http://127.0.0.1/webhooks/platform',
      sign: createSigner(SECRET),
      fetch: target.fetch,
      concurrency: events.length,
      scheduler,
    });
    while (scheduler.size() < events.length) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(timers.armed()).toBe(1);

    timers.advanceTo(MAX_FIRST_RETRY_MS);
    const { summary } = await batch;

    expect(summary).toMatchObject({ sent: 1000, delivered: 1000, retried: 1000 });
    expect(scheduler.size()).toBe(0);
  });

  it('always fires every item exactly once, never early, in due order', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 200 }), earlyShareArb, (steps, earlyShare) => {
        const timers = createManualTimers({ earlyShare });
        const scheduler = createRetryScheduler(timers);
        const fired: { id: number; dueMs: number; atMs: number }[] = [];

        steps.forEach(({ waitMs, dueInMs }, id) => {
          timers.advanceTo(timers.now() + waitMs);
          const dueMs = timers.now() + dueInMs;
          scheduler.schedule(dueMs, () => fired.push({ id, dueMs, atMs: timers.now() }));
        });
        timers.advanceTo(timers.now() + MAX_DUE_IN_MS + 1);

        expect(fired.map((f) => f.id).sort((a, b) => a - b)).toEqual(steps.map((_, id) => id));
        for (const f of fired) expect(f.atMs).toBeGreaterThanOrEqual(f.dueMs);
        for (let i = 1; i < fired.length; i++) {
          const [before, after] = [fired[i - 1], fired[i]] as [Fire, Fire];
          expect(isInDueOrder(before, after)).toBe(true);
        }
        expect(scheduler.size()).toBe(0);
      }),
    );
  });

  it('always fires within 1 ms of the due time when its timer is punctual', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 100 }), (steps) => {
        const timers = createManualTimers();
        const scheduler = createRetryScheduler(timers);
        const lateness: number[] = [];

        for (const { waitMs, dueInMs } of steps) {
          timers.advanceTo(timers.now() + waitMs);
          const dueMs = timers.now() + dueInMs;
          scheduler.schedule(dueMs, () => lateness.push(timers.now() - dueMs));
        }
        timers.advanceTo(timers.now() + MAX_DUE_IN_MS + 1);

        expect(lateness).toHaveLength(steps.length);
        for (const ms of lateness) expect(ms).toBeLessThanOrEqual(1);
      }),
    );
  });
});

// Helpers

const MAX_DUE_IN_MS = 5000;

/** The first retry waits up to the 1 s base delay. */
const MAX_FIRST_RETRY_MS = 1000;

type Fire = { id: number; dueMs: number };

/** Earlier due first; the same due in the order scheduled (ids count up as scheduled). */
function isInDueOrder(before: Fire, after: Fire): boolean {
  return before.dueMs < after.dueMs || (before.dueMs === after.dueMs && before.id < after.id);
}

/**
 * A clock that moves only when told, and timers on it. A timer fires at its delay, or with
 * `earlyShare` that much of its delay early, as a real timer rounding to whole ms can.
 */
function createManualTimers(options: { earlyShare?: number } = {}) {
  const earlyShare = options.earlyShare ?? 0;
  let nowMs = 0;
  let nextHandle = 0;
  const timers = new Map<number, { atMs: number; fire: () => void }>();

  return {
    now: () => nowMs,
    setTimer(fire: () => void, delayMs: number): unknown {
      const handle = nextHandle++;
      timers.set(handle, { atMs: nowMs + delayMs * (1 - earlyShare), fire });
      return handle;
    },
    clearTimer(handle: unknown): void {
      timers.delete(handle as number);
    },
    armed: () => timers.size,
    /** Moves the clock to `targetMs`, firing each timer due by then at its own time. */
    advanceTo(targetMs: number): void {
      for (;;) {
        let next: [number, { atMs: number; fire: () => void }] | undefined;
        for (const entry of timers) {
          if (entry[1].atMs <= targetMs && (next === undefined || entry[1].atMs < next[1].atMs)) {
            next = entry;
          }
        }
        if (next === undefined) break;
        timers.delete(next[0]);
        nowMs = Math.max(nowMs, next[1].atMs);
        next[1].fire();
      }
      nowMs = Math.max(nowMs, targetMs);
    },
  };
}

const stepArb = fc.record({
  waitMs: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 500, noNaN: true })),
  dueInMs: fc.oneof(
    fc.integer({ min: 0, max: 100 }),
    fc.double({ min: 0, max: MAX_DUE_IN_MS, noNaN: true }),
  ),
});

const earlyShareArb = fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.9, noNaN: true }));
