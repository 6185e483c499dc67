/**
 * Abort signals for attempts' timeouts, one per millisecond of deadline, shared by every
 * attempt due to time out in it. Node 20 makes each AbortSignal by giving an EventTarget a new
 * prototype and then adding fields, which leaves some 130 bytes in V8's old space rather than
 * the young generation: a signal per attempt left 100,000 quick first attempts about 30 MB
 * more resident (npm run bench:scheduler). Attempts with one deadline time out together anyway.
 */
import { setMaxListeners } from 'node:events';

/** A signal taken for one attempt; `release` gives it back once the attempt has ended. */
export type DeadlineLease = { signal: AbortSignal; release: () => void };

/** Hands out the signal that aborts, with `reason()`, once `timeoutMs` have passed. */
export type DeadlineSignals = (timeoutMs: number) => DeadlineLease;

type Deadline = {
  controller: AbortController;
  timer: ReturnType<typeof setTimeout>;
  users: number;
};

/** Creates a pool of deadline signals on a clock that does not jump, such as performance.now. */
export function createDeadlineSignals(
  reason: () => unknown,
  now: () => number = () => performance.now(),
): DeadlineSignals {
  const deadlines = new Map<number, Deadline>();

  function openDeadline(deadlineMs: number): Deadline {
    const controller = new AbortController();
    // Every attempt's fetch may listen on the one signal: that is the point, not a leak.
    setMaxListeners(0, controller.signal);
    const timer = setTimeout(() => {
      deadlines.delete(deadlineMs);
      controller.abort(reason());
    }, deadlineMs - now());
    const deadline = { controller, timer, users: 0 };
    deadlines.set(deadlineMs, deadline);
    return deadline;
  }

  return (timeoutMs) => {
    // Rounded up, so an attempt is never given less than its timeout.
    const deadlineMs = Math.ceil(now() + timeoutMs);
    const deadline = deadlines.get(deadlineMs) ?? openDeadline(deadlineMs);
    deadline.users++;

    let released = false;
    return {
      signal: deadline.controller.signal,
      release() {
        if (released) return;
        released = true;
        deadline.users--;
        if (deadline.users > 0 || deadlines.get(deadlineMs) !== deadline) return;
        clearTimeout(deadline.timer);
        deadlines.delete(deadlineMs);
      },
    };
  };
}
