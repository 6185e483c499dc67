/**
 * A stand-in for Slack's incoming webhook on 127.0.0.1: node:http, answers every POST 200 "ok"
 * and counts them, so the end-to-end run can check that every install was posted.
 * `GET /count` answers `{ "posts": N }`.
 *
 *   node --import tsx bench/slack-sink.ts
 */
import { createServer } from 'node:http';

const HOST = '127.0.0.1';
let posts = 0;

const server = createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/count') {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ posts }));
    return;
  }
  request.resume();
  request.on('end', () => {
    if (request.method === 'POST') posts++;
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end('ok');
  });
});

server.listen(Number(process.env.PORT || 0), HOST, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  console.log(`slack-sink: listening on http://${HOST}:${port}/ (node)`);
});
