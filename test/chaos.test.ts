/**
 * The CI-sized chaos run: a few hundred installs through every fault at once, with the
 * handler restarted three times (SIGTERM or SIGKILL), on each runtime.
 */
import { describe, expect, it } from 'vitest';
import { runChaos } from '../simulator/chaos.ts';
import { RUNTIMES } from '../simulator/handler-process.ts';

const SEED = Number(process.env.CHAOS_SEED ?? 20261203);

describe.each(RUNTIMES)('chaos on %s', (runtime) => {
  it('loses nothing and duplicates nothing across restarts', { timeout: 120_000 }, async () => {
    const report = await runChaos({ runtime, seed: SEED, events: 300, restarts: 3 });
    console.log(
      `chaos ${runtime}: seed ${SEED}, ${report.sent} sent, ${report.delivered} delivered, ` +
        `${report.dead_lettered} dead-lettered, ${report.in_doubt} in doubt, ` +
        `restarts ${JSON.stringify(report.restarts)}`,
    );
    expect(report.restarts.graceful + report.restarts.hard).toBe(3);
    expect(report.findings.filter((f) => f.kind !== 'in_doubt')).toEqual([]);
    expect(report).toMatchObject({ lost: 0, duplicated: 0, verdict: 'pass' });
    expect(report.delivered + report.dead_lettered).toBe(300);
  });
});
