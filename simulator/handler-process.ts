/**
 * Starts handler.ts as a real process on Node, Bun or Deno, bound to 127.0.0.1 on a port the
 * OS picks (or a given one), and stops it again. The demo, the chaos run and the cross-runtime
 * tests all start the handler this way. Every wait here is bounded.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SimulatorError } from './simulator-error.ts';

export const RUNTIMES = ['node', 'bun', 'deno'] as const;
export type Runtime = (typeof RUNTIMES)[number];

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = `${ROOT}node_modules/.bin`;
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;

/** The command line that runs `script` on `runtime`, with binaries from node_modules. */
export function runtimeCommand(runtime: Runtime, script: string): [string, string[]] {
  switch (runtime) {
    case 'node':
      return [process.execPath, ['--import', 'tsx', script]];
    case 'bun':
      return [`${BIN}/bun`, ['run', script]];
    case 'deno':
      return [`${BIN}/deno`, ['run', '-A', script]];
  }
}

export interface HandlerProcess {
  runtime: Runtime;
  /** Base URL, such as http://127.0.0.1:41234 */
  origin: string;
  child: ChildProcess;
  /** Everything the process printed to stdout, line by line. */
  lines: string[];
  stderr: string[];
  /** The JSON delivery log lines, parsed. */
  deliveries(): Record<string, unknown>[];
  /** Sends `signal` and resolves with the exit code once the process has ended. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Every variable the handler reads, set empty: the handler's .env loader fills only unset
 * variables, so a developer's own .env (perhaps with a real Slack URL) never reaches a test.
 */
export const ISOLATED_ENV: Readonly<Record<string, string>> = {
  PLATFORM_SIGNING_SECRET: '',
  PLATFORM_SIGNING_SECRET_PREVIOUS: '',
  SLACK_WEBHOOK_URL: '',
  HOST: '127.0.0.1',
  PORT: '0',
  MAX_BODY_BYTES: '',
  SLACK_TIMEOUT_MS: '',
  SLACK_RETRY_BUDGET_MS: '',
  DEDUPE_FILE: '',
  DEDUPE_MAX_ENTRIES: '',
  DEDUPE_MAX_AGE_SECONDS: '',
};

export interface StartOptions {
  script?: string;
  cwd?: string;
  /** Start from an empty environment instead of ISOLATED_ENV, to test .env loading. */
  inheritDotEnv?: boolean;
}

/** Starts handler.ts on `runtime` with `env` and resolves once it listens. */
export async function startHandler(
  runtime: Runtime,
  env: Record<string, string>,
  options: StartOptions = {},
): Promise<HandlerProcess> {
  const [command, args] = runtimeCommand(runtime, options.script ?? 'handler.ts');
  const base = options.inheritDotEnv ? {} : ISOLATED_ENV;
  const child = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? ROOT, ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  collectLines(child.stderr, stderr);

  const origin = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(unavailable(`${runtime}: no "listening" line in ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    );
    collectLines(child.stdout, lines, (line) => {
      const match = /listening on (http:\/\/[\d.]+:\d+)/.exec(line);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(unavailable(`${runtime} exited with ${code} before listening: ${stderr.join('\n')}`));
    });
  });

  return {
    runtime,
    origin,
    child,
    lines,
    stderr,
    deliveries: () => lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line)),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

function unavailable(message: string): SimulatorError {
  return new SimulatorError('handler_unavailable', message);
}

function collectLines(
  stream: NodeJS.ReadableStream | null,
  into: string[],
  onLine?: (line: string) => void,
): void {
  let pending = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    pending += chunk;
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const line of parts) {
      into.push(line);
      onLine?.(line);
    }
  });
}
