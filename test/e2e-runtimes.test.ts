/**
 * The whole product on each runtime: the simulator signs all seven fixtures and one tampered
 * copy, delivers them to handler.ts running as a real process, and the Slack sink, which
 * fails its first post, ends with exactly one message per install.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type CliIo, main } from '../simulator/cli.ts';
import { EVENT_TYPES } from '../simulator/events.ts';
import { type HandlerProcess, RUNTIMES, startHandler } from '../simulator/handler-process.ts';
import { type LocalServer, listenLocal } from '../simulator/listen.ts';
import { createSlackSink } from '../simulator/slack-sink.ts';
import { TEST_SECRET } from './support/deliveries.ts';

const INSTALLS = 3;

describe.each(RUNTIMES)('simulator -> handler.ts on %s -> Slack sink', (runtime) => {
  const sink = createSlackSink();
  let sinkServer: LocalServer;
  let handler: HandlerProcess;
  let folder: string;
  let run: { exitCode: number; report: SimulatorReport; stderr: string[] };

  beforeAll(async () => {
    folder = mkdtempSync(join(tmpdir(), `e2e-${runtime}-`));
    sinkServer = await listenLocal(sink.fetch, 0);
    handler = await startHandler(runtime, {
      PLATFORM_SIGNING_SECRET: TEST_SECRET,
      SLACK_WEBHOOK_URL: `http://127.0.0.1:${sinkServer.port}/services/e2e`,
    });
    sink.fail({ status: 500, count: 1 });

    const events = [...Array(INSTALLS - 1).fill('install.created'), ...EVENT_TYPES];
    const argv = [
      ...['--url', `${handler.origin}/webhooks/platform`, '--secret', TEST_SECRET],
      ...events.flatMap((type) => ['--event', type]),
      ...['--unique-buyer', '--tamper', '--delay-scale', '0.001', '--json'],
      ...['--dlq', join(folder, 'dlq.jsonl')],
    ];
    run = await runCli(argv);
  });

  afterAll(async () => {
    await handler?.stop();
    await sinkServer?.close();
    rmSync(folder, { recursive: true, force: true });
  });

  it('delivers every event and exits 0', () => {
    expect(run.exitCode).toBe(0);
    expect(run.report.summary).toMatchObject({
      sent: INSTALLS + EVENT_TYPES.length - 1,
      delivered: INSTALLS + EVENT_TYPES.length - 1,
      dead_lettered: 0,
    });
  });

  it('retries the delivery whose Slack post failed, and only that one', () => {
    expect(run.report.summary.retried).toBe(1);
    expect(sink.rejected.map((r) => r.status)).toEqual([500]);
  });

  it('posts exactly one Slack message per install', () => {
    const installs = run.report.results.filter((r) => r.type === 'install.created');
    expect(installs).toHaveLength(INSTALLS);
    for (const install of installs) {
      const tag = install.id.slice(-8);
      const texts = sink.messages.map((m) => m.text).filter((t) => t.includes(`+${tag}@`));
      expect(texts).toEqual([`ada+${tag}@example.com just installed Support Triage Pack`]);
    }
  });

  it('posts one line for each other event that has one, and none for daily usage', () => {
    const texts = sink.messages.map((m) => m.text);
    expect(texts).toHaveLength(INSTALLS + EVENT_TYPES.length - 2);
    expect(texts.filter((t) => t.includes('canceled'))).toHaveLength(1);
    expect(texts).toContain('Payout po_3Fh8 of $482.50 was paid');
  });

  it('refuses the tampered copy with 401 and posts nothing for it', async () => {
    expect(run.report.tampered).toEqual([expect.objectContaining({ status: 401, rejected: true })]);
    // The log line travels through a pipe and can arrive after the answer.
    const refusal = () => handler.deliveries().find((l) => l.outcome === 'signature_mismatch');
    await vi.waitFor(() => expect(refusal()).toMatchObject({ status: 401 }), { timeout: 5_000 });
  });

  it('leaves nothing in the dead-letter file', () => {
    expect(existsSync(join(folder, 'dlq.jsonl'))).toBe(false);
  });
});

// Helpers

interface SimulatorReport {
  summary: { sent: number; delivered: number; retried: number; dead_lettered: number };
  results: { id: string; type: string; delivered: boolean }[];
  tampered: { status: number; rejected: boolean }[];
}

async function runCli(argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io: CliIo = {
    stdout: (line) => stdout.push(line),
    stderr: (line) => stderr.push(line),
    env: {},
  };
  const exitCode = await main(argv, io);
  return { exitCode, report: JSON.parse(stdout.join('\n')) as SimulatorReport, stderr };
}
