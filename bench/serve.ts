/**
 * Serves a fetch handler on 127.0.0.1 with the runtime's own server, as handler.ts does:
 * Bun.serve, Deno.serve, or @hono/node-server on Node. For the bench's own servers.
 */

export const HOST = '127.0.0.1';

export type Fetch = (request: Request) => Response | Promise<Response>;

interface RuntimeGlobals {
  Bun?: { serve(options: { port: number; hostname: string; fetch: Fetch }): { port: number } };
  Deno?: {
    serve(
      options: { port: number; hostname: string; onListen?: () => void },
      fetch: Fetch,
    ): { addr: { port: number } };
  };
}

const runtime = globalThis as typeof globalThis & RuntimeGlobals;

/** The name of the runtime this process runs on. */
export const RUNTIME_NAME = runtime.Bun ? 'bun' : runtime.Deno ? 'deno' : 'node';

/** Starts serving `fetch` on `port` (0: any free one) and resolves with the port. */
export async function serveOnLoopback(fetch: Fetch, port = 0): Promise<number> {
  if (runtime.Bun) return runtime.Bun.serve({ port, hostname: HOST, fetch }).port;
  if (runtime.Deno) {
    return runtime.Deno.serve({ port, hostname: HOST, onListen: () => {} }, fetch).addr.port;
  }
  // Imported here only: Bun and Deno never load the Node adapter.
  const { serve } = await import('@hono/node-server');
  return new Promise((resolve) => {
    serve({ fetch, port, hostname: HOST }, (info) => resolve(info.port));
  });
}
