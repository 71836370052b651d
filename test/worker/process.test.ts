import { describe, expect, it } from "vitest";
import { describeFailure, runHostCommand as runCommand } from "../../src/shared/process.js";
import { alive, liveGroupMembers, until } from "./helpers/proc.js";

describe("runCommand", () => {
  it("returns output and exit code, argv without a shell, string through bash", async () => {
    const a = await runCommand([
      "node",
      "-e",
      "process.stdout.write('hi'); process.stderr.write('e'); process.exit(3)",
    ]);
    expect(a).toMatchObject({ exitCode: 3, stdout: "hi", stderr: "e", timedOut: false, cancelled: false });
    const b = await runCommand("echo $FOO; pwd", {
      env: { FOO: "bar", PATH: process.env.PATH },
      cwd: "/tmp",
    });
    expect(b.stdout).toBe("bar\n/tmp\n");
    expect(describeFailure("npm test", a)).toBe("npm test: exit code 3: e");
  });

  it("abort kills the whole process tree: the grandchild sleep is gone", async () => {
    const ac = new AbortController();
    const lines: string[] = [];
    const p = runCommand("sleep 30 & echo $!; wait", {
      signal: ac.signal,
      killGraceMs: 300,
      onOutput: (_s, c) => lines.push(c),
    });
    expect(await until(() => lines.join("").trim().length > 0)).toBe(true);
    const grandchild = Number(lines.join("").trim());
    expect(alive(grandchild)).toBe(true);
    ac.abort();
    const r = await p;
    expect(r.cancelled).toBe(true);
    expect(await until(() => !alive(grandchild))).toBe(true);
    expect(liveGroupMembers(r.pid!)).toEqual([]);
  });

  it("a timeout kills the tree, also a child that ignores SIGTERM", async () => {
    const r = await runCommand(["sh", "-c", "trap '' TERM; sleep 30 & echo $!; wait"], {
      timeoutMs: 200,
      killGraceMs: 200,
    });
    expect(r.timedOut).toBe(true);
    const grandchild = Number(r.stdout.trim());
    expect(grandchild).toBeGreaterThan(0);
    expect(await until(() => !alive(grandchild))).toBe(true);
    expect(describeFailure("tests", r)).toMatch(/timed out/);
  });

  it("kills what a finished command left running in its group", async () => {
    const r = await runCommand("sleep 30 >/dev/null 2>&1 & echo $!");
    expect(r.exitCode).toBe(0);
    const left = Number(r.stdout.trim());
    expect(await until(() => !alive(left))).toBe(true);
  });

  it("an already aborted signal runs nothing", async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await runCommand(["touch", "/tmp/should-not-exist-autofix"], { signal: ac.signal });
    expect(r).toMatchObject({ cancelled: true, pid: undefined });
  });
});
