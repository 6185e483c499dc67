import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';

/** A server listening on 127.0.0.1 and the port it got. */
export type LocalServer = {
  port: number;
  close: () => Promise<void>;
};

/** The only interface the simulator's servers bind: they are for local testing. */
export const LOCAL_HOST = '127.0.0.1';

/** Serves a fetch handler on 127.0.0.1; port 0 asks the system for a free port. */
export function listenLocal(
  fetch: (request: Request) => Response | Promise<Response>,
  port: number,
): Promise<LocalServer> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, hostname: LOCAL_HOST, port });
    server.once('error', reject);
    server.once('listening', () => {
      const address = server.address() as AddressInfo;
      resolve({
        port: address.port,
        close: () =>
          new Promise((done) => {
            server.close(() => done());
            // Keep-alive connections would hold close() open until they time out.
            if ('closeAllConnections' in server) server.closeAllConnections();
          }),
      });
    });
  });
}
