import { type CliIo, main } from './cli.ts';
import { EVENT_TYPES } from './events.ts';
import { type HandlerProcess, startHandler } from './handler-process.ts';
import { LOCAL_HOST, listenLocal } from './listen.ts';
import { SimulatorError } from './simulator-error.ts';
import { createSlackSink } from './slack-sink.ts';

// Entry point for `npm run demo`: needs no configuration, leaves nothing running.

const INSTALL_COUNT = 3;

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
let handler: HandlerProcess | undefined;
let exitCode = 1;

try {
  const sinkOrigin = `http://${LOCAL_HOST}:${sinkServer.port}`;
  // The handler picks its own port and says which, so no other program can take it first.
  handler = await startHandler('node', {
    PLATFORM_SIGNING_SECRET: secret,
    SLACK_WEBHOOK_URL: `${sinkOrigin}/services/demo`,
  });
  const handlerOrigin = handler.origin;
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
  const output = [...(handler?.lines ?? []), ...(handler?.stderr ?? [])];
  await handler?.stop('SIGTERM');
  await sinkServer.close();
  if (exitCode !== 0 && output.length > 0) {
    io.stderr('demo: the handler said:');
    for (const line of output) io.stderr(`  handler | ${line}`);
  }
}

process.exitCode = exitCode;
