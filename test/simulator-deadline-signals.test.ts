import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createDeadlineSignals } from '../simulator/deadline-signals.ts';

const reason = () => new DOMException('The operation was aborted due to timeout', 'TimeoutError');

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('createDeadlineSignals', () => {
  it('aborts with the reason once the timeout has passed, and not before', () => {
    const takeSignal = createDeadlineSignals(reason, Date.now);
    const { signal } = takeSignal(50);

    vi.advanceTimersByTime(49);
    expect(signal.aborted).toBe(false);

    vi.advanceTimersByTime(1);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toMatchObject({ name: 'TimeoutError' });
  });

  it('gives attempts timing out in the same millisecond one signal, others their own', () => {
    const takeSignal = createDeadlineSignals(reason, Date.now);

    const first = takeSignal(100);
    const sameDeadline = takeSignal(100);
    const later = takeSignal(101);

    expect(sameDeadline.signal).toBe(first.signal);
    expect(later.signal).not.toBe(first.signal);
    expect(vi.getTimerCount()).toBe(2);
  });

  it('clears its timer once every attempt on a deadline has ended in time', () => {
    const takeSignal = createDeadlineSignals(reason, Date.now);
    const first = takeSignal(100);
    const second = takeSignal(100);

    first.release();
    first.release();
    expect(vi.getTimerCount()).toBe(1);

    second.release();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1000);
    expect(first.signal.aborted).toBe(false);
  });

  it('still aborts the attempts left on a deadline when another one ends', () => {
    const takeSignal = createDeadlineSignals(reason, Date.now);
    const done = takeSignal(100);
    const hanging = takeSignal(100);

    done.release();
    vi.advanceTimersByTime(100);

    expect(hanging.signal.aborted).toBe(true);
  });

  it('opens a fresh signal for a deadline after an earlier one was released', () => {
    const takeSignal = createDeadlineSignals(reason, Date.now);
    const released = takeSignal(100);
    released.release();

    const next = takeSignal(100);

    expect(next.signal).not.toBe(released.signal);
    vi.advanceTimersByTime(100);
    expect(next.signal.aborted).toBe(true);
  });

  it('never gives an attempt less than its timeout, wherever in a millisecond it starts', () => {
    const setTimer = vi.spyOn(globalThis, 'setTimeout');
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e6, noNaN: true }), timeoutArb, (nowMs, timeoutMs) => {
        setTimer.mockClear();
        const takeSignal = createDeadlineSignals(reason, () => nowMs);

        takeSignal(timeoutMs);

        const delayMs = setTimer.mock.calls[0]?.[1] ?? Number.NaN;
        expect(delayMs).toBeGreaterThanOrEqual(timeoutMs);
        expect(delayMs).toBeLessThan(timeoutMs + 1);
      }),
    );
  });
});

// Helpers

const timeoutArb = fc.integer({ min: 1, max: 100 });
