import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  computeBackoffDelayMs,
  computeRetryDelayMs,
  DEFAULT_MAX_DELAY_MS,
  MAX_ATTEMPTS,
} from '../simulator/backoff.ts';

const RETRIES = Array.from({ length: MAX_ATTEMPTS - 1 }, (_, i) => i + 1);

describe('computeBackoffDelayMs', () => {
  it('doubles the ceiling from 1 s after each failed attempt', () => {
    const atCeiling = () => 1;

    expect(RETRIES.map((n) => computeBackoffDelayMs(n, {}, atCeiling))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 32_000,
    ]);
  });

  it('waits at most 63 s in all across the default schedule', () => {
    const total = RETRIES.reduce((sum, n) => sum + computeBackoffDelayMs(n, {}, () => 1), 0);

    expect(total).toBe(63_000);
  });

  it('jitters over the whole range below the ceiling', () => {
    expect(computeBackoffDelayMs(3, {}, () => 0)).toBe(0);
    expect(computeBackoffDelayMs(3, {}, () => 0.25)).toBe(1000);
  });

  it('stops growing at the cap', () => {
    expect(computeBackoffDelayMs(12, {}, () => 1)).toBe(DEFAULT_MAX_DELAY_MS);
    expect(computeBackoffDelayMs(5000, {}, () => 1)).toBe(DEFAULT_MAX_DELAY_MS);
  });

  it('runs the whole schedule in under a second at scale 0.001', () => {
    const total = RETRIES.reduce(
      (sum, n) => sum + computeBackoffDelayMs(n, { scale: 0.001 }, () => 1),
      0,
    );

    expect(total).toBeLessThan(1000);
  });

  it('refuses attempt 0 with invalid_option', () => {
    expect(() => computeBackoffDelayMs(0)).toThrow(
      expect.objectContaining({ code: 'invalid_option' }),
    );
  });

  it('refuses a negative scale with invalid_option', () => {
    expect(() => computeBackoffDelayMs(1, { scale: -1 })).toThrow(
      expect.objectContaining({ code: 'invalid_option' }),
    );
  });

  it('always stays within [0, min(cap, base * 2^(n-1)) * scale]', () => {
    fc.assert(
      fc.property(attemptArb, backoffArb, randomArb, (attempt, options, r) => {
        const ceiling = Math.min(options.capMs, options.baseMs * 2 ** (attempt - 1));
        const delay = computeBackoffDelayMs(attempt, options, () => r);

        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(ceiling * options.scale);
      }),
    );
  });
});

describe('computeRetryDelayMs', () => {
  it('uses the plain backoff when there is no Retry-After', () => {
    expect(computeRetryDelayMs(2, null, {}, () => 0.5)).toBe(1000);
  });

  it('raises the delay to a longer Retry-After', () => {
    expect(computeRetryDelayMs(1, 30_000, {}, () => 0.5)).toBe(30_000);
  });

  it('keeps the backoff when Retry-After is shorter', () => {
    expect(computeRetryDelayMs(6, 1000, {}, () => 1)).toBe(32_000);
  });

  it('caps a Retry-After past the cap', () => {
    expect(computeRetryDelayMs(1, 3_600_000, {}, () => 0)).toBe(DEFAULT_MAX_DELAY_MS);
  });

  it('scales Retry-After like every other delay', () => {
    expect(computeRetryDelayMs(1, 30_000, { scale: 0.001 }, () => 0)).toBe(30);
  });

  it('always lies between the capped Retry-After and the cap, both scaled', () => {
    fc.assert(
      fc.property(
        attemptArb,
        fc.option(fc.nat({ max: 10_000_000 })),
        backoffArb,
        randomArb,
        (attempt, retryAfterMs, options, r) => {
          const delay = computeRetryDelayMs(attempt, retryAfterMs, options, () => r);
          const floor = Math.min(options.capMs, retryAfterMs ?? 0) * options.scale;

          expect(delay).toBeGreaterThanOrEqual(floor);
          expect(delay).toBeLessThanOrEqual(options.capMs * options.scale);
        },
      ),
    );
  });
});

// Helpers

const attemptArb = fc.integer({ min: 1, max: 100 });
const randomArb = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const backoffArb = fc.record({
  baseMs: fc.integer({ min: 0, max: 100_000 }),
  capMs: fc.integer({ min: 0, max: 1_000_000 }),
  scale: fc.double({ min: 0, max: 10, noNaN: true }),
});
