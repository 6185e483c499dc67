import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AttemptOutcome,
  countAttempts,
  createAttemptRecorder,
  firstStartedMs,
  NO_ATTEMPTS,
} from '../simulator/attempt-history.ts';

const AT_MS = Date.UTC(2026, 11, 1, 12, 0, 0);

describe('createAttemptRecorder', () => {
  it('turns a history back into the records of its attempts, in order', () => {
    const recorder = createAttemptRecorder();
    let history = NO_ATTEMPTS;
    history = recorder.append(history, outcome(AT_MS, 503, null, 12));
    history = recorder.append(history, outcome(AT_MS + 900, null, 'timed out after 10000ms', 7));
    history = recorder.append(history, outcome(AT_MS + 2500, 200, null, 3.5));

    expect(recorder.toAttempts(history)).toEqual([
      { attempt: 1, status: 503, error: null, at: '2026-12-01T12:00:00.000Z', duration_ms: 12 },
      {
        attempt: 2,
        status: null,
        error: 'timed out after 10000ms',
        at: '2026-12-01T12:00:00.900Z',
        duration_ms: 7,
      },
      { attempt: 3, status: 200, error: null, at: '2026-12-01T12:00:02.500Z', duration_ms: 3.5 },
    ]);
    expect(recorder.toAttempt(history, 2).error).toBe('timed out after 10000ms');
    expect(countAttempts(history)).toBe(3);
    expect(firstStartedMs(history)).toBe(AT_MS);
  });

  it('keeps a history as numbers alone, error texts included', () => {
    const recorder = createAttemptRecorder();
    const refused = 'fetch failed (ECONNREFUSED)';
    const history = recorder.append(
      recorder.append(NO_ATTEMPTS, outcome(AT_MS, null, refused, 1)),
      outcome(AT_MS + 1, null, `fetch failed ${'(ECONNREFUSED)'}`, 1),
    );

    expect(history.every((slot) => typeof slot === 'number')).toBe(true);
    expect(recorder.toAttempts(history).map((a) => a.error)).toEqual([refused, refused]);
  });

  it('never changes a history in place', () => {
    const recorder = createAttemptRecorder();
    const first = recorder.append(NO_ATTEMPTS, outcome(AT_MS, 500, null, 1));

    const second = recorder.append(first, outcome(AT_MS + 1, 200, null, 1));

    expect(countAttempts(NO_ATTEMPTS)).toBe(0);
    expect(countAttempts(first)).toBe(1);
    expect(countAttempts(second)).toBe(2);
  });

  it('always gives back every outcome it was given, whatever their mix', () => {
    fc.assert(
      fc.property(fc.array(outcomeArb, { minLength: 1, maxLength: 7 }), (outcomes) => {
        const recorder = createAttemptRecorder();
        const history = outcomes.reduce(recorder.append, NO_ATTEMPTS);

        expect(recorder.toAttempts(history)).toEqual(
          outcomes.map((o, index) => ({
            attempt: index + 1,
            status: o.status,
            error: o.error,
            at: new Date(o.startedMs).toISOString(),
            duration_ms: o.duration_ms,
          })),
        );
      }),
    );
  });
});

// Helpers

function outcome(
  startedMs: number,
  status: number | null,
  error: string | null,
  durationMs: number,
): AttemptOutcome {
  return { startedMs, status, error, duration_ms: durationMs };
}

const outcomeArb = fc.record({
  startedMs: fc.integer({ min: 0, max: 8.64e15 }),
  status: fc.option(fc.integer({ min: 0, max: 599 })),
  error: fc.option(fc.constantFrom('fetch failed (ECONNREFUSED)', 'timed out after 5ms', '')),
  duration_ms: fc.double({ min: 0, max: 60_000, noNaN: true }),
});
