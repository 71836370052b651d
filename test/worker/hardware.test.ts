import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/run.js";
import { decidePools, detectHardware, parseTtSmiList } from "../../src/worker/hardware.js";

const T3K_LS = `
Gathering Information ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 100% 0:00:00
                                 All available boards on host:
┏━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ PCI Dev ID  ┃ Board Type      ┃ Device Series          ┃ Board Number           ┃
┡━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━┩
│ 0           │ Wormhole        │ n300 L                 │ 010001851172a05f       │
│ 1           │ Wormhole        │ n300 L                 │ 010001851172a060       │
│ 2           │ Wormhole        │ n300 L                 │ 010001851172a061       │
│ 3           │ Wormhole        │ n300 L                 │ 010001851172a062       │
│ N/A         │ Wormhole        │ n300 R                 │ 010001851172a05f       │
│ N/A         │ Wormhole        │ n300 R                 │ 010001851172a060       │
│ N/A         │ Wormhole        │ n300 R                 │ 010001851172a061       │
│ N/A         │ Wormhole        │ n300 R                 │ 010001851172a062       │
└─────────────┴─────────────────┴────────────────────────┴────────────────────────┘
                                 Boards that can be reset:
┏━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┓
│ 0           │ Wormhole        │ n300 L                 │ 010001851172a05f       │
│ 1           │ Wormhole        │ n300 L                 │ 010001851172a060       │
└─────────────┴─────────────────┴────────────────────────┴────────────────────────┘
`;

describe("parseTtSmiList", () => {
  it("counts one board per N300 (local and remote chip) and stops before the reset section", () => {
    expect(parseTtSmiList(T3K_LS)).toEqual(["n300", "n300", "n300", "n300"]);
  });
  it("reads ASCII tables and plain lines, and prefers the longest board name", () => {
    expect(
      parseTtSmiList(
        "| 0 | Blackhole | p150a | 0000000000abcdef |\n| 1 | Blackhole | p150a | 0000000000abcdee |",
      ),
    ).toEqual(["p150a", "p150a"]);
    expect(parseTtSmiList("0  Wormhole  n150  0100018511720001")).toEqual(["n150"]);
    expect(parseTtSmiList("No Tenstorrent devices detected")).toEqual([]);
  });
});

const hw = (devices: number, boards: string[] | null) => ({
  deviceDir: "/dev/tenstorrent",
  devices: Array.from({ length: devices }, (_, i) => String(i)),
  boards,
  ttSmi: boards ? "/usr/bin/tt-smi" : null,
});

describe("decidePools", () => {
  it("detects pools from the boards: a T3K host serves cpu, n300 (4 groups) and t3k (1 group)", () => {
    const d = decidePools(hw(4, ["n300", "n300", "n300", "n300"]), []);
    expect(d.serve.map((p) => [p.pool, p.concurrency])).toEqual([
      ["cpu", 1],
      ["n300", 4],
      ["t3k", 1],
    ]);
    expect(d.refused).toEqual([]);
  });
  it("serves only cpu when cards exist but the model is unknown, and says why", () => {
    const d = decidePools(hw(1, null), []);
    expect(d.serve.map((p) => p.pool)).toEqual(["cpu"]);
    expect(d.notes.join()).toMatch(/board model is unknown.*--pool/);
  });
  it("refuses a requested pool the host lacks, unless forced", () => {
    const d = decidePools(hw(0, null), ["n150"]);
    expect(d.serve).toEqual([]);
    expect(d.refused[0]?.reason).toMatch(/pool n150 needs 1 card .* has 0 device nodes; pass --force/);
    const wrongBoard = decidePools(hw(1, ["n300"]), ["n150"]);
    expect(wrongBoard.refused[0]?.reason).toMatch(/needs 1 n150 board but tt-smi reports 1x n300/);
    const forced = decidePools(hw(0, null), ["n150"], { force: true });
    expect(forced.serve).toEqual([
      { pool: "n150", cards: 1, concurrency: 1, forced: expect.stringMatching(/needs 1 card/) },
    ]);
  });
  it("accepts a requested pool on device count alone when tt-smi is missing, with a note", () => {
    const d = decidePools(hw(2, null), ["n150", "cpu"], { cpuConcurrency: 3 });
    expect(d.serve.map((p) => [p.pool, p.concurrency])).toEqual([
      ["n150", 2],
      ["cpu", 3],
    ]);
    expect(d.notes.join()).toMatch(/not verified/);
  });
});

function fakeHost(devices: number, ttSmiOutput?: string) {
  const root = mkdtempSync(join(tmpdir(), "autofix-hw-"));
  const dev = join(root, "dev");
  mkdirSync(dev);
  for (let i = 0; i < devices; i++) writeFileSync(join(dev, String(i)), "");
  const bin = join(root, "bin");
  mkdirSync(bin);
  if (ttSmiOutput !== undefined) {
    writeFileSync(join(root, "out.txt"), ttSmiOutput);
    writeFileSync(
      join(bin, "tt-smi"),
      `#!/bin/sh\n[ "$1" = -ls ] || exit 3\ncat '${join(root, "out.txt")}'\n`,
    );
    chmodSync(join(bin, "tt-smi"), 0o755);
  }
  return { dev, env: { PATH: `${bin}:/usr/bin:/bin`, AUTOFIX_DEVICE_DIR: dev } };
}

describe("detectHardware", () => {
  it("reads device nodes and a fake tt-smi on PATH", async () => {
    const h = fakeHost(4, T3K_LS);
    const found = await detectHardware({ env: h.env });
    expect(found.devices).toEqual(["0", "1", "2", "3"]);
    expect(found.ttSmi).toMatch(/bin\/tt-smi$/);
    expect(found.boards).toEqual(["n300", "n300", "n300", "n300"]);
  });
  it("works without tt-smi and without the device folder", async () => {
    const found = await detectHardware({
      env: { PATH: "/nonexistent", AUTOFIX_DEVICE_DIR: "/nonexistent/dev" },
    });
    expect(found).toMatchObject({ devices: [], ttSmi: null, boards: null });
  });
});

describe("autofix worker (hardware refusal)", () => {
  it("refuses a pool without hardware with a clear message and exit code 2, before needing any secret", async () => {
    const h = fakeHost(0);
    const out: string[] = [];
    const err: string[] = [];
    const code = await runCli(["worker", "--pool", "n150"], {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      env: h.env,
      cwd: tmpdir(),
    });
    expect(code).toBe(2);
    expect(err.join("\n")).toMatch(
      /refusing to start:\n\s+- pool n150 needs 1 card .*0 device nodes; pass --force/,
    );
    expect(out.join("\n")).toMatch(/tt-smi not on PATH/);
  });
  it("with --force it gets past the hardware check to the settings check", async () => {
    const h = fakeHost(0);
    const err: string[] = [];
    const code = await runCli(["worker", "--pool", "n150", "--force"], {
      out: () => {},
      err: (l) => err.push(l),
      env: h.env,
      cwd: tmpdir(),
    });
    expect(code).toBe(2);
    expect(err.join("\n")).toMatch(/the worker cannot start:[\s\S]*APP_ID: missing/);
  });
});
