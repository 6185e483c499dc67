/**
 * Follows another process's CPU time and peak memory from /proc while it runs. Once a child has
 * exited and been reaped its /proc entry is gone, so the figures are the last sample taken,
 * at most one poll interval before the end.
 */
import { readFileSync } from 'node:fs';
import { CLOCK_TICKS_PER_SECOND } from './server-process.ts';

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

/** Reads `pid`'s usage now, or null when the process is gone. */
export function readProcessUsage(pid: number): ProcessUsage | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    // Fields after the command name, which sits in parentheses and may hold spaces; utime and
    // stime are fields 14 and 15 of proc(5), so 12th and 13th after the name.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const toMicros = (ticks: string | undefined) =>
      (Number(ticks) * 1_000_000) / CLOCK_TICKS_PER_SECOND;
    const kilobytes = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
    // A zombie has no memory left to report; its last live reading stands.
    if (kilobytes === undefined) return null;
    return {
      userMicros: toMicros(fields[11]),
      systemMicros: toMicros(fields[12]),
      peakRssBytes: Number(kilobytes) * 1024,
    };
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
