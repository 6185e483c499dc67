/**
 * Sends a fixed number of fresh signed deliveries with autocannon, as fast as the server
 * answers, so its rate can be set beside another load source that sends the same count.
 */
import autocannon, { type Result } from 'autocannon';
import type { Delivery } from './deliveries.ts';
import { signedRequests, WEBHOOK_PATH } from './load.ts';

/** Gives up on one request after this long; a fixed count must end even if the server stalls. */
const REQUEST_TIMEOUT_SECONDS = 10;

/** Options for {@link driveCount}. */
export interface CountLoadOptions {
  origin: string;
  count: number;
  connections: number;
  nextDelivery: () => Delivery;
}

/** What a fixed-count run achieved, timed by this process's clock up to the last answer. */
export interface CountLoadResult {
  answers: number;
  wallMs: number;
  answersPerSecond: number;
  statuses: Record<string, number>;
  errors: number;
  /** This process's CPU time during the run: autocannon's own cost. */
  clientCpuMicros: number;
}

/** Sends `count` deliveries over `connections` and resolves once every one was answered. */
export async function driveCount(options: CountLoadOptions): Promise<CountLoadResult> {
  const cpuBefore = process.cpuUsage();
  const startedMs = performance.now();

  // autocannon calls back on its next 1 s sampling tick, so its own end rounds a fixed-count
  // run up to whole seconds; the last answer marks the real end.
  let lastAnswerMs = startedMs;
  const result = await new Promise<Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${options.origin}${WEBHOOK_PATH}`,
        connections: options.connections,
        amount: options.count,
        timeout: REQUEST_TIMEOUT_SECONDS,
        requests: signedRequests(options.nextDelivery),
      },
      (error, done) => (error ? reject(error) : resolve(done)),
    );
    instance.on('response', () => {
      lastAnswerMs = performance.now();
    });
  });

  const wallMs = lastAnswerMs - startedMs;
  const cpu = process.cpuUsage(cpuBefore);
  const statuses: Record<string, number> = {};
  let answers = 0;
  for (const [status, { count }] of Object.entries(result.statusCodeStats)) {
    statuses[status] = count;
    answers += count;
  }

  return {
    answers,
    wallMs,
    answersPerSecond: answers / (wallMs / 1000),
    statuses,
    errors: result.errors,
    clientCpuMicros: cpu.user + cpu.system,
  };
}
