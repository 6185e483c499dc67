import { describe, expect, it } from 'vitest';
import { runNodeScript } from '../bench/node-script.ts';

const BENCH_TIMEOUT_MS = 90_000;

describe('npm run bench --quick', () => {
  it(
    'prints one JSON document with positive figures for every part of the run on node',
    async () => {
      const { code, stdout, stderr } = await runBench('bench/run.ts', [
        '--quick',
        '--json',
        '--runtime',
        'node',
      ]);
      expect(code, stderr).toBe(0);

      const report = JSON.parse(stdout);
      expect(Object.keys(report.runtimes)).toEqual(['node']);
      const node = report.runtimes.node;
      expect(node.ratio).toBeGreaterThan(0);
      for (const run of [node.receive, node.endToEnd]) {
        expect(run.ratio).toBeGreaterThan(0);
        for (const server of [run.handler, run.baseline]) {
          expect(server.requestsPerSecond.median).toBeGreaterThan(0);
          expect(server.p99Ms).toBeGreaterThan(0);
          expect(server.cpuMicrosPerRequest.median).toBeGreaterThan(0);
          expect(server.afterLoadRssBytes).toBeGreaterThan(0);
        }
      }
      expect(node.fixedRate.handler.requestsPerSecond).toBeGreaterThan(0);
      expect(node.rejections.map((r: { connections: number }) => r.connections)).toEqual([
        expect.any(Number),
        expect.any(Number),
        expect.any(Number),
      ]);
      expect(node.verify.sha256MegabytesPerSecond).toBeGreaterThan(0);
      expect(node.verify.sizes.map((s: { bytes: number }) => s.bytes)).toEqual([
        1024,
        64 * 1024,
        1024 * 1024,
      ]);
      expect(node.targets.receiveRatio.value).toBeGreaterThan(0);
      expect(node.targets.receiveRatio.cpuRatio).toBeGreaterThan(0);
      expect(typeof node.targets.receiveRatio.clientBound).toBe('boolean');
      expect(report.machine.cores).toBeGreaterThan(0);
    },
    BENCH_TIMEOUT_MS + 5_000,
  );
});

describe('npm run bench:breakdown', () => {
  it(
    'measures every server at the rate asked, all of them answering 200',
    async () => {
      const args = ['--runtime', 'node', '--rate', '500', '--duration', '1', '--repeats', '1'];
      const { code, stdout, stderr } = await runBench('bench/breakdown.ts', [...args, '--json']);
      expect(code, stderr).toBe(0);

      const report = JSON.parse(stdout);
      const [node] = report.results;
      expect(node.runtime).toBe('node');
      for (const [server, micros] of Object.entries(node.cpuMicros)) {
        expect(micros, server).toBeGreaterThan(0);
        expect(Object.keys(node.statuses[server]), server).toEqual(['200']);
        expect(node.statuses[server]['200'], server).toBeGreaterThan(200);
      }
      expect(Object.keys(node.stages).sort()).toEqual([
        'ledger',
        'logLine',
        'oneHmacCheck',
        'rest',
      ]);
      // The kernel's part is a part: clock ticks may round it to 0 in a run this short.
      for (const server of ['baseline', 'handler'] as const) {
        expect(node.kernelMicros[server], server).toBeGreaterThanOrEqual(0);
        expect(node.kernelMicros[server], server).toBeLessThanOrEqual(node.cpuMicros[server]);
      }
    },
    BENCH_TIMEOUT_MS + 5_000,
  );
});

describe('npm run bench:scheduler, deliver', () => {
  // A small run of each delivery scenario: no figure is asserted, only that every delivery was
  // pending at once, fired, and got through. One scenario per run skips the quiet-machine wait.
  const count = 2000;
  const runScenario = async (scenario: string) => {
    const args = ['--scenario', scenario, '--count', String(count)];
    // Due well after the last first attempt, so all are pending at the snapshot.
    args.push('--min-delay-ms', '1500', '--max-delay-ms', '2000');
    const { code, stdout, stderr } = await runBench('bench/retry-scheduler.ts', args, [
      '--expose-gc',
    ]);
    expect(code, stderr).toBe(0);
    return JSON.parse(stdout);
  };

  it(
    'holds every delivery pending at once on the heap, then fires each, never early',
    async () => {
      const result = await runScenario('deliver:heap');
      expect(result).toMatchObject({ pendingAtSnapshot: count, fired: count, delivered: count });
      expect(result.early).toBe(0);
      expect(result.pending.rssBytes).toBeGreaterThan(0);
    },
    BENCH_TIMEOUT_MS + 5_000,
  );

  it(
    'holds every delivery pending at once on a sleep option, then delivers each',
    async () => {
      // setTimeout rounds to whole milliseconds, so some of its fires come a little early.
      const result = await runScenario('deliver:set-timeout');
      expect(result).toMatchObject({ pendingAtSnapshot: count, fired: count, delivered: count });
    },
    BENCH_TIMEOUT_MS + 5_000,
  );
});

// Helpers

/** Runs a bench script as its own process, stopped if it outlives BENCH_TIMEOUT_MS. */
async function runBench(script: string, args: string[], nodeFlags: string[] = []) {
  const run = await runNodeScript(script, args, { nodeFlags, timeoutMs: BENCH_TIMEOUT_MS });
  if (run.timedOut)
    throw new Error(`${script} did not finish in ${BENCH_TIMEOUT_MS} ms:\n${run.stderr}`);
  return run;
}
