/**
 * Starts one bench server (handler.ts, the baseline or the Slack sink) as its own process on
 * 127.0.0.1, pinned to a core when taskset exists, and reads its CPU time and memory from /proc.
 * Its stdout goes to a file, so the handler's log line per delivery costs it a write and costs
 * the load generator nothing. Every wait here is bounded.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// Every handler variable set, so a developer's .env never reaches a bench server.
import { ISOLATED_ENV, type Runtime, runtimeCommand } from '../simulator/handler-process.ts';
import { readCpuMicros } from './proc-usage.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 25;
const LISTENING_PATTERN = /listening on (http:\/\/127\.0\.0\.1:\d+)/;

/** Whether `taskset` can pin processes here; without it nothing is pinned. */
export const HAS_TASKSET = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

export interface ServerOptions {
  /** A label for messages, such as "handler on bun". */
  name: string;
  runtime: Runtime;
  /** Path of the script to run, relative to the repository root or absolute. */
  script: string;
  env?: Record<string, string>;
  /** The CPU core to pin the process to, when taskset exists. */
  core?: number;
  /** Directory for the stdout log. */
  logDir: string;
}

export interface ServerProcess {
  name: string;
  pid: number;
  /** Base URL, such as http://127.0.0.1:41234 */
  origin: string;
  /** User plus system CPU time so far, in microseconds, over all of the process's threads. */
  cpuMicros(): number;
  /** The system (kernel) part of it: syscalls, and the wake-ups of whoever reads its sockets. */
  systemCpuMicros(): number;
  /** Resident set size now, in bytes. */
  rssBytes(): number;
  /** What the process printed to stdout since the last call. */
  readNewOutput(): string;
  /** Sends SIGTERM, then SIGKILL after a grace period; resolves once the process has ended. */
  stop(): Promise<void>;
}

const running = new Set<ChildProcess>();

/** Starts a server and resolves once it prints its "listening on" line. */
export async function startServer(options: ServerOptions): Promise<ServerProcess> {
  const [command, args] = runtimeCommand(options.runtime, options.script);
  const pinned = HAS_TASKSET && options.core !== undefined;
  const logPath = join(options.logDir, `${options.name.replaceAll(/\W+/g, '-')}.log`);
  const logFd = openSync(logPath, 'w');
  // taskset execs the command, so the child's pid is the server's own.
  const child = spawn(
    pinned ? 'taskset' : command,
    pinned ? ['-c', String(options.core), command, ...args] : args,
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? ROOT,
        ...ISOLATED_ENV,
        ...options.env,
      },
      stdio: ['ignore', logFd, 'pipe'],
    },
  );
  closeSync(logFd);
  running.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => running.delete(child));
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));

  const output = createOutputReader(logPath);
  const origin = await waitForListening(options.name, output, exited, stderr).catch(
    (error: unknown) => {
      child.kill('SIGKILL');
      throw error;
    },
  );
  const pid = child.pid ?? 0;

  return {
    name: options.name,
    pid,
    origin,
    cpuMicros: () => {
      const { userMicros, systemMicros } = readCpuMicros(pid);
      return userMicros + systemMicros;
    },
    systemCpuMicros: () => readCpuMicros(pid).systemMicros,
    rssBytes: () => readRssBytes(pid),
    readNewOutput: output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Kills every server still running, at once; for an interrupted bench's way out. */
export function killAllServers(): void {
  for (const child of running) child.kill('SIGKILL');
}

async function waitForListening(
  name: string,
  readOutput: () => string,
  exited: Promise<void>,
  stderr: string[],
): Promise<string> {
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  let seen = '';
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    seen += readOutput();
    const match = LISTENING_PATTERN.exec(seen);
    if (match?.[1]) return match[1];
    if (hasExited) throw new Error(`${name} exited before listening: ${stderr.join('')}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  throw new Error(`${name}: no "listening on" line in ${START_TIMEOUT_MS} ms`);
}

function createOutputReader(path: string): () => string {
  let offset = 0;
  const buffer = Buffer.alloc(1024 * 1024);
  return function readNewOutput() {
    const fd = openSync(path, 'r');
    const parts: Buffer[] = [];
    try {
      for (;;) {
        const read = readSync(fd, buffer, 0, buffer.length, offset);
        if (read === 0) break;
        parts.push(Buffer.from(buffer.subarray(0, read)));
        offset += read;
      }
    } finally {
      closeSync(fd);
    }
    return Buffer.concat(parts).toString('utf8');
  };
}

function readRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kilobytes = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return Number(kilobytes) * 1024;
}
