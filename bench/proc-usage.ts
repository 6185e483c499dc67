/**
 * Follows another process's CPU time and peak memory from /proc while it runs. Once a child has
 * exited and been reaped its /proc entry is gone, so the figures are the last sample taken,
 * at most one poll interval before the end.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
export const CLOCK_TICKS_PER_SECOND = readClockTicks();

/** One reading of a process: user and system CPU time, and its peak resident set (VmHWM). */
export interface ProcessUsage {
  userMicros: number;
  systemMicros: number;
  peakRssBytes: number;
}

/** A running sampler: `stop()` ends the polling and returns the last reading. */
export interface UsageSampler {
  stop(): ProcessUsage;
}

const DEFAULT_POLL_MS = 20;

/** `pid`'s user and system CPU time so far, over all its threads; throws once it is gone. */
export function readCpuMicros(pid: number): { userMicros: number; systemMicros: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which sits in parentheses and may hold spaces; utime and
  // stime are fields 14 and 15 of proc(5), so 12th and 13th after the name.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const toMicros = (ticks: string | undefined) =>
    (Number(ticks) * 1_000_000) / CLOCK_TICKS_PER_SECOND;
  return { userMicros: toMicros(fields[11]), systemMicros: toMicros(fields[12]) };
}

/** Reads `pid`'s usage now, or null when the process is gone. */
export function readProcessUsage(pid: number): ProcessUsage | null {
  try {
    const cpu = readCpuMicros(pid);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kilobytes = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
    // A zombie has no memory left to report; its last live reading stands.
    if (kilobytes === undefined) return null;
    return { ...cpu, peakRssBytes: Number(kilobytes) * 1024 };
  } catch {
    return null;
  }
}

/** Polls `pid` every `pollMs` until stopped, keeping the latest reading. */
export function sampleProcessUsage(pid: number, pollMs = DEFAULT_POLL_MS): UsageSampler {
  let last: ProcessUsage = { userMicros: 0, systemMicros: 0, peakRssBytes: 0 };
  const take = () => {
    last = readProcessUsage(pid) ?? last;
  };
  take();
  const timer = setInterval(take, pollMs);

  return {
    stop() {
      clearInterval(timer);
      take();
      return last;
    },
  };
}

function readClockTicks(): number {
  const result = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const ticks = Number(result.stdout?.trim());
  return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
}
