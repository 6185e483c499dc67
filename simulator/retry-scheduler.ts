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

/** Options for {@link createRetryScheduler}: its clock and timer, and a hook on every fire. */
export type SchedulerOptions = Partial<SchedulerTimers> & {
  /** Hears each item's due time and the clock as it fires, before its callback runs. */
  onFire?: (dueMs: number, firedMs: number) => void;
};

/**
 * Schedules `fire`, or `fire(item)` when an item is given, as setTimeout passes on its extra
 * arguments: one shared function and an item per entry cost less than a closure per entry.
 */
export type Schedule = {
  (whenMs: number, fire: () => void): void;
  <T>(whenMs: number, fire: (item: T) => void, item: T): void;
};

/** A set of callbacks, each waiting for its due time. */
export type RetryScheduler = {
  /** Calls `fire` once, when the clock has reached `dueMs`, after every earlier due item. */
  schedule: Schedule;
  /** Calls `fire` once, `delayMs` from now by the scheduler's clock. */
  scheduleAfter: Schedule;
  /** Resolves after `ms` by the scheduler's clock; fits deliver()'s `sleep` option. */
  sleep: (ms: number) => Promise<void>;
  /** Items scheduled and not fired yet. */
  size: () => number;
  /** Drops every pending item unfired and disarms the timer. */
  clear: () => void;
};

// A class for the reason PendingDelivery in deliver.ts is one: a literal's allocation site
// gets pretenured once most entries outlive a scavenge, which leaves the old space fragmented.
class Entry {
  readonly dueMs: number;
  readonly seq: number;
  readonly fire: (item: never) => void;
  readonly item: unknown;

  constructor(dueMs: number, seq: number, fire: (item: never) => void, item: unknown) {
    this.dueMs = dueMs;
    this.seq = seq;
    this.fire = fire;
    this.item = item;
  }
}

/** setTimeout fires at once when given more than a signed 32-bit count of milliseconds. */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

const REAL_TIMERS: SchedulerTimers = {
  now: () => performance.now(),
  setTimer: (fire, delayMs) => setTimeout(fire, delayMs),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Creates a scheduler on the real clock and setTimeout, or on the functions given. */
export function createRetryScheduler(options: SchedulerOptions = {}): RetryScheduler {
  const { now, setTimer, clearTimer, onFire } = { ...REAL_TIMERS, ...options };
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
    // Only what was due when the timer woke, and was scheduled by then: items that come due
    // while callbacks run wait for the next turn. A loop that went on would keep the
    // callbacks' own follow-up work (their promises) waiting behind ever more callbacks.
    const wokeMs = now();
    const seqLimit = nextSeq;
    for (let first = heap[0]; first !== undefined; first = heap[0]) {
      if (first.seq >= seqLimit || first.dueMs > wokeMs) break;
      popMin(heap);
      onFire?.(first.dueMs, now());
      try {
        (first.fire as (item: unknown) => void)(first.item);
      } catch (error) {
        // As a throwing setTimeout callback would: uncaught, without holding up the others.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    arm();
  }

  function schedule(dueMs: number, fire: (item: never) => void, item?: unknown): void {
    if (Number.isNaN(dueMs)) {
      throw new SimulatorError('invalid_option', 'Cannot schedule at NaN: give a due time.');
    }
    pushEntry(heap, new Entry(dueMs, nextSeq++, fire, item));
    arm();
  }

  function scheduleAfter(delayMs: number, fire: (item: never) => void, item?: unknown): void {
    schedule(now() + delayMs, fire, item);
  }

  return {
    schedule,
    scheduleAfter,
    sleep: (ms) => new Promise((resolve) => scheduleAfter(ms, resolve)),
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
