import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type CliIo, main } from './cli.ts';
import { EVENT_TYPES } from './events.ts';
import { LOCAL_HOST, listenLocal } from './listen.ts';
import { SimulatorError } from './simulator-error.ts';
import { createSlackSink } from './slack-sink.ts';

// Entry point for `npm run demo`: needs no configuration, leaves nothing running.

const HEALTH_TIMEOUT_MS = 15_000;
const HEALTH_POLL_MS = 100;
const STOP_GRACE_MS = 5_000;
const INSTALL_COUNT = 3;

const root = fileURLToPath(new URL('../', import.meta.url));
const handlerPath = fileURLToPath(new URL('../handler.ts', import.meta.url));

const io: CliIo = {
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
  isTTY: { stdout: process.stdout.isTTY, stderr: process.stderr.isTTY },
};

const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
const sink = createSlackSink({
  onMessage: (message) => io.stdout(`Slack <- ${message.text}`),
});
const sinkServer = await listenLocal(sink.fetch, 0);
const handlerPort = await findFreePort();
const handlerOutput: string[] = [];
let child: ChildProcess | undefined;
let exitCode = 1;

try {
  const handlerOrigin = `http://${LOCAL_HOST}:${handlerPort}`;
  const sinkOrigin = `http://${LOCAL_HOST}:${sinkServer.port}`;
  child = startHandler(handlerPort, `${sinkOrigin}/services/demo`);
  await waitForHealthy(`${handlerOrigin}/healthz`, child);
  io.stderr(`demo: handler on ${handlerOrigin}, Slack sink on ${sinkOrigin}`);

  // Slack fails once, so one event shows a retry on its way through.
  sink.fail({ status: 500, count: 1 });

  const others = EVENT_TYPES.filter((type) => type !== 'install.created');
  const events = [...Array(INSTALL_COUNT).fill('install.created'), ...others];
  const argv = [
    ...['--url', `${handlerOrigin}/webhooks/platform`, '--secret', secret],
    ...events.flatMap((type) => ['--event', type]),
    ...['--unique-buyer', '--tamper', '--delay-scale', '0.01'],
  ];
  exitCode = await main(argv, io);
} catch (error) {
  if (!(error instanceof SimulatorError)) throw error;
  io.stderr(`demo: ${error.message}`);
} finally {
  if (child) await stopChild(child);
  await sinkServer.close();
  if (exitCode !== 0 && handlerOutput.length > 0) {
    io.stderr('demo: the handler said:');
    for (const line of handlerOutput) io.stderr(`  handler | ${line}`);
  }
}

process.exitCode = exitCode;

function startHandler(port: number, slackWebhookUrl: string): ChildProcess {
  // tsx's loader from this project's node_modules, so no global tool is needed.
  const loader = import.meta.resolve('tsx');
  const started = spawn(process.execPath, ['--import', loader, handlerPath], {
    cwd: root,
    env: {
      ...process.env,
      PLATFORM_SIGNING_SECRET: secret,
      SLACK_WEBHOOK_URL: slackWebhookUrl,
      PORT: String(port),
      HOST: LOCAL_HOST,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  // Kept quiet unless something goes wrong; `npm start` shows the handler's own logs.
  for (const stream of [started.stdout, started.stderr]) {
    stream?.setEncoding('utf8');
    stream?.on('data', (text: string) => {
      handlerOutput.push(...text.trimEnd().split('\n'));
    });
  }
  return started;
}

async function waitForHealthy(url: string, handler: ChildProcess): Promise<void> {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;

  while (Date.now() < deadline) {
    if (hasExited(handler)) {
      const how = handler.signalCode ?? `code ${handler.exitCode}`;
      throw unavailable(`the handler stopped (${how}) before it was ready`);
    }
    const ok = await fetch(url, { signal: AbortSignal.timeout(HEALTH_POLL_MS * 10) })
      .then((response) => response.ok)
      .catch(() => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, HEALTH_POLL_MS));
  }

  throw unavailable(`GET /healthz did not answer 200 within ${HEALTH_TIMEOUT_MS}ms`);
}

function unavailable(why: string): SimulatorError {
  return new SimulatorError('handler_unavailable', `Cannot run the demo: ${why}.`);
}

async function stopChild(handler: ChildProcess): Promise<void> {
  if (hasExited(handler)) return;

  const exited = new Promise((resolve) => handler.once('exit', resolve));
  handler.kill('SIGTERM');
  // A handler that ignores SIGTERM past its grace period is killed outright.
  const timer = setTimeout(() => handler.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

function hasExited(handler: ChildProcess): boolean {
  return handler.exitCode !== null || handler.signalCode !== null;
}

// LIMITATION: another program could take the port between this probe and the handler's
// listen; the demo then fails with a clear message, and running it again picks a new port.
function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, LOCAL_HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
