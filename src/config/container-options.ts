import path from "node:path";

/**
 * The container options a repository (its `.github/autofix.yml` or the failed CI job's
 * `container.options`) may ask for: a small allowlist. Everything that widens the sandbox
 * (`--privileged`, `--cap-add`, `-v`/`--volume`/`--mount`, `--device`, `--network`/`--net`,
 * `--pid`, `--ipc`, `--userns`, `--security-opt`, `--user`, `--entrypoint`, ...) is refused:
 * the job's cards, hugepages and operator mounts come from the worker, never the repository.
 * Pure.
 */

export interface ContainerOptionSet {
  /** `--shm-size` (digits and an optional b/k/m/g unit). */
  shmSize?: string;
  /** `-e NAME=value` / `--env NAME=value`. */
  env: Record<string, string>;
  /** `-w DIR` / `--workdir DIR`: where the workspace is mounted and commands start. */
  workdir?: string;
}

export interface ParsedContainerOptions extends ContainerOptionSet {
  /** Options refused, as given (with the reason). */
  refused: string[];
}

const SHM_SIZE = /^[1-9][0-9]{0,12}[bkmgBKMG]?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Folders the workspace may not be mounted over. */
const RESERVED_DIRS = [
  "/bin",
  "/boot",
  "/dev",
  "/etc",
  "/home/sandbox",
  "/lib",
  "/lib32",
  "/lib64",
  "/libx32",
  "/proc",
  "/root",
  "/run",
  "/sbin",
  "/sys",
  "/tmp",
  "/usr",
  "/var/run",
];

/** Why a workdir inside the container is unusable, or null. Pure. */
export function workdirProblem(dir: string): string | null {
  if (!path.posix.isAbsolute(dir)) return `workdir "${dir}" must be an absolute path (such as /work)`;
  if (/[\0-\x1f,:]/.test(dir)) return `workdir "${dir}" holds a character a mount cannot take`;
  const norm = path.posix.normalize(dir).replace(/\/+$/, "") || "/";
  if (norm !== dir.replace(/\/+$/, "") || dir.split("/").includes(".."))
    return `workdir "${dir}" must be a plain path (no "." or ".." parts)`;
  if (norm === "/") return `workdir "${dir}" cannot be the container's root`;
  for (const r of RESERVED_DIRS) {
    if (norm === r || norm.startsWith(`${r}/`)) return `workdir "${dir}" is inside the system folder ${r}`;
  }
  return null;
}

const given = (flag: string, v: string | undefined) => (v === undefined ? flag : `${flag} ${v}`);

/** Split an options string as a shell would for plain words and simple quotes. Pure. */
export function splitOptions(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote: '"' | "'" | null = null;
  let has = false;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = "";
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (has || cur) out.push(cur);
  return out;
}

/**
 * Parse options (a string like a workflow's `container.options`, or a list of words) against
 * the allowlist. Refused words come back in `refused`; the caller decides whether that is an
 * error (autofix.yml) or a note (a CI workflow, whose `--device` and `-v` the worker provides
 * its own way). Pure.
 */
export function parseContainerOptions(input: string | readonly string[]): ParsedContainerOptions {
  const words = typeof input === "string" ? splitOptions(input) : input.flatMap((w) => splitOptions(w));
  const out: ParsedContainerOptions = { env: {}, refused: [] };
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const eq = w.indexOf("=");
    const flag = w.startsWith("--") && eq > 0 ? w.slice(0, eq) : w;
    const inline = w.startsWith("--") && eq > 0 ? w.slice(eq + 1) : undefined;
    const takeValue = (): string | undefined => {
      if (inline !== undefined) return inline;
      const v = words[i + 1];
      if (v === undefined || v.startsWith("-")) return undefined;
      i++;
      return v;
    };
    switch (flag) {
      case "--shm-size": {
        const v = takeValue();
        if (v !== undefined && SHM_SIZE.test(v)) out.shmSize = v.toLowerCase();
        else out.refused.push(`${given(flag, v)} (needs a size such as 2g)`);
        break;
      }
      case "-e":
      case "--env": {
        const v = takeValue();
        const k = v?.slice(0, Math.max(0, v.indexOf("=")));
        if (v !== undefined && k && ENV_NAME.test(k)) out.env[k] = v.slice(k.length + 1);
        else out.refused.push(`${given(flag, v)} (needs NAME=value)`);
        break;
      }
      case "-w":
      case "--workdir": {
        const v = takeValue();
        const problem = v === undefined ? "needs a folder" : workdirProblem(v);
        if (v !== undefined && !problem) out.workdir = v.replace(/\/+$/, "");
        else out.refused.push(`${given(flag, v)} (${problem})`);
        break;
      }
      default: {
        // A refused flag's value goes with it (`--device /dev/tenstorrent`, `-v a:b`).
        const next = words[i + 1];
        const withValue = inline === undefined && next !== undefined && !next.startsWith("-");
        if (withValue) i++;
        out.refused.push(withValue ? `${w} ${next}` : w);
      }
    }
  }
  return out;
}

/** The allowlist, for messages. */
export const ALLOWED_CONTAINER_OPTIONS = "--shm-size, -e/--env, -w/--workdir";
