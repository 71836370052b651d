import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import { execa } from "execa";
import { type RepoConfig, repoConfigSchema } from "../../src/config/repo-config.js";
import type { FakeAnthropic } from "../helpers/fake-anthropic.js";

/** Real git repositories in temp folders for the agent tests. */

const gitEnv = {
  GIT_AUTHOR_NAME: "test",
  GIT_AUTHOR_EMAIL: "test@example.com",
  GIT_COMMITTER_NAME: "test",
  GIT_COMMITTER_EMAIL: "test@example.com",
  GIT_CONFIG_NOSYSTEM: "1",
};

export async function sh(cwd: string, ...args: string[]): Promise<string> {
  const r = await execa("git", args, { cwd, env: gitEnv });
  return String(r.stdout).trim();
}

export interface TestRepo {
  dir: string;
  /** A folder next to the repository (outside the workspace). */
  outside: string;
  baseSha: string;
  cleanup(): Promise<void>;
}

export async function makeRepo(
  files: Record<string, string | { content: string; mode?: number }>,
  setup?: (dir: string) => Promise<void>,
): Promise<TestRepo> {
  const root = await mkdtemp(path.join(tmpdir(), "autofix-agent-"));
  // Searchable by a sandbox running as another uid (autofix run's bubblewrap, as root).
  await chmod(root, 0o755);
  const dir = path.join(root, "repo");
  const outside = path.join(root, "outside");
  await mkdir(dir);
  await mkdir(outside);
  await sh(dir, "init", "-q", "-b", "main");
  for (const [rel, spec] of Object.entries(files)) {
    const abs = path.join(dir, rel);
    await mkdir(path.dirname(abs), { recursive: true });
    const { content, mode } = typeof spec === "string" ? { content: spec, mode: undefined } : spec;
    await writeFile(abs, content, mode ? { mode } : {});
  }
  await setup?.(dir);
  await sh(dir, "add", "-A");
  await sh(dir, "commit", "-q", "-m", "base");
  const baseSha = await sh(dir, "rev-parse", "HEAD");
  return { dir, outside, baseSha, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export function config(overrides: Record<string, unknown> = {}): RepoConfig {
  return repoConfigSchema.parse(overrides);
}

export function client(fake: FakeAnthropic): Anthropic {
  return new Anthropic({ apiKey: "test", baseURL: fake.url, maxRetries: 0 });
}

/** Is a process alive (zombies count as gone: they hold no resources and cannot run)? */
export async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const { readFile } = await import("node:fs/promises");
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return true;
  }
}
