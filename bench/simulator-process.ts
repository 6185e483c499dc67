/**
 * Runs the simulator CLI as its own process, pinned to a core when taskset exists, and follows
 * its CPU time and peak memory from /proc. It runs `node --import tsx simulator/cli.ts`, what
 * `npm run simulate` runs, without npm's and tsx's wrapper processes, so the pid followed is
 * the simulator's own. The run is bounded: past its deadline the process is killed.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { type ProcessUsage, sampleProcessUsage } from './proc-usage.ts';
import { HAS_TASKSET, ROOT } from './server-process.ts';

/** Options for {@link runSimulator}. */
export interface SimulatorRunOptions {
  /** The CLI to run: simulator/cli.ts, or a copy of it to compare. */
  cli: string;
  /** Flags after the CLI's path, such as `--count 20000`. */
  args: string[];
  /** Where the CLI's stderr goes (one line per attempt): a file, or /dev/null. */
  stderrPath: string;
  core?: number;
  timeoutMs: number;
}

/** How the simulator process ended and what it cost. */
export interface SimulatorRun {
  exitCode: number | null;
  /** Killed for outliving `timeoutMs`. */
  timedOut: boolean;
  wallMs: number;
  usage: ProcessUsage;
  /** What it printed on stdout: the summary. */
  stdout: string;
}

/** Starts the CLI with `args` and resolves once it has exited. */
export async function runSimulator(options: SimulatorRunOptions): Promise<SimulatorRun> {
  const command = [process.execPath, '--import', 'tsx', options.cli, ...options.args];
  const pinned = HAS_TASKSET && options.core !== undefined;
  const argv = pinned ? ['taskset', '-c', String(options.core), ...command] : command;
  const stderrFd = openSync(options.stderrPath, 'w');
  const startedMs = performance.now();
  // taskset execs the command, so the child's pid is the simulator's own.
  const child = spawn(argv[0] as string, argv.slice(1), {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? ROOT, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', stderrFd],
  });
  closeSync(stderrFd);

  const sampler = sampleProcessUsage(child.pid ?? 0);
  let stdout = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  }).finally(() => {
    clearTimeout(timer);
    process.off('exit', killOnExit);
  });

  return {
    exitCode,
    timedOut,
    wallMs: performance.now() - startedMs,
    usage: sampler.stop(),
    stdout,
  };
}
