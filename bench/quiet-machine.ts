/**
 * Waits, bounded, until no other `bench/run.ts` runs: on a 2-core machine two benchmarks at once
 * disturb each other's figures.
 */
import { spawnSync } from 'node:child_process';

/** How often to look again while another benchmark runs. */
export const QUIET_POLL_MS = 10_000;

/** How long to wait at most before measuring anyway. */
export const QUIET_MAX_WAIT_MS = 10 * 60_000;

/** Options for {@link waitForQuietMachine}; the probe and the clock are injectable. */
export interface QuietOptions {
  /** The command line pattern, as `pgrep -f` reads it. */
  pattern?: string;
  pollMs?: number;
  maxWaitMs?: number;
  isRunning?: (pattern: string) => boolean;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  onWait?: (waitedMs: number) => void;
}

/** What the wait found: whether the machine was quiet in the end, and how long it took. */
export interface QuietResult {
  quiet: boolean;
  waitedMs: number;
}

/** Resolves once no process matches `pattern`, or after `maxWaitMs` with `quiet: false`. */
export async function waitForQuietMachine(options: QuietOptions = {}): Promise<QuietResult> {
  const pattern = options.pattern ?? 'bench/run.ts';
  const pollMs = options.pollMs ?? QUIET_POLL_MS;
  const maxWaitMs = options.maxWaitMs ?? QUIET_MAX_WAIT_MS;
  const isRunning = options.isRunning ?? isProcessRunning;
  const sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  const now = options.now ?? Date.now;

  const startedMs = now();
  for (;;) {
    const waitedMs = now() - startedMs;
    if (!isRunning(pattern)) return { quiet: true, waitedMs };
    if (waitedMs >= maxWaitMs) return { quiet: false, waitedMs };
    options.onWait?.(waitedMs);
    await sleep(pollMs);
  }
}

function isProcessRunning(pattern: string): boolean {
  // pgrep leaves itself out and exits 0 only when something matched.
  return spawnSync('pgrep', ['-f', pattern], { timeout: 5_000 }).status === 0;
}
