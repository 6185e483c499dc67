import { parseArgs } from 'node:util';
import { pickSlackFault } from './faults.ts';
import { LOCAL_HOST, listenLocal } from './listen.ts';
import { createSlackSink } from './slack-sink.ts';

// Entry point: `npx tsx simulator/slack-sink-server.ts [--port 4000] [--fail-500 0.1] ...`.
// Prints each message.

const DEFAULT_PORT = 4000;

const { values } = parseArgs({
  options: {
    port: { type: 'string', short: 'p' },
    'fail-500': { type: 'string' },
    'fail-429': { type: 'string' },
    slow: { type: 'string' },
    'slow-ms': { type: 'string' },
    'retry-after': { type: 'string' },
  },
  strict: true,
});

/** A share of posts from 0 to 1, or exit 2 saying what was wrong. */
function share(flag: string, raw = '0'): number {
  const value = Number(raw);
  if (raw.trim() === '' || !(value >= 0 && value <= 1)) {
    console.error(`slack-sink: --${flag} "${raw}" is not a share from 0 to 1, e.g. 0.1.`);
    process.exit(2);
  }
  return value;
}

const faults = {
  share500: share('fail-500', values['fail-500']),
  share429Short: 0,
  share429Long: share('fail-429', values['fail-429']),
  shareSlow: share('slow', values.slow),
  slowMs: Number(values['slow-ms'] ?? 6_000),
  longRetryAfterSeconds: Number(values['retry-after'] ?? 5),
};
const anyFaults = faults.share500 + faults.share429Long + faults.shareSlow > 0;
const portText = values.port ?? process.env.PORT ?? String(DEFAULT_PORT);
const port = Number(portText);

if (!/^\d+$/.test(portText) || port > 65_535) {
  console.error(`slack-sink: port "${portText}" is not a port number from 0 to 65535.`);
  process.exit(2);
}

const sink = createSlackSink({
  onMessage: (message) => console.log(`Slack <- ${message.text}`),
  ...(anyFaults ? { faults: () => pickSlackFault(faults, Math.random) } : {}),
});

try {
  const server = await listenLocal(sink.fetch, port);
  const base = `http://${LOCAL_HOST}:${server.port}`;
  console.error(`slack-sink: listening on ${base}/services/... (any path works)`);
  console.error(
    `slack-sink: control with GET /_sink/messages, POST /_sink/fail, POST /_sink/reset`,
  );
  if (anyFaults) {
    console.error(
      `slack-sink: failing posts on purpose: ${faults.share500} with 500, ` +
        `${faults.share429Long} with 429, ${faults.shareSlow} held ${faults.slowMs} ms`,
    );
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void server.close());
  }
} catch (error) {
  const why = (error as Error).message;
  console.error(`slack-sink: cannot listen on ${LOCAL_HOST}:${port}: ${why}`);
  process.exit(1);
}
