import { describe, expect, it } from "vitest";
import { poolForRunnerLabels } from "../../src/config/pools.js";
import { DEFAULT_REPO_CONFIG, effectivePoolRules, parseRepoConfig } from "../../src/config/repo-config.js";

describe("repository config (.github/autofix.yml)", () => {
  it("defaults every field, matching the original framework's budgets and bars", () => {
    const r = parseRepoConfig("");
    expect(r.ok).toBe(true);
    expect(DEFAULT_REPO_CONFIG).toMatchObject({
      trigger_label: "autofix",
      failure_threshold: 3,
      watched_branches: [],
      default_pool: "cpu",
      budgets: { reproduce_minutes: 5, fix_minutes: 10, pr_minutes: 5 },
      stability: { deterministic_failures: 2, deterministic_passes: 2, nondeterministic_passes: 5 },
      allowed_bots: [],
      include_test_in_pr: false,
    });
  });

  it("keeps defaults for fields a partial section leaves out", () => {
    const r = parseRepoConfig("budgets:\n  fix_minutes: 20\nstability:\n  nondeterministic_passes: 10\n");
    expect(r.ok && r.config.budgets).toMatchObject({ fix_minutes: 20, reproduce_minutes: 5 });
    expect(r.ok && r.config.stability).toMatchObject({
      nondeterministic_passes: 10,
      deterministic_passes: 2,
    });
  });

  it("reports unknown keys as warnings, with their place, and still applies the rest", () => {
    const r = parseRepoConfig("trigger_lable: fixme\nfailure_threshold: 4\nbudgets:\n  fix_minuts: 3\n");
    expect(r.ok).toBe(true);
    expect([...r.warnings].sort()).toEqual([
      "`budgets`: unknown key `fix_minuts` (ignored)",
      "unknown key `trigger_lable` (ignored)",
    ]);
    expect(r.ok && r.config.failure_threshold).toBe(4);
  });

  it("answers a bad file with errors a person can act on", () => {
    const r = parseRepoConfig(
      'failure_threshold: "three"\ndefault_pool: gpu\npool_rules:\n  - pool: n150\n  - pool: t3k\n    pattern: "("\n',
    );
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors).toContain('`failure_threshold`: must be a number, got the string "three"');
      expect(
        r.errors.some((e) => e.startsWith("`default_pool`: must be one of the known pools: cpu, n150")),
      ).toBe(true);
      expect(r.errors).toContain(
        "`pool_rules[0]`: needs `labels` (all must be present) or `pattern` (a regular expression)",
      );
      expect(r.errors).toContain("`pool_rules[1].pattern`: is not a valid regular expression");
    }
  });

  it("rejects YAML that does not parse, and a file that is a list", () => {
    const bad = parseRepoConfig("budgets: [unclosed");
    expect(!bad.ok && bad.errors[0]).toMatch(/^not valid YAML/);
    const list = parseRepoConfig("- a\n- b\n");
    expect(!list.ok && list.errors[0]).toMatch(/must be a mapping/);
  });

  it("maps TT runner labels to pools, repository rules first", () => {
    const rules = effectivePoolRules(DEFAULT_REPO_CONFIG);
    const cases: Array<[string[], string]> = [
      [["N150", "in-service"], "n150"],
      [["N150", "in-service", "cloud-virtual-machine"], "n150"],
      [["N300", "in-service"], "n300"],
      [["arch-wormhole_b0", "config-t3000", "pipeline-functional", "in-service"], "t3k"],
      [["arch-wormhole_b0", "topology-6u", "pipeline-functional", "in-service"], "galaxy"],
      [["arch-blackhole", "topology-6u", "pipeline-functional", "in-service"], "galaxy"],
      [["P150", "arch-blackhole"], "p150"],
      [["P100"], "p100"],
      [["P300-viommu"], "p300"],
      [["tt-ubuntu-2204-N150-stable"], "n150"],
      [["tt-ubuntu-2204-N300-stable"], "n300"],
      [["tt-ubuntu-2204-P150b-viommu-stable"], "p150"],
      [["ubuntu-latest"], "cpu"],
    ];
    for (const [labels, pool] of cases)
      expect(poolForRunnerLabels(labels, rules, "cpu"), labels.join(",")).toBe(pool);

    const custom = parseRepoConfig("pool_rules:\n  - pool: n300\n    labels: [N150]\n");
    expect(custom.ok && poolForRunnerLabels(["N150"], effectivePoolRules(custom.config), "cpu")).toBe("n300");
  });
});
