import { describe, expect, it } from "vitest";
import { findActionsUrl, parseCommand, proseLines } from "../../src/triggers/command.js";

describe("/autofix command grammar", () => {
  it("takes a free-text prompt and the options", () => {
    expect(
      parseCommand("/autofix --flaky --test tests/test_x.py --pool n150 reduce-scatter hangs on T3K"),
    ).toEqual({
      kind: "run",
      prompt: "reduce-scatter hangs on T3K",
      deterministic: false,
      existingTestPath: "tests/test_x.py",
      pool: "n150",
    });
    expect(parseCommand("/autofix")).toEqual({ kind: "run", prompt: "", deterministic: true });
  });

  it("treats a bare Actions URL as the log source and quoted words as one token", () => {
    expect(parseCommand('/autofix "wide gather" https://github.com/o/r/actions/runs/1/job/2')).toEqual({
      kind: "run",
      prompt: "wide gather",
      deterministic: true,
      url: "https://github.com/o/r/actions/runs/1/job/2",
    });
  });

  it("recognises the subcommands and refuses arguments to them", () => {
    for (const k of ["status", "cancel", "retry", "help"])
      expect(parseCommand(`/autofix ${k}`)).toEqual({ kind: k });
    expect(parseCommand("/autofix cancel now")).toEqual({
      kind: "invalid",
      error: "`cancel` takes no arguments",
    });
  });

  it("says what is wrong with bad input", () => {
    expect(parseCommand("/autofix --frob")).toEqual({ kind: "invalid", error: "unknown option `--frob`" });
    expect(parseCommand("/autofix --test")).toEqual({ kind: "invalid", error: "`--test` needs a path" });
    expect(parseCommand("/autofix --test ../../etc/passwd")).toMatchObject({ kind: "invalid" });
    expect(parseCommand("/autofix --logs https://example.com/x")).toMatchObject({
      kind: "invalid",
      error: expect.stringMatching(/Actions run or job URL/),
    });
    expect(parseCommand('/autofix "open')).toEqual({ kind: "invalid", error: "a quote is not closed" });
  });

  it("only counts a command at the start of a prose line, first one wins", () => {
    expect(parseCommand("thanks!\n/autofix retry\n/autofix cancel")).toEqual({ kind: "retry" });
    expect(parseCommand("text /autofix retry")).toBeNull();
    expect(parseCommand("/autofixes are great")).toBeNull();
    expect(parseCommand("~~~\n/autofix retry\n~~~\n")).toBeNull();
    expect(parseCommand("````\n```\n/autofix retry\n````")).toBeNull();
    expect(parseCommand("<!--\n/autofix retry\n-->")).toBeNull();
    expect(proseLines("a\n> quoted\n```\ncode\n```\nb")).toEqual(["a", "b"]);
  });

  it("finds an Actions URL in issue text", () => {
    expect(findActionsUrl("see (https://github.com/o/r/actions/runs/123/attempts/2) and more")).toBe(
      "https://github.com/o/r/actions/runs/123/attempts/2",
    );
    expect(findActionsUrl("https://github.com/o/r/pull/5")).toBeUndefined();
  });

  it("--allow-test-changes lets a fix change tests, and only when asked", () => {
    expect(parseCommand("/autofix --allow-test-changes drop the obsolete test")).toMatchObject({
      kind: "run",
      allowTestChanges: true,
      prompt: "drop the obsolete test",
    });
    expect(parseCommand("/autofix fix it")).not.toHaveProperty("allowTestChanges");
  });
});
