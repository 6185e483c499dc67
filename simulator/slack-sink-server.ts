import { parseArgs } from 'node:util';
import { LOCAL_HOST, listenLocal } from './listen.ts';
import { createSlackSink } from './slack-sink.ts';

// Entry point: `npx tsx simulator/slack-sink-server.ts [--port 4000]`. Prints each message.

const DEFAULT_PORT = 4000;

const { values } = parseArgs({
  options: { port: { type: 'string', short: 'p' } },
  strict: true,
});
const portText = values.port ?? process.env.PORT ?? String(DEFAULT_PORT);
const port = Number(portText);

if (!/^\d+$/.test(portText) || port > 65_535) {
  console.error(`slack-sink: port "${portText}" is not a port number from 0 to 65535.`);
  process.exit(2);
}

const sink = createSlackSink({
  onMessage: (message) => console.log(`Slack <- ${message.text}`),
});

try {
  const server = await listenLocal(sink.fetch, port);
  const base = `http://${LOCAL_HOST}:${server.port}`;
  console.error(`slack-sink: listening on ${base}/services/... (any path works)`);
  console.error(
    `slack-sink: control with GET /_sink/messages, POST /_sink/fail, POST /_sink/reset`,
  );

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => void server.close());
  }
} catch (error) {
  const why = (error as Error).message;
  console.error(`slack-sink: cannot listen on ${LOCAL_HOST}:${port}: ${why}`);
  process.exit(1);
}
