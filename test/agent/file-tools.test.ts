import { execFileSync } from "node:child_process";
import {
  link,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  symlink,
  truncate,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { PathError } from "../../src/agent/paths.js";
import { defineTool, type ToolContext } from "../../src/agent/tools/define.js";
import { MAX_FILE_BYTES, openInWorkspace } from "../../src/agent/tools/fs-safe.js";
import { executeTool, toolsForPhase } from "../../src/agent/tools/index.js";
import type { JobExecutor } from "../../src/sandbox/executor.js";

let tmp: string;
let ws: string;
let outside: string;
const tools = toolsForPhase("fix");

function ctx(signal: AbortSignal = new AbortController().signal): ToolContext {
  return {
    workspace: ws,
    signal,
    commandTimeoutMs: 10_000,
    // The file tools never run a command.
    executor: {} as JobExecutor,
    protectedPaths: ["autofix-tests/t"],
  };
}

const call = (name: string, input: unknown, c = ctx()) => executeTool(tools, name, input, c);

beforeEach(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), "autofix-file-tools-"));
  ws = path.join(tmp, "ws");
  outside = path.join(tmp, "outside");
  await mkdir(path.join(ws, "src"), { recursive: true });
  await mkdir(path.join(ws, "autofix-tests", "t"), { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(ws, "src", "a.txt"), "alpha\nbeta\n");
  await writeFile(path.join(ws, "autofix-tests", "t", "run_test.sh"), "exit 1\n");
  await writeFile(path.join(outside, "secret.txt"), "outside secret\n");
});

afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("file tools", () => {
  it("still read, write and edit ordinary files", async () => {
    const read = await call("read_file", { path: "src/a.txt" });
    expect(read.isError).toBe(false);
    expect(read.content).toContain("alpha");
    expect((await call("write_file", { path: "src/new/b.txt", content: "one\n" })).isError).toBe(false);
    expect(await readFile(path.join(ws, "src/new/b.txt"), "utf8")).toBe("one\n");
    expect(
      (await call("edit_file", { path: "src/a.txt", old_string: "beta", new_string: "gamma" })).isError,
    ).toBe(false);
    expect(await readFile(path.join(ws, "src/a.txt"), "utf8")).toBe("alpha\ngamma\n");
    const short = await call("write_file", { path: "src/a.txt", content: "x" });
    expect(short.isError).toBe(false);
    expect(await readFile(path.join(ws, "src/a.txt"), "utf8")).toBe("x");
  });

  it("refuse a FIFO in the workspace at once, for reading, writing and editing", async () => {
    execFileSync("mkfifo", [path.join(ws, "src", "pipe")]);
    for (const [name, input] of [
      ["read_file", { path: "src/pipe" }],
      ["write_file", { path: "src/pipe", content: "x" }],
      ["edit_file", { path: "src/pipe", old_string: "a", new_string: "b" }],
    ] as const) {
      const out = await call(name, input);
      expect(out.isError, name).toBe(true);
      expect(out.content, name).toMatch(/FIFO/);
    }
  });

  it("do not follow a symlink, inside or out of the workspace", async () => {
    await symlink("a.txt", path.join(ws, "src", "inner-link"));
    await symlink(path.join(outside, "secret.txt"), path.join(ws, "src", "outer-link"));
    const inner = await call("read_file", { path: "src/inner-link" });
    expect(inner.isError).toBe(true);
    expect(inner.content).toContain("symbolic link (to a.txt)");
    for (const [name, input] of [
      ["read_file", { path: "src/outer-link" }],
      ["write_file", { path: "src/outer-link", content: "x" }],
      ["edit_file", { path: "src/outer-link", old_string: "outside", new_string: "changed" }],
    ] as const) {
      const out = await call(name, input);
      expect(out.isError, name).toBe(true);
      expect(out.content, name).toMatch(/outside the workspace|symbolic link/);
      expect(out.content, name).not.toContain("outside secret");
    }
    expect(await readFile(path.join(outside, "secret.txt"), "utf8")).toBe("outside secret\n");
  });

  it("catch a folder swapped for a symlink after the path check, on the descriptor", async () => {
    await mkdir(path.join(ws, "dir"));
    await writeFile(path.join(ws, "dir", "secret.txt"), "inside\n");
    const swap = async () => {
      await rename(path.join(ws, "dir"), path.join(ws, "dir-old"));
      await symlink(outside, path.join(ws, "dir"));
    };
    await expect(openInWorkspace(ws, "dir/secret.txt", { mode: "read", afterCheck: swap })).rejects.toThrow(
      PathError,
    );
    // Writing: the existing outside file is neither truncated nor changed...
    await rm(path.join(ws, "dir"));
    await rename(path.join(ws, "dir-old"), path.join(ws, "dir"));
    await expect(openInWorkspace(ws, "dir/secret.txt", { mode: "write", afterCheck: swap })).rejects.toThrow(
      /outside the workspace/,
    );
    expect(await readFile(path.join(outside, "secret.txt"), "utf8")).toBe("outside secret\n");
    // ...and a file created through the swapped folder is removed again.
    await rm(path.join(ws, "dir"));
    await rename(path.join(ws, "dir-old"), path.join(ws, "dir"));
    await expect(openInWorkspace(ws, "dir/fresh.txt", { mode: "write", afterCheck: swap })).rejects.toThrow(
      /outside the workspace/,
    );
    expect((await readdir(outside)).sort()).toEqual(["secret.txt"]);
  });

  it("refuse a hard link to a file outside the workspace", async () => {
    await link(path.join(outside, "secret.txt"), path.join(ws, "src", "hard.txt"));
    for (const [name, input] of [
      ["read_file", { path: "src/hard.txt" }],
      ["write_file", { path: "src/hard.txt", content: "overwritten" }],
      ["edit_file", { path: "src/hard.txt", old_string: "outside", new_string: "changed" }],
    ] as const) {
      const out = await call(name, input);
      expect(out.isError, name).toBe(true);
      expect(out.content, name).toContain("2 hard links");
    }
    expect(await readFile(path.join(outside, "secret.txt"), "utf8")).toBe("outside secret\n");
  });

  it("refuse a file over the size cap before reading it", async () => {
    const huge = path.join(ws, "src", "huge.bin");
    await writeFile(huge, "");
    await truncate(huge, MAX_FILE_BYTES + 1);
    for (const [name, input] of [
      ["read_file", { path: "src/huge.bin" }],
      ["edit_file", { path: "src/huge.bin", old_string: "a", new_string: "b" }],
    ] as const) {
      const out = await call(name, input);
      expect(out.isError, name).toBe(true);
      expect(out.content, name).toContain("byte limit");
    }
  });

  it("refuse the frozen test through a folder link inside the workspace", async () => {
    await symlink("autofix-tests/t", path.join(ws, "alias"));
    const out = await call("write_file", { path: "alias/run_test.sh", content: "exit 0\n" });
    expect(out.isError).toBe(true);
    expect(out.content).toContain("frozen reproduction");
    const edit = await call("edit_file", {
      path: "alias/run_test.sh",
      old_string: "exit 1",
      new_string: "exit 0",
    });
    expect(edit.isError).toBe(true);
    expect(await readFile(path.join(ws, "autofix-tests/t/run_test.sh"), "utf8")).toBe("exit 1\n");
  });

  it("end a tool call that never returns when the phase's signal fires", async () => {
    const hang = defineTool({
      name: "hang",
      description: "never returns",
      schema: z.strictObject({}),
      run: () => new Promise(() => {}),
    });
    const ac = new AbortController();
    const pending = executeTool([hang], "hang", {}, ctx(ac.signal));
    ac.abort();
    const out = await pending;
    expect(out).toEqual({
      content: "hang stopped: the phase ended (cancelled or out of time)",
      isError: true,
    });
    expect((await executeTool([hang], "hang", {}, ctx(ac.signal))).content).toContain("not run");
  });
});
