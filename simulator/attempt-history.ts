/**
 * A delivery's attempts, kept as plain numbers while it waits for the next one: four per
 * attempt in one flat array, with each distinct error text stored once per recorder. Full
 * {@link Attempt} records are made only when a report, a result or a dead letter asks.
 */

/** One attempt as recorded in results and dead letters; `status` is null on a network error. */
export type Attempt = {
  attempt: number;
  status: number | null;
  error: string | null;
  at: string;
  duration_ms: number;
};

/** What one attempt leaves behind; `startedMs` is epoch milliseconds by the delivery's clock. */
export type AttemptOutcome = {
  startedMs: number;
  status: number | null;
  error: string | null;
  duration_ms: number;
};

/** A delivery's attempts in order, as {@link createAttemptRecorder} encodes them. */
export type AttemptHistory = readonly number[];

/** Encodes attempt histories and turns them back into records; one per batch of deliveries. */
export type AttemptRecorder = {
  /** A new history with `outcome` added; a history is never changed in place. */
  append: (history: AttemptHistory, outcome: AttemptOutcome) => AttemptHistory;
  /** Attempt number `attempt` (from 1) of a history, as a full record. */
  toAttempt: (history: AttemptHistory, attempt: number) => Attempt;
  /** Every attempt of a history, as full records. */
  toAttempts: (history: AttemptHistory) => Attempt[];
};

/** The empty history every delivery starts with. */
export const NO_ATTEMPTS: AttemptHistory = [];

// Slots of one attempt: start time, status, error text number, duration.
const SLOTS_PER_ATTEMPT = 4;
// HTTP statuses and error numbers are never negative, so -1 can stand for null in both.
const ABSENT = -1;

/** Counts the attempts a history holds. */
export function countAttempts(history: AttemptHistory): number {
  return history.length / SLOTS_PER_ATTEMPT;
}

/** When the first attempt of a non-empty history started: when its delivery began. */
export function firstStartedMs(history: AttemptHistory): number {
  return history[0] as number;
}

/** Creates a recorder whose histories share one table of error texts. */
export function createAttemptRecorder(): AttemptRecorder {
  // The same few texts ("fetch failed (ECONNREFUSED)", "timed out after 10000ms") come back
  // on attempt after attempt, each a fresh string: keeping one copy of each is what lets a
  // history be numbers alone.
  const errorTexts: string[] = [];
  const errorNumbers = new Map<string, number>();

  function numberError(error: string | null): number {
    if (error === null) return ABSENT;
    let number = errorNumbers.get(error);
    if (number === undefined) {
      number = errorTexts.push(error) - 1;
      errorNumbers.set(error, number);
    }
    return number;
  }

  function toAttempt(history: AttemptHistory, attempt: number): Attempt {
    const first = (attempt - 1) * SLOTS_PER_ATTEMPT;
    const slot = (offset: number) => history[first + offset] as number;
    const [startedMs, status, error, durationMs] = [slot(0), slot(1), slot(2), slot(3)];
    return {
      attempt,
      status: status === ABSENT ? null : status,
      error: error === ABSENT ? null : (errorTexts[error] as string),
      at: new Date(startedMs).toISOString(),
      duration_ms: durationMs,
    };
  }

  return {
    append: (history, outcome) =>
      // concat allocates exactly what it needs, where push would leave room for a dozen more.
      history.concat(
        outcome.startedMs,
        outcome.status ?? ABSENT,
        numberError(outcome.error),
        outcome.duration_ms,
      ),
    toAttempt,
    toAttempts: (history) =>
      Array.from({ length: countAttempts(history) }, (_, index) => toAttempt(history, index + 1)),
  };
}
