/**
 * Runs a TypeScript script of this repository in a child Node process (under tsx) and collects
 * what it prints. The child is sent SIGTERM once `timeoutMs` has passed, and SIGKILL if this
 * process exits first, so no run outlives its caller.
 */
import { spawn } from 'node:child_process';
import { ROOT } from './server-process.ts';

export interface ScriptRun {
  /** The exit code, or null when a signal ended the child. */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export async function runNodeScript(
  script: string,
  args: readonly string[],
  options: { timeoutMs: number; nodeFlags?: readonly string[] },
): Promise<ScriptRun> {
  const nodeArgs = [...(options.nodeFlags ?? []), '--import', 'tsx', script, ...args];
  const child = spawn(process.execPath, nodeArgs, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
  }, options.timeoutMs);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });

  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  process.off('exit', killOnExit);
  return { code, stdout, stderr, timedOut };
}
