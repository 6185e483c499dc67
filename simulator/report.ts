import type { AttemptReport } from './deliver.ts';
import type { RunSummary } from './run.ts';
import type { TamperResult } from './tamper.ts';

/** Whether to colour output; the CLI decides from the TTY and NO_COLOR. */
export type FormatOptions = { colour: boolean };

const ANSI = { red: 31, green: 32, yellow: 33, dim: 2 } as const;

/** One line per attempt: time, type, id, attempt n/max, the answer, and what happens next. */
export function formatAttemptLine(report: AttemptReport, options: FormatOptions): string {
  const { event, attempt, maxAttempts, nextDelayMs } = report;
  const head = paint(`${formatClock(attempt.at)} ${event.type} ${event.id}`, 'dim', options);
  const answer = formatAnswer(attempt.status, attempt.error);
  const took = formatDuration(attempt.duration_ms);

  let next: string;
  if (nextDelayMs !== null) {
    next = paint(`retry in ${formatDuration(nextDelayMs)}`, 'yellow', options);
  } else if (isSuccess(attempt.status)) {
    next = paint('delivered', 'green', options);
  } else {
    next = paint('dead-lettered', 'red', options);
  }

  const count = `${attempt.attempt}/${maxAttempts}`;
  return `${head} attempt ${count} -> ${answer} in ${took}, ${next}`;
}

/** One line for a wrongly signed copy: refused with 401 as expected, or not. */
export function formatTamperLine(result: TamperResult, at: string, options: FormatOptions): string {
  const { event } = result;
  const head = paint(`${formatClock(at)} ${event.type} ${event.id}`, 'dim', options);
  const answer = formatAnswer(result.status, result.error);
  const took = formatDuration(result.duration_ms);
  const verdict = result.rejected
    ? paint('refused as expected', 'green', options)
    : paint('NOT refused with 401: the target must reject a bad signature', 'red', options);

  return `${head} tampered -> ${answer} in ${took}, ${verdict}`;
}

/** The summary block printed after a run. */
export function formatSummary(
  summary: RunSummary,
  tampered: readonly TamperResult[],
  options: FormatOptions,
): string[] {
  const deadColour = summary.dead_lettered > 0 ? 'red' : 'green';
  const lines = [
    `${summary.sent} sent, ${summary.delivered} delivered, ${summary.retried} retried, ` +
      paint(`${summary.dead_lettered} dead-lettered`, deadColour, options),
  ];

  const latency = summary.latency_ms;
  if (latency !== null) {
    const [p50, p95, max] = [latency.p50, latency.p95, latency.max].map(formatDuration);
    lines.push(
      `latency per delivered event, first send to 2xx: p50 ${p50}, p95 ${p95}, max ${max}`,
    );
  }

  if (tampered.length > 0) {
    const refused = tampered.filter((t) => t.rejected).length;
    const colour = refused === tampered.length ? 'green' : 'red';
    const line = `${tampered.length} tampered, ${refused} refused with 401`;
    lines.push(paint(line, colour, options));
  }

  return lines;
}

/** Milliseconds for people: whole ms below a second, tenths of seconds above. */
export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

// Local wall-clock time with milliseconds, e.g. 12:00:01.234.
function formatClock(iso: string): string {
  const date = new Date(iso);
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return (
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` +
    `.${pad(date.getMilliseconds(), 3)}`
  );
}

function formatAnswer(status: number | null, error: string | null): string {
  return status === null ? `error: ${error}` : String(status);
}

function isSuccess(status: number | null): boolean {
  return status !== null && status >= 200 && status < 300;
}

function paint(text: string, colour: keyof typeof ANSI, options: FormatOptions): string {
  return options.colour ? `\u001b[${ANSI[colour]}m${text}\u001b[0m` : text;
}
