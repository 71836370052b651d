import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { throttleDecision } from "../../src/status/reporter.js";
import {
  CardAllocator,
  checkHealth,
  chooseResetCommand,
  findDeviceHolders,
  isDeviceLink,
  killDeviceHolders,
  resetCards,
} from "../../src/worker/hygiene.js";

function fakeProc() {
  const root = mkdtempSync(join(tmpdir(), "autofix-proc-"));
  const dev = join(root, "dev", "tenstorrent");
  mkdirSync(dev, { recursive: true });
  writeFileSync(join(dev, "0"), "");
  const proc = join(root, "proc");
  const addPid = (pid: number, targets: string[]) => {
    mkdirSync(join(proc, String(pid), "fd"), { recursive: true });
    for (const [i, t] of targets.entries()) symlinkSync(t, join(proc, String(pid), "fd", String(i)));
  };
  addPid(100, ["/dev/null", join(dev, "0")]);
  addPid(200, ["/dev/null", "/tmp/x"]);
  addPid(300, [join(dev, "0")]);
  mkdirSync(join(proc, "self"), { recursive: true });
  return { dev, proc };
}

describe("device holders", () => {
  it("finds pids with fds into the device folder in a fake /proc", async () => {
    const { dev, proc } = fakeProc();
    expect((await findDeviceHolders(dev, { procRoot: proc })).sort()).toEqual([100, 300]);
    expect(isDeviceLink("/dev/tenstorrent/0", "/dev/tenstorrent")).toBe(true);
    expect(isDeviceLink("/dev/tenstorrent-other/0", "/dev/tenstorrent")).toBe(false);
    expect(isDeviceLink("/dev/tenstorrent/1", "/dev/tenstorrent", ["0"])).toBe(false);
    expect(await findDeviceHolders(dev, { procRoot: proc, cards: ["1"] })).toEqual([]);
  });
  it("SIGTERMs holders, then SIGKILLs those still there", async () => {
    const { dev, proc } = fakeProc();
    const sent: string[] = [];
    const killed = await killDeviceHolders(dev, {
      procRoot: proc,
      graceMs: 10,
      kill: (pid, sig) => sent.push(`${pid}:${sig}`),
    });
    expect(killed.sort()).toEqual([100, 300]);
    expect(sent.sort()).toEqual(["100:SIGKILL", "100:SIGTERM", "300:SIGKILL", "300:SIGTERM"]);
  });
});

describe("reset and health", () => {
  it("the host reset command wins over the repository's; empty means none", () => {
    expect(chooseResetCommand("tt-smi -glx_reset_auto", "tt-smi -r")).toEqual({
      command: "tt-smi -glx_reset_auto",
      where: "host",
    });
    // The repository's command is its code: it runs in the job's sandbox, never on the host.
    expect(chooseResetCommand(undefined, "tt-smi -r")).toEqual({ command: "tt-smi -r", where: "job" });
    expect(chooseResetCommand(" ", "")).toEqual({ command: "", where: "job" });
  });
  it("retries a failed reset once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "autofix-reset-"));
    const flag = join(dir, "once");
    const cmd = `if [ -e '${flag}' ]; then exit 0; else touch '${flag}'; echo busy >&2; exit 1; fi`;
    expect(await resetCards(cmd)).toEqual({ ok: true, attempts: 2 });
    const bad = await resetCards("echo device busy >&2; exit 4");
    expect(bad).toMatchObject({ ok: false, error: expect.stringMatching(/exit code 4: device busy/) });
  });
  it("health: device nodes must be present, tt-smi must answer", async () => {
    const { dev } = fakeProc();
    expect(await checkHealth({ deviceDir: dev, cardsNeeded: 1, ttSmi: null })).toBeNull();
    expect(await checkHealth({ deviceDir: dev, cardsNeeded: 2, ttSmi: null })).toMatch(
      /has 1 device node, 2 needed/,
    );
    expect(await checkHealth({ deviceDir: "/nonexistent", cardsNeeded: 0, ttSmi: null })).toBeNull();
    const bin = mkdtempSync(join(tmpdir(), "autofix-ttsmi-"));
    writeFileSync(join(bin, "tt-smi"), "#!/bin/sh\necho 'ERROR: no chips' >&2\nexit 1\n", { mode: 0o755 });
    expect(await checkHealth({ deviceDir: dev, cardsNeeded: 1, ttSmi: join(bin, "tt-smi") })).toMatch(
      /tt-smi -ls: exit code 1: ERROR: no chips/,
    );
  });
});

describe("CardAllocator", () => {
  it("hands out disjoint card groups and queues jobs until cards are free", async () => {
    const a = new CardAllocator(["0", "1", "2", "3"]);
    const t3k = await a.acquire(4);
    expect(t3k).toEqual(["0", "1", "2", "3"]);
    let got: string[] | null = null;
    const waiting = a.acquire(1).then((c) => {
      got = c;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(got).toBeNull();
    a.release(t3k);
    await waiting;
    expect(got).toEqual(["0"]);
    expect(await a.acquire(0)).toEqual([]);
    const ac = new AbortController();
    const blocked = a.acquire(4, ac.signal);
    ac.abort();
    await expect(blocked).rejects.toThrow(/aborted/);
  });
});

describe("throttleDecision", () => {
  const base = { minIntervalMs: 5_000, lastState: "running" as const, nextState: "running" as const };
  it("first edit and state changes go out at once; others wait for the interval", () => {
    expect(throttleDecision({ ...base, now: 0, lastEditAt: null })).toEqual({ flush: true });
    expect(throttleDecision({ ...base, now: 1_000, lastEditAt: 0 })).toEqual({ flush: false, waitMs: 4_000 });
    expect(throttleDecision({ ...base, now: 1_000, lastEditAt: 0, nextState: "cancelled" })).toEqual({
      flush: true,
    });
    expect(throttleDecision({ ...base, now: 5_000, lastEditAt: 0 })).toEqual({ flush: true });
  });
});
