/**
 * Checks whether refusals keep the connection alive: sends N rejected requests one after
 * another through a keep-alive agent limited to one socket, and counts the sockets it opened.
 * One socket for N requests means the server kept the connection; N sockets mean it closed it
 * after every refusal, and each sender then pays a new TCP handshake.
 */
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import { WEBHOOK_PATH } from './load.ts';

const REQUEST_TIMEOUT_MS = 5_000;
const CHUNK_BYTES = 64 * 1024;

/** A kind of refused request: how it is sent and which status it should get. */
export interface RejectionCase {
  name: 'bad_signature' | 'too_large_declared' | 'too_large_chunked';
  expectedStatus: number;
  /** The body, sent with Content-Length unless `chunked`. */
  body: Buffer;
  chunked: boolean;
}

export interface RejectionResult {
  name: RejectionCase['name'];
  requests: number;
  /** Sockets the client had to open for all of them; 1 means the connection was kept. */
  connections: number;
  statuses: Record<string, number>;
  /** Requests that ended in a socket error (reset, broken pipe) or a timeout. */
  errors: number;
  keptAlive: boolean;
}

/** The cases the bench checks, for a handler whose body limit is `maxBodyBytes`. */
export function rejectionCases(maxBodyBytes: number): RejectionCase[] {
  const oversized = Buffer.alloc(maxBodyBytes + CHUNK_BYTES, 'x');
  return [
    {
      name: 'bad_signature',
      expectedStatus: 401,
      body: Buffer.from('{"id":"evt_bad","type":"install.created"}'),
      chunked: false,
    },
    { name: 'too_large_declared', expectedStatus: 413, body: oversized, chunked: false },
    { name: 'too_large_chunked', expectedStatus: 413, body: oversized, chunked: true },
  ];
}

/** Sends `count` requests of one case to `origin` in sequence and counts sockets opened. */
export async function checkKeepAlive(
  origin: string,
  rejection: RejectionCase,
  count: number,
): Promise<RejectionResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const sockets = new Set<Socket>();
  const statuses: Record<string, number> = {};
  let errors = 0;
  try {
    for (let i = 0; i < count; i++) {
      const status = await sendOnce(origin, rejection, agent, sockets);
      if (status === null) errors++;
      else statuses[status] = (statuses[status] ?? 0) + 1;
    }
  } finally {
    agent.destroy();
  }
  const allExpected = statuses[rejection.expectedStatus] === count;
  return {
    name: rejection.name,
    requests: count,
    connections: sockets.size,
    statuses,
    errors,
    keptAlive: allExpected && sockets.size === 1,
  };
}

function sendOnce(
  origin: string,
  rejection: RejectionCase,
  agent: Agent,
  sockets: Set<Socket>,
): Promise<number | null> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-platform-signature': '0'.repeat(64),
    };
    if (!rejection.chunked) headers['content-length'] = String(rejection.body.byteLength);
    const outgoing = request(`${origin}${WEBHOOK_PATH}`, { method: 'POST', agent, headers });
    let settled = false;
    const settle = (status: number | null) => {
      if (settled) return;
      settled = true;
      resolve(status);
    };
    outgoing.setTimeout(REQUEST_TIMEOUT_MS, () => outgoing.destroy(new Error('timeout')));
    outgoing.on('socket', (socket) => sockets.add(socket));
    outgoing.on('error', () => settle(null));
    outgoing.on('response', (response) => {
      response.resume();
      response.on('end', () => settle(response.statusCode ?? null));
      response.on('error', () => settle(null));
    });
    if (!rejection.chunked) {
      outgoing.end(rejection.body);
      return;
    }
    for (let offset = 0; offset < rejection.body.byteLength; offset += CHUNK_BYTES) {
      outgoing.write(rejection.body.subarray(offset, offset + CHUNK_BYTES));
    }
    outgoing.end();
  });
}
