/**
 * Pending retries in one binary min-heap ordered by due time, with one timer armed for the
 * earliest. Holding 100k retries costs one small entry each rather than a timer each, and an
 * item never fires before its due time by the scheduler's own clock: a timer that wakes early
 * (timers round to whole milliseconds) only re-arms.
 */
import { SimulatorError } from './simulator-error.ts';

/** The clock and the one timer the scheduler uses; tests inject fakes. */
export type SchedulerTimers = {
  /** Milliseconds on a clock that does not jump, such as `performance.now`. */
  now: () => number;
  setTimer: (fire: () => void, delayMs: number) => unknown;
  clearTimer: (handle: unknown) => void;
};

/** A set of callbacks, each waiting for its due time. */
export type RetryScheduler = {
  /** Calls `fire` once, when the clock has reached `dueMs`, after every earlier due item. */
  schedule: (dueMs: number, fire: () => void) => void;
  /** Resolves after `ms` by the scheduler's clock; fits deliver()'s `sleep` option. */
  sleep: (ms: number) => Promise<void>;
  /** Items scheduled and not fired yet. */
  size: () => number;
  /** Drops every pending item unfired and disarms the timer. */
  clear: () => void;
};

type Entry = { dueMs: number; seq: number; fire: () => void };

/** setTimeout fires at once when given more than a signed 32-bit count of milliseconds. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

const REAL_TIMERS: SchedulerTimers = {
  now: () => performance.now(),
  setTimer: (fire, delayMs) => setTimeout(fire, delayMs),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Creates a scheduler on the real clock and setTimeout, or on the functions given. */
export function createRetryScheduler(timers: Partial<SchedulerTimers> = {}): RetryScheduler {
  const { now, setTimer, clearTimer } = { ...REAL_TIMERS, ...timers };
  const heap: Entry[] = [];
  // Ties go to the item scheduled first, so equal due times fire in the order given.
  let nextSeq = 0;
  let armed: { handle: unknown; dueMs: number } | null = null;

  function arm(): void {
    const first = heap[0];
    if (first === undefined || (armed !== null && armed.dueMs <= first.dueMs)) return;

    if (armed !== null) clearTimer(armed.handle);
    const delayMs = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, Math.ceil(first.dueMs - now())));
    armed = { handle: setTimer(onTimer, delayMs), dueMs: first.dueMs };
  }

  function onTimer(): void {
    armed = null;
    // Items scheduled by a callback wait for the next turn, so a callback that schedules
    // again at once cannot keep this loop going for ever.
    const seqLimit = nextSeq;
    for (let first = heap[0]; first !== undefined; first = heap[0]) {
      if (first.seq >= seqLimit || first.dueMs > now()) break;
      popMin(heap);
      try {
        first.fire();
      } catch (error) {
        // As a throwing setTimeout callback would: uncaught, without holding up the others.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    arm();
  }

  function schedule(dueMs: number, fire: () => void): void {
    if (Number.isNaN(dueMs)) {
      throw new SimulatorError('invalid_option', 'Cannot schedule at NaN: give a due time.');
    }
    pushEntry(heap, { dueMs, seq: nextSeq++, fire });
    arm();
  }

  return {
    schedule,
    sleep: (ms) => new Promise((resolve) => schedule(now() + ms, resolve)),
    size: () => heap.length,
    clear() {
      if (armed !== null) clearTimer(armed.handle);
      armed = null;
      heap.length = 0;
    },
  };
}

function isBefore(a: Entry, b: Entry): boolean {
  return a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.seq < b.seq);
}

function pushEntry(heap: Entry[], entry: Entry): void {
  // Sift up: move parents down into the hole until the new entry's place is found.
  let index = heap.push(entry) - 1;
  while (index > 0) {
    const parent = (index - 1) >> 1;
    const above = heap[parent] as Entry;
    if (!isBefore(entry, above)) break;
    heap[index] = above;
    index = parent;
  }
  heap[index] = entry;
}

function popMin(heap: Entry[]): void {
  const last = heap.pop();
  if (last === undefined || heap.length === 0) return;

  // Sift down: the last entry takes the root's place, then sinks below smaller children.
  let index = 0;
  for (;;) {
    const left = 2 * index + 1;
    if (left >= heap.length) break;
    const right = left + 1;
    const child =
      right < heap.length && isBefore(heap[right] as Entry, heap[left] as Entry) ? right : left;
    const below = heap[child] as Entry;
    if (!isBefore(below, last)) break;
    heap[index] = below;
    index = child;
  }
  heap[index] = last;
}
