/**
 * The plumbing of the HTTP fuzz suites: a raw HTTP/1.1 client on node:net that can send what
 * fetch refuses to (duplicate headers, lying lengths, trickled bytes), a Slack sink served on
 * 127.0.0.1, and a reader for a process's resident memory. Every wait here is bounded.
 */
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { serve } from '@hono/node-server';
import { REFUSALS, type RefusalCode } from '../../handler.ts';
import { createSlackSink, type SlackSink } from '../../simulator/slack-sink.ts';

/** One request as bytes go on the wire; `headers` keep their order, casing and repeats. */
export interface HttpInput {
  method: string;
  target: string;
  headers: readonly (readonly [name: string, value: string])[];
  body: Uint8Array;
  framing: Framing;
}

/**
 * How the body is delimited: an honest Content-Length, `chunks` chunks of equal size and no
 * length, no framing at all, or a Content-Length that lies by `by` bytes (negative: fewer).
 */
export type Framing =
  | { kind: 'length' }
  | { kind: 'chunked'; chunks: number }
  | { kind: 'none' }
  | { kind: 'lying_length'; by: number };

/** A response as read off the socket; `status` is null when none arrived. */
export interface RawAnswer {
  status: number | null;
  headers: Record<string, string>;
  body: Uint8Array;
  /** `complete` once a whole response was read, else how the wait ended. */
  ended: 'complete' | 'closed' | 'timeout';
}

/** How `sendRaw` puts the bytes on the wire. */
export interface SendOptions {
  /** Bytes per write; 64 KiB unless set. */
  chunkBytes?: number;
  /** Pause between writes, for a slow sender. */
  pauseMs?: number;
  /** Half-close after the last byte, so a server waiting for more sees end of stream. */
  endAfterWrite?: boolean;
  /** The response to a HEAD request has no body, whatever its headers say. */
  isHead?: boolean;
  timeoutMs?: number;
}

const DEFAULT_SEND_TIMEOUT_MS = 10_000;
const DEFAULT_CHUNK_BYTES = 64 * 1024;
const EARLY_ANSWER_BODY_BYTES = 64 * 1024;
const EARLY_ANSWER_WAIT_MS = 50;
const HEADER_END = Buffer.from('\r\n\r\n');

/** Encodes `input` as HTTP/1.1 bytes with `Host` and `Connection: close` first. */
export function encodeRequest(input: HttpInput): Uint8Array {
  const { framing, body } = input;
  const lines = [
    `${input.method} ${input.target} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: close',
  ];
  for (const [name, value] of input.headers) lines.push(`${name}: ${value}`);
  if (framing.kind === 'length') lines.push(`Content-Length: ${body.byteLength}`);
  if (framing.kind === 'lying_length') {
    lines.push(`Content-Length: ${Math.max(0, body.byteLength + framing.by)}`);
  }
  if (framing.kind === 'chunked') lines.push('Transfer-Encoding: chunked');
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  const payload = framing.kind === 'chunked' ? encodeChunked(body, framing.chunks) : body;
  return Buffer.concat([head, payload]);
}

/**
 * Sends a large upload the server is expected to refuse early, trying again (up to `attempts`
 * in all) when the connection closed before a byte of the answer was read.
 *
 * node:net destroys a socket whose write fails, unread answer and all, so it can lose a 413
 * that raced the server's reset of the upload; a Python client reads that same 413 every
 * time, so the loss is this client's and not the server's.
 */
export async function sendRefusedUpload(
  origin: string,
  bytes: Uint8Array,
  options: SendOptions = {},
  attempts = 3,
): Promise<RawAnswer> {
  for (let attempt = 1; ; attempt++) {
    const answer = await sendRaw(origin, bytes, options);
    if (answer.status !== null || answer.ended !== 'closed' || attempt >= attempts) return answer;
  }
}

/**
 * Sends `bytes` on a fresh connection to `origin` and reads the first response. A server that
 * answers before the upload is done stops the upload; a reset after a whole response is fine.
 */
export function sendRaw(
  origin: string,
  bytes: Uint8Array,
  options: SendOptions = {},
): Promise<RawAnswer> {
  const { port, hostname } = new URL(origin);
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const received: Buffer[] = [];

  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let settled = false;
    const settle = (ended: RawAnswer['ended']) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(readAnswer(Buffer.concat(received), options.isHead ?? false, ended));
    };
    const timer = setTimeout(() => settle('timeout'), options.timeoutMs ?? DEFAULT_SEND_TIMEOUT_MS);

    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      if (
        readAnswer(Buffer.concat(received), options.isHead ?? false, 'closed').ended === 'complete'
      ) {
        settle('complete');
      }
    });
    // A write after the server answered may fail with EPIPE or ECONNRESET; the answer stands.
    socket.on('error', () => {});
    socket.on('close', () => settle('closed'));
    socket.on('connect', async () => {
      const headBytes = Buffer.from(bytes).indexOf(HEADER_END) + HEADER_END.byteLength;
      let offset = 0;
      while (offset < bytes.byteLength) {
        // A server that already answered wants no more; and a write into a reset connection
        // destroys a node:net socket before it reads the answer waiting in its buffer.
        if (settled || received.length > 0) return;
        // Like curl waiting for 100 Continue: a large body goes out only if no early refusal
        // (such as 413 from Content-Length alone) comes back first.
        if (offset === headBytes && bytes.byteLength - offset > EARLY_ANSWER_BODY_BYTES) {
          await waitForData(socket, EARLY_ANSWER_WAIT_MS);
          if (settled || received.length > 0) return;
        }
        // The head and the body are cut apart, so the wait above falls between them.
        const end =
          offset < headBytes ? Math.min(offset + chunkBytes, headBytes) : offset + chunkBytes;
        const chunk = bytes.subarray(offset, end);
        await new Promise<void>((done) => socket.write(chunk, () => done()));
        offset = end;
        // A timer, unlike a microtask, lets the event loop read what has arrived meanwhile.
        if (offset < bytes.byteLength) await sleep(options.pauseMs ?? 0);
      }
      if (options.endAfterWrite && !settled) socket.end();
    });
  });
}

/** Connections that sent a head and part of a body, then went quiet. */
export interface StalledSenders {
  close(): void;
}

/**
 * Opens `count` connections that each declare `declaredBytes`, send `sentBytes` of them and
 * stall; resolves once every byte is written. `close` destroys them all.
 */
export async function openStalledSenders(
  origin: string,
  options: { count: number; declaredBytes: number; sentBytes: number },
): Promise<StalledSenders> {
  const { port, hostname } = new URL(origin);
  const head =
    `POST /webhooks/platform HTTP/1.1\r\nHost: 127.0.0.1\r\n` +
    `X-Platform-Signature: ${'a'.repeat(64)}\r\nContent-Length: ${options.declaredBytes}\r\n\r\n`;
  const sockets = Array.from({ length: options.count }, () => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.on('error', () => {});
    return socket;
  });
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          socket.write(head);
          socket.write(Buffer.alloc(options.sentBytes, 0x61), () => resolve());
        }),
    ),
  );
  return {
    close() {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** The `{ error, message }` body of a refusal, or null when the body is anything else. */
export function refusalOf(answer: RawAnswer): { error: string; message: string } | null {
  try {
    const value: unknown = JSON.parse(Buffer.from(answer.body).toString('utf8'));
    if (typeof value !== 'object' || value === null) return null;
    const { error, message } = value as Record<string, unknown>;
    if (typeof error !== 'string' || typeof message !== 'string') return null;
    return { error, message };
  } catch {
    return null;
  }
}

/** True when `error` is one of the handler's refusal codes and `status` is its status. */
export function isDocumentedRefusal(status: number | null, error: string): boolean {
  return Object.hasOwn(REFUSALS, error) && REFUSALS[error as RefusalCode] === status;
}

/** The short form of an answer used in reports: `401 malformed_signature`, `200 posted`. */
export function describeAnswer(answer: RawAnswer): string {
  if (answer.status === null) return `no answer (${answer.ended})`;
  const text = Buffer.from(answer.body).toString('utf8');
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    const code = value.error ?? value.outcome ?? (value.ok === true ? 'ok' : undefined);
    if (typeof code === 'string') return `${answer.status} ${code}`;
  } catch {}
  return `${answer.status} ${text === '' ? '(empty body)' : '(not JSON)'}`;
}

/** A Slack sink on 127.0.0.1 with the webhook URL to give the handler. */
export interface ServedSink {
  sink: SlackSink;
  webhookUrl: string;
  close(): Promise<void>;
}

/** Serves the simulator's Slack sink on 127.0.0.1, on a port the OS picks. */
export function serveSlackSink(): Promise<ServedSink> {
  const sink = createSlackSink();
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: sink.fetch, hostname: '127.0.0.1', port: 0 });
    server.once('error', reject);
    server.once('listening', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      resolve({
        sink,
        webhookUrl: `http://127.0.0.1:${port}/services/T000/B000/fuzz`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            if ('closeAllConnections' in server) server.closeAllConnections();
          }),
      });
    });
  });
}

/** The resident set size of process `pid` in bytes, from /proc/<pid>/status (Linux only). */
export function readRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!match?.[1]) throw new Error(`/proc/${pid}/status has no VmRSS line`);
  return Number(match[1]) * 1024;
}

/** Reads `FUZZ_RUNS` and `FUZZ_SEED`, so a failing run can be replayed exactly. */
export function fuzzSettings(defaultRuns: number): { numRuns: number; seed: number } {
  const runs = Number(process.env.FUZZ_RUNS);
  const seed = Number(process.env.FUZZ_SEED);
  return {
    numRuns: Number.isSafeInteger(runs) && runs > 0 ? runs : defaultRuns,
    seed: Number.isSafeInteger(seed) ? seed : Date.now() % 2 ** 31,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Helpers

function waitForData(socket: Socket, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      socket.off('data', done);
      socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    socket.once('data', done);
    socket.once('close', done);
  });
}

function encodeChunked(body: Uint8Array, chunks: number): Buffer {
  const chunkBytes = Math.max(1, Math.ceil(body.byteLength / chunks));
  const parts: Buffer[] = [];
  for (let offset = 0; offset < body.byteLength; offset += chunkBytes) {
    const chunk = body.subarray(offset, offset + chunkBytes);
    parts.push(Buffer.from(`${chunk.byteLength.toString(16)}\r\n`), Buffer.from(chunk));
    parts.push(Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/** Parses the first response in `bytes`; `complete` only when its whole body is there. */
function readAnswer(bytes: Buffer, isHead: boolean, ended: RawAnswer['ended']): RawAnswer {
  let start = 0;
  for (;;) {
    const headEnd = bytes.indexOf(HEADER_END, start);
    if (headEnd < 0) return { status: null, headers: {}, body: new Uint8Array(0), ended };
    const [statusLine = '', ...headerLines] = bytes
      .subarray(start, headEnd)
      .toString('latin1')
      .split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? Number.NaN);
    const headers: Record<string, string> = {};
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    const bodyStart = headEnd + HEADER_END.byteLength;
    // An interim 1xx answer is followed by the real one.
    if (status >= 100 && status < 200) {
      start = bodyStart;
      continue;
    }
    const rest = bytes.subarray(bodyStart);
    const noBody = isHead || status === 204 || status === 304;
    const body = noBody
      ? { body: Buffer.alloc(0), complete: true }
      : readBody(rest, headers, ended);
    return {
      status: Number.isNaN(status) ? null : status,
      headers,
      body: body.body,
      ended: body.complete ? 'complete' : ended,
    };
  }
}

function readBody(
  rest: Buffer,
  headers: Record<string, string>,
  ended: RawAnswer['ended'],
): { body: Buffer; complete: boolean } {
  if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) return readChunked(rest);
  const length = headers['content-length'];
  if (length !== undefined) {
    const expected = Number(length);
    return { body: rest.subarray(0, expected), complete: rest.byteLength >= expected };
  }
  // Without framing the body runs until the server closes.
  return { body: rest, complete: ended === 'closed' };
}

function readChunked(rest: Buffer): { body: Buffer; complete: boolean } {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = rest.indexOf('\r\n', offset);
    if (lineEnd < 0) return { body: Buffer.concat(parts), complete: false };
    const size = Number.parseInt(rest.subarray(offset, lineEnd).toString('latin1'), 16);
    if (Number.isNaN(size)) return { body: Buffer.concat(parts), complete: false };
    if (size === 0) return { body: Buffer.concat(parts), complete: true };
    const dataStart = lineEnd + 2;
    if (rest.byteLength < dataStart + size + 2)
      return { body: Buffer.concat(parts), complete: false };
    parts.push(rest.subarray(dataStart, dataStart + size));
    offset = dataStart + size + 2;
  }
}
