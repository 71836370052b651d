import { describe, expect, it } from "vitest";
import type { CliIO } from "../../src/cli/command.js";
import { createLogsCommand } from "../../src/cli/commands/logs.js";
import { parseTestLine } from "../../src/logs/classify.js";
import { renderFailure, triageText } from "../../src/logs/index.js";

const ts = (i: number) =>
  `2024-05-01T12:${String(Math.floor(i / 60) % 60).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}.1234567Z`;
/** A log in GitHub's format from plain lines. */
const gh = (lines: string[]) => `${lines.map((l, i) => `${ts(i)} ${l}`).join("\n")}\n`;

const ID =
  "tests/ttnn/unit_tests/operations/data_movement/test_gather.py::test_gather_wide[shape=(1, 151936)-dim=-1]";
const PLAIN = "tests/ttnn/unit_tests/operations/test_gather.py::test_gather_wide[shape0-int32]";

/** A pytest run that failed `id`, with its FAILURES section (whose header names the leaf only). */
function pytestLog(summaryLine: string, leaf: string): string {
  return gh([
    "##[group]Run pytest tests/ttnn",
    "pytest tests/ttnn",
    "##[endgroup]",
    "============================= test session starts ==============================",
    "=================================== FAILURES ===================================",
    `_______________________ ${leaf} _______________________`,
    "    def test_gather_wide(shape, dim):",
    ">       assert_with_pcc(expected, actual)",
    "E       AssertionError: PCC 0.12 below 0.99",
    "=========================== short test summary info ============================",
    summaryLine,
    "========================= 1 failed, 3 passed in 12.34s =========================",
  ]);
}

describe("failing tests keep their full id", () => {
  it.each([
    ["the summary line", `FAILED ${ID} - AssertionError: PCC 0.12 below 0.99`, ID],
    ["a trailing space after FAILED id", `FAILED ${PLAIN} `, PLAIN],
    ["a trailing space after FAILED id with spaces in its parameters", `FAILED ${ID}  `, ID],
    ["xdist: [gw0] [ 50%] FAILED id", `[gw0] [ 50%] FAILED ${PLAIN} `, PLAIN],
    ["xdist: [gw0] FAILED id", `[gw3] FAILED ${ID}`, ID],
    ["verbose: id FAILED [ 50%]", `${ID} FAILED                                     [ 50%]`, ID],
  ])("%s", (_name, line, id) => {
    const leaf = id.slice(id.lastIndexOf("::") + 2);
    const t = triageText(pytestLog(line, leaf));
    // The id a person re-runs the test by, once: not also the header's bare leaf.
    expect(t.failingTests).toEqual([id]);
  });

  it("parseTestLine reads the id, the outcome and the message", () => {
    expect(parseTestLine(`FAILED ${ID} - AssertionError: x`)).toEqual({
      kind: "pytest-result",
      id: ID,
      outcome: "FAILED",
      message: "AssertionError: x",
    });
    expect(parseTestLine("ERROR tests/a.py - ImportError: no module")).toMatchObject({
      id: "tests/a.py",
      outcome: "ERROR",
    });
    expect(parseTestLine("FAILED tests/a.py::t[nested [1, 2] list] ")).toMatchObject({
      id: "tests/a.py::t[nested [1, 2] list]",
    });
    // Not ids: text after the id that is not a message, unbalanced brackets, no .py path.
    expect(parseTestLine("FAILED tests/a.py::t and more words")).toBeNull();
    expect(parseTestLine("FAILED tests/a.py::t[open")).toBeNull();
    expect(parseTestLine("FAILED to start the device")).toBeNull();
  });
});

describe("the excerpt", () => {
  /** A log whose failure block is long: the failure line, then many lines of its output. */
  const longBlock = () => {
    const lines = ["##[group]Run make test", "make test", "##[endgroup]"];
    for (let i = 0; i < 30; i++) lines.push(`setup line ${i}`);
    lines.push("Segmentation fault (core dumped)");
    for (let i = 0; i < 60; i++) lines.push(`TT_THROW backtrace frame ${i} ${"x".repeat(40)}`);
    return lines;
  };

  it("with a budget, the header's line number is the number of the first line shown", () => {
    const lines = longBlock();
    const t = triageText(gh(lines), { excerptBudget: 600 });
    expect(Buffer.byteLength(t.excerpt)).toBeLessThanOrEqual(600);
    const shown = t.excerpt.split("\n");
    const header = /^--- line (\d+) \(step: make test\) ---$/.exec(shown[0]!);
    expect(header, t.excerpt).not.toBeNull();
    // Line numbers count from 1 in the log as written.
    expect(lines[Number(header![1]) - 1]).toBe(shown[1]);
    // One header only.
    expect(shown.filter((l) => l.startsWith("--- line "))).toHaveLength(1);
  });

  it("a failure run longer than one block is shown under one header, not split by a second", () => {
    // 150 consecutive failure lines: kept as two blocks (80 lines at most each) that follow each other.
    const lines = ["##[group]Run make test", "make test", "##[endgroup]"];
    for (let i = 0; i < 150; i++) lines.push(`TT_THROW frame ${i}`);
    lines.push("done");
    const t = triageText(gh(lines));
    expect(t.stats.blocks).toBeGreaterThan(1);
    const shown = t.excerpt.split("\n");
    expect(shown.filter((l) => l.startsWith("--- line "))).toEqual(["--- line 4 (step: make test) ---"]);
    expect(shown.slice(1, 151)).toEqual(lines.slice(3, 153));
  });

  it("blocks apart in the log keep a header each, with their own line", () => {
    const lines = ["start", "Segmentation fault (core dumped)"];
    for (let i = 0; i < 40; i++) lines.push(`quiet ${i}`);
    lines.push("TT_THROW @ device.cpp:12: bad");
    const t = triageText(gh(lines));
    const headers = t.excerpt.split("\n").filter((l) => l.startsWith("--- line "));
    expect(headers).toEqual(["--- line 1 ---", `--- line ${lines.length - 6} ---`]);
  });
});

describe("an empty log", () => {
  it("says it is empty", async () => {
    const t = triageText("");
    expect(t.stats.bytes).toBe(0);
    const text = renderFailure({ label: "job.log", job: null, annotations: [], triage: t });
    expect(text).toContain("the log is empty (0 bytes)");
    expect(text).not.toContain("no failure recognised");

    const out: string[] = [];
    const io: CliIO = { out: (l) => out.push(l), err: () => {}, env: {}, cwd: "/" };
    const cmd = createLogsCommand({ stdin: () => [] });
    expect(await cmd.run(["-"], io)).toBe(0);
    expect(out.join("\n")).toContain("the log is empty");
  });

  it("a log of one blank line is not empty: no failure recognised in 1 line", () => {
    const t = triageText("\n");
    const text = renderFailure({ label: "x", job: null, annotations: [], triage: t });
    expect(text).toContain("no failure recognised in 1 line ");
  });
});
