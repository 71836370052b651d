import { describe, expect, it } from "vitest";
import { cleanLogLine, normalizeSignature, triageStream, triageText } from "../../src/logs/index.js";

const ts = (i: number) =>
  `2024-05-01T12:${String(Math.floor(i / 60) % 60).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}.1234567Z`;
/** A log in GitHub's format from plain lines. */
const gh = (lines: string[]) => `${lines.map((l, i) => `${ts(i)} ${l}`).join("\n")}\n`;

describe("line cleaning", () => {
  it("strips GitHub timestamps, ANSI colours and CR", () => {
    expect(cleanLogLine("2024-05-01T12:34:56.1234567Z \x1b[31mFAILED\x1b[0m tests/a.py::t\r")).toBe(
      "FAILED tests/a.py::t",
    );
    expect(cleanLogLine("no timestamp here")).toBe("no timestamp here");
  });
});

describe("triage", () => {
  it("ignores the step script GitHub echoes under ##[group]Run", () => {
    const t = triageText(
      gh([
        "##[group]Run ./run.sh || grep 'Segmentation fault' log.txt",
        "./run.sh || grep 'Segmentation fault' log.txt  # TT_THROW, Killed, No space left on device",
        "shell: /usr/bin/bash -e {0}",
        "##[endgroup]",
        "all good",
      ]),
    );
    expect(t.failureFound).toBe(false);
    expect(t.errorClass).toBe("unknown");
    expect(t.excerpt).toBe("");
  });

  it("names the step of the failure from its ##[group]Run header", () => {
    const t = triageText(
      gh(["##[group]Run make test", "make test", "##[endgroup]", "Segmentation fault (core dumped)"]),
    );
    expect(t.primary).toMatchObject({
      step: "make test",
      line: 4,
      message: "Segmentation fault (core dumped)",
    });
    expect(t.excerpt).toContain("(step: make test)");
  });

  it("prefers the root cause: a segfault over the assertion failures it caused, a test failure over a lost runner", () => {
    const crash = triageText(
      gh([
        "FAILED tests/a.py::test_x - AssertionError: boom",
        "Segmentation fault",
        "The runner has received a shutdown signal.",
      ]),
    );
    expect(crash.errorClass).toBe("segfault");
    expect(crash.failingTests).toEqual(["tests/a.py::test_x"]);
    const lost = triageText(
      gh(["FAILED tests/a.py::test_x - AssertionError: boom", "The runner has received a shutdown signal."]),
    );
    expect(lost.errorClass).toBe("assertion-failure");
    expect(lost.hits.map((h) => h.family)).toEqual(["assertion", "infra-runner"]);
  });

  it("falls back to ##[error] lines when nothing more specific is there", () => {
    const t = triageText(gh(["doing things", "##[error]Process completed with exit code 2."]));
    expect(t).toMatchObject({ failureFound: true, errorClass: "unknown", family: "exit-code" });
    expect(t.errorAnnotations).toEqual(["Process completed with exit code 2."]);
  });

  it("keeps the excerpt within the budget and the failure lists bounded, whatever the number of failures", () => {
    const lines: string[] = [];
    for (let i = 0; i < 600; i++) {
      lines.push(
        `tests/t.py::test_${i} PASSED`,
        "some output",
        `FAILED tests/t.py::test_f${i} - AssertionError: value ${i} != 0`,
      );
    }
    lines.push("Segmentation fault (core dumped)");
    const t = triageText(gh(lines), { excerptBudget: 4000, maxFailingTests: 50, maxBlocks: 8 });
    expect(Buffer.byteLength(t.excerpt)).toBeLessThanOrEqual(4000);
    expect(t.excerpt).toContain("Segmentation fault (core dumped)");
    expect(t.excerpt).toMatch(/\[\d+ more failure blocks? not shown\]/);
    expect(t.failingTests).toHaveLength(50);
    expect(t.failingTestsOmitted).toBe(550);
    expect(t.stats.blocks).toBeLessThanOrEqual(8);
    expect(t.hits.find((h) => h.family === "assertion")?.count).toBe(600);
  });

  it("survives a gigantic line without a newline and still sees what follows", async () => {
    async function* chunks() {
      yield "2024-05-01T12:00:00.0000000Z start\n";
      for (let i = 0; i < 64; i++) yield "x".repeat(64 * 1024);
      yield "\n2024-05-01T12:00:01.0000000Z E   MemoryError\n";
    }
    const t = await triageStream(chunks());
    expect(t.errorClass).toBe("resource-exhaustion");
    expect(t.stats.lines).toBe(3);
    expect(t.stats.bytes).toBeGreaterThan(4 * 1024 * 1024);
    expect(Buffer.byteLength(t.excerpt)).toBeLessThanOrEqual(12 * 1024);
  });

  it("redacts tokens that a log prints", () => {
    const token = `ghs_${"A1b2C3d4".repeat(5)}`;
    const t = triageText(
      gh([`fatal: could not read Username for 'https://x-access-token:${token}@github.com'`]),
    );
    expect(t.errorClass).toBe("infra");
    expect(JSON.stringify(t)).not.toContain(token);
    expect(t.excerpt).toContain("[REDACTED]");
  });

  it("names a GoogleTest test that crashed before gtest could report it", () => {
    const t = triageText(
      gh([
        "[ RUN      ] Suite.Ok",
        "[       OK ] Suite.Ok (1 ms)",
        "[ RUN      ] Suite.Crash",
        "Segmentation fault",
      ]),
    );
    expect(t.failingTests).toEqual(["Suite.Crash"]);
    expect(t.primary?.test).toBe("Suite.Crash");
  });

  it("reports pytest test names from section headers when there is no summary", () => {
    const t = triageText(
      gh([
        "=== FAILURES ===",
        "___ test_a[1] ___",
        "E   AssertionError: x",
        "___ TestK.test_b ___",
        "E   ValueError: y",
      ]),
    );
    expect(t.failingTests).toEqual(["test_a[1]", "TestK.test_b"]);
  });
});

describe("signature and fingerprint", () => {
  it("folds volatile parts: times, addresses, temp paths, checkout prefixes, PIDs, durations", () => {
    const a = normalizeSignature(
      "2024-05-01 12:00:01.123 pid 4123 at 0x7f3a2b1c4d30 /tmp/pytest-of-ci/pytest-7/x.bin /work/tt_metal/impl/device.cpp:12 took 3.2s",
    );
    const b = normalizeSignature(
      "2024-06-02 03:04:05.999 pid 77 at 0x55e0c1e0bb1c /tmp/abc/y.bin /home/ubuntu/_work/tt-metal/tt-metal/tt_metal/impl/device.cpp:340 took 120 ms",
    );
    expect(a).toBe(b);
    expect(a).toBe("<ts> pid <id> at <addr> <tmp> .../impl/device.cpp:N took <dur>");
  });

  it("tells different failures apart", () => {
    const fp = (line: string) => triageText(gh([line])).fingerprint;
    expect(fp("E   AssertionError: PCC 0.91")).toBe(fp("E   AssertionError: PCC 0.95"));
    expect(fp("E   AssertionError: PCC 0.91")).not.toBe(fp("E   AssertionError: shape mismatch"));
    expect(fp("TIMEOUT: device timeout")).not.toBe(fp("Read unexpected run_mailbox value: 0x40"));
    // The same assertion in two different tests is two failures.
    expect(fp("FAILED a.py::test_x - AssertionError: bad")).not.toBe(
      fp("FAILED a.py::test_y - AssertionError: bad"),
    );
    // A device timeout is the same failure whichever test hit it.
    expect(fp("FAILED a.py::test_x - Failed: Timeout >300.0s")).toBe(
      fp("FAILED a.py::test_y - Failed: Timeout >300.0s"),
    );
  });
});

describe("a run group that is never closed", () => {
  it("still reports the ##[error] that ends the step, and reads the output after it", () => {
    const log = [
      "2026-11-24T10:00:00.0000000Z ##[group]Run bash tests/run.sh",
      "2026-11-24T10:00:00.1000000Z bash tests/run.sh",
      "2026-11-24T10:00:01.0000000Z ##[error]Process completed with exit code 1.",
      "2026-11-24T10:00:01.1000000Z FAILED tests/test_add.py::test_add - AssertionError: expected 5, got -1",
    ].join("\n");
    const t = triageText(log);
    expect(t.failureFound).toBe(true);
    expect(t.failingTests).toEqual(["tests/test_add.py::test_add"]);
    expect(t.errorAnnotations).toEqual(["Process completed with exit code 1."]);
  });

  it("a check script's own verdict (FAILED: ... expected ...) is an assertion failure", () => {
    const t = triageText(
      "run\nFAILED: add.sh 2 3 printed 2, expected 5\nProcess completed with exit code 1.\n",
    );
    expect(t.errorClass).toBe("assertion-failure");
  });
});
