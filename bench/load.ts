/**
 * Drives one server with autocannon and measures how fast it answered, what it answered, and
 * what each answer cost the server in CPU time.
 */
import { readFileSync } from 'node:fs';
import autocannon, { type RequestOptions, type Result } from 'autocannon';
import type { Delivery } from './deliveries.ts';
import { CLOCK_TICKS_PER_SECOND } from './proc-usage.ts';
import type { ServerProcess } from './server-process.ts';
import { percentile } from './stats.ts';

export const WEBHOOK_PATH = '/webhooks/platform';

export interface LoadOptions {
  durationSeconds: number;
  connections: number;
  /** Requests per second over all connections; unset means as fast as the server answers. */
  overallRate?: number;
  nextDelivery: () => Delivery;
}

export interface LoadResult {
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** How many answers had each status code. */
  statuses: Record<string, number>;
  /** Connection errors and timeouts seen by the load generator. */
  errors: number;
  serverCpuMicrosPerRequest: number;
  /** The part of it spent in the kernel. */
  serverSystemMicrosPerRequest: number;
  /** The server's CPU time over the wall time: 1 is one core kept busy. */
  serverCpuShare: number;
  /** The load generator's own CPU time over the wall time; near 1, it is the bottleneck. */
  clientCpuShare: number;
  /** CPU time of every other process on the machine over the wall time, in cores: noise. */
  otherCpuShare: number;
}

/** Sends fresh signed deliveries to `server` for the duration and measures the answers. */
export async function driveLoad(server: ServerProcess, options: LoadOptions): Promise<LoadResult> {
  // autocannon's own histogram keeps whole milliseconds; these keep the fraction.
  const latenciesMs: number[] = [];
  const serverCpuBefore = server.cpuMicros();
  const serverSystemBefore = server.systemCpuMicros();
  const clientCpuBefore = process.cpuUsage();
  const machineCpuBefore = readMachineBusyMicros();
  const startedAt = performance.now();

  const result = await new Promise<Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${server.origin}${WEBHOOK_PATH}`,
        connections: options.connections,
        duration: options.durationSeconds,
        ...(options.overallRate === undefined ? {} : { overallRate: options.overallRate }),
        requests: signedRequests(options.nextDelivery),
      },
      (error, done) => (error ? reject(error) : resolve(done)),
    );
    instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
      latenciesMs.push(ms);
    });
  });

  const wallMicros = (performance.now() - startedAt) * 1000;
  const serverCpuMicros = server.cpuMicros() - serverCpuBefore;
  const serverSystemMicros = server.systemCpuMicros() - serverSystemBefore;
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const clientCpuMicros = clientCpu.user + clientCpu.system;
  const machineCpuMicros = readMachineBusyMicros() - machineCpuBefore;
  const sorted = Float64Array.from(latenciesMs).sort();
  const statuses: Record<string, number> = {};
  for (const [status, { count }] of Object.entries(result.statusCodeStats)) {
    statuses[status] = count;
  }

  return {
    requests: sorted.length,
    requestsPerSecond: sorted.length / result.duration,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.at(-1) ?? Number.NaN,
    statuses,
    errors: result.errors,
    serverCpuMicrosPerRequest: serverCpuMicros / Math.max(1, sorted.length),
    serverSystemMicrosPerRequest: serverSystemMicros / Math.max(1, sorted.length),
    serverCpuShare: serverCpuMicros / wallMicros,
    clientCpuShare: clientCpuMicros / wallMicros,
    otherCpuShare: Math.max(0, machineCpuMicros - serverCpuMicros - clientCpuMicros) / wallMicros,
  };
}

/** Busy CPU time of the whole machine so far (every core, all but idle and iowait). */
function readMachineBusyMicros(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal ...; in USER_HZ ticks (proc(5)).
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const busy = ticks.reduce(
    (sum, value, index) => (index === 3 || index === 4 ? sum : sum + value),
    0,
  );
  return (busy * 1_000_000) / CLOCK_TICKS_PER_SECOND;
}

/** One autocannon request template that sends a fresh signed delivery each time. */
export function signedRequests(nextDelivery: () => Delivery): RequestOptions[] {
  return [
    {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      setupRequest(request) {
        const delivery = nextDelivery();
        request.headers['x-platform-signature'] = delivery.signature;
        request.body = delivery.body;
        return request;
      },
    },
  ];
}
