import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { send } from '../simulator/deliver.ts';
import { canPostBytes, postBytes } from '../simulator/http-post.ts';
import { createSigner } from '../simulator/sign.ts';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe('postBytes', () => {
  it('sends the exact bytes with the caller headers and reads the status', async () => {
    const seen: { body: string; headers: IncomingMessage['headers'] }[] = [];
    const url = await serve(async (request, response) => {
      seen.push({ body: await readAll(request), headers: request.headers });
      response.writeHead(503, { 'retry-after': '7' }).end('busy');
    });
    const body = new TextEncoder().encode('{"id":"evt_1","note":"é"}');
    const answer = await postBytes({
      url,
      headers: { 'content-type': 'application/json', 'x-platform-signature': 'ab' },
      body,
      timeoutMs: 2_000,
    });
    expect(answer).toEqual({ status: 503, retryAfter: '7' });
    expect(seen[0]?.body).toBe('{"id":"evt_1","note":"é"}');
    expect(seen[0]?.headers).toMatchObject({
      'content-type': 'application/json',
      'x-platform-signature': 'ab',
      'content-length': String(body.byteLength),
    });
  });

  it('fails as fetch does when nothing listens', async () => {
    const url = await serve(() => {});
    const port = url.port;
    await closeAll();
    await expect(
      postBytes({
        url: new URL(`http://127.0.0.1:${port}/`),
        headers: {},
        body: new Uint8Array(),
        timeoutMs: 2_000,
      }),
    ).rejects.toMatchObject({
      name: 'TypeError',
      message: 'fetch failed',
      cause: { code: 'ECONNREFUSED' },
    });
  });

  it('gives up with a TimeoutError when the answer is late', async () => {
    const url = await serve(() => {});
    await expect(
      postBytes({ url, headers: {}, body: new Uint8Array(), timeoutMs: 50 }),
    ).rejects.toMatchObject({ name: 'TimeoutError' });
  });

  it('leaves URLs that fetch treats specially to fetch', () => {
    expect(canPostBytes(new URL('http://127.0.0.1:3000/x'))).toBe(true);
    expect(canPostBytes(new URL('http://user:pw@127.0.0.1:3000/x'))).toBe(false);
    expect(canPostBytes(new URL('http://127.0.0.1:6000/x'))).toBe(false);
  });
});

describe('send over the default transport', () => {
  it('reports a refused connection the same way as over fetch', async () => {
    const url = await serve(() => {});
    await closeAll();
    const sign = createSigner('s');
    const body = new TextEncoder().encode('{}');
    const viaHttp = await send(body, await sign(body), { url, sign });
    const viaFetch = await send(body, await sign(body), { url, sign, fetch });
    expect(viaHttp.error).toBe('fetch failed (ECONNREFUSED)');
    expect(viaHttp.error).toBe(viaFetch.error);
  });
});

// Helpers

async function serve(
  handler: (request: IncomingMessage, response: import('node:http').ServerResponse) => void,
): Promise<URL> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return new URL(`http://127.0.0.1:${port}/webhooks/platform`);
}

async function closeAll(): Promise<void> {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

async function readAll(request: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of request) text += chunk;
  return text;
}
