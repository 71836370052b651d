import { spawn } from "node:child_process";

/**
 * Run a command in its own process group, so a timeout or a cancel kills the whole tree
 * (the command, its children and their children), not just the direct child.
 * Never blocks the event loop. Output is kept up to a bound (the tail is kept).
 */

export interface RunCommandOptions {
  cwd?: string;
  /** The complete environment of the command (nothing is inherited unless you pass it). */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Kill the tree after this long; 0 or undefined: no timeout. */
  timeoutMs?: number;
  /** Text written to stdin, then stdin is closed. */
  input?: string;
  /** Time between SIGTERM and SIGKILL when killing the tree. */
  killGraceMs?: number;
  /** Maximum bytes of stdout and of stderr kept (the tail). */
  maxOutputBytes?: number;
  /** Called with each chunk of output, for live logs. */
  onOutput?: (stream: "stdout" | "stderr", chunk: string) => void;
}

export interface CommandResult {
  /** Exit code, or null when the process ended by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** Ended because `signal` was aborted. */
  aborted: boolean;
  durationMs: number;
  pid: number | undefined;
}

const DEFAULT_MAX_OUTPUT = 1024 * 1024;

class TailBuffer {
  #chunks: Buffer[] = [];
  #size = 0;
  truncated = false;
  constructor(readonly max: number) {}
  push(b: Buffer): void {
    this.#chunks.push(b);
    this.#size += b.length;
    while (this.#size > this.max && this.#chunks.length > 1) {
      this.#size -= this.#chunks.shift()!.length;
      this.truncated = true;
    }
  }
  text(): string {
    let buf = Buffer.concat(this.#chunks);
    if (buf.length > this.max) {
      buf = buf.subarray(buf.length - this.max);
      this.truncated = true;
    }
    return (this.truncated ? "[... output truncated ...]\n" : "") + buf.toString("utf8");
  }
}

/** Send a signal to a whole process group; false when the group is already gone. */
export function killGroup(pid: number, signal: NodeJS.Signals = "SIGKILL"): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** True while any process of the group is alive. */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Run `cmd`: an argv array (no shell) or a string run by `/bin/sh -c`. Resolves with the
 * result whatever the exit code; rejects only when the command cannot be started.
 * When the command ends, processes it left behind in its group are killed too.
 */
export function runCommand(
  cmd: string | readonly string[],
  opts: RunCommandOptions = {},
): Promise<CommandResult> {
  const [file, ...args] = typeof cmd === "string" ? ["/bin/sh", "-c", cmd] : cmd;
  if (!file) return Promise.reject(new Error("runCommand: empty command"));
  const started = Date.now();
  const grace = opts.killGraceMs ?? 2_000;
  const max = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  return new Promise<CommandResult>((resolve, reject) => {
    if (opts.signal?.aborted) {
      resolve({
        exitCode: null,
        signal: null,
        stdout: "",
        stderr: "",
        timedOut: false,
        aborted: true,
        durationMs: 0,
        pid: undefined,
      });
      return;
    }
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: [opts.input !== undefined ? "pipe" : "ignore", "pipe", "pipe"],
    });
    const out = new TailBuffer(max);
    const err = new TailBuffer(max);
    let timedOut = false;
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    let exited = false;
    const pid = child.pid;

    const killTree = () => {
      if (pid === undefined) return;
      killGroup(pid, "SIGTERM");
      killTimer ??= setTimeout(() => killGroup(pid, "SIGKILL"), grace);
      killTimer.unref();
    };
    const onAbort = () => {
      aborted = true;
      killTree();
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const timeout =
      opts.timeoutMs && opts.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            killTree();
          }, opts.timeoutMs)
        : undefined;

    child.stdout?.on("data", (b: Buffer) => {
      out.push(b);
      opts.onOutput?.("stdout", b.toString("utf8"));
    });
    child.stderr?.on("data", (b: Buffer) => {
      err.push(b);
      opts.onOutput?.("stderr", b.toString("utf8"));
    });
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on("error", () => {});
      child.stdin.end(opts.input);
    }

    const finish = (code: number | null, sig: NodeJS.Signals | null) => {
      if (exited) return;
      exited = true;
      clearTimeout(timeout);
      clearTimeout(killTimer);
      opts.signal?.removeEventListener("abort", onAbort);
      // Anything the command left running in its group (backgrounded children) goes too.
      if (pid !== undefined) killGroup(pid, "SIGKILL");
      resolve({
        exitCode: code,
        signal: sig,
        stdout: out.text(),
        stderr: err.text(),
        timedOut,
        aborted,
        durationMs: Date.now() - started,
        pid,
      });
    };
    child.on("error", (e) => {
      clearTimeout(timeout);
      opts.signal?.removeEventListener("abort", onAbort);
      if (!exited) {
        exited = true;
        reject(e);
      }
    });
    // "exit" rather than "close": a grandchild holding the pipes open must not keep us waiting.
    child.on("exit", (code, sig) => {
      // Give the pipes a moment to drain what was already written.
      const streams = [child.stdout, child.stderr].filter((s) => s && !s.readableEnded);
      if (streams.length === 0) return finish(code, sig);
      let left = streams.length;
      const drained = setTimeout(() => finish(code, sig), 200);
      for (const s of streams)
        s!.once("end", () => {
          if (--left === 0) {
            clearTimeout(drained);
            finish(code, sig);
          }
        });
    });
  });
}

/** A one-line description of a failed command for errors and comments. */
export function describeFailure(what: string, r: CommandResult): string {
  if (r.aborted) return `${what}: cancelled`;
  if (r.timedOut) return `${what}: timed out after ${Math.round(r.durationMs / 1000)} s`;
  const tail = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-3).join(" | ");
  const how = r.exitCode !== null ? `exit code ${r.exitCode}` : `signal ${r.signal}`;
  return `${what}: ${how}${tail ? `: ${tail}` : ""}`;
}
