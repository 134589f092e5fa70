// Policy files: a malformed file is refused with its file, line and rule; a directory loads in name
// order; hot reload swaps in a policy that loads and keeps the old one when a file is broken.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CompiledPolicy } from "../../src/policy/engine.js";
import { LivePolicy } from "../../src/policy/live-policy.js";
import { PolicyLoadError, formatProblem } from "../../src/policy/policy-error.js";
import { checkPolicyFiles, loadPolicyDirectory, parsePolicyFile } from "../../src/policy/policy-file.js";
import { watchPolicyDirectory } from "../../src/policy/watch.js";

const GOOD = `# A development policy.
version: 1
layer: global
rules:
  - id: demo-query
    effect: allow
    principals: [alice, bob]
    actions: [invoke]
    resources: ["tool:database/query"]
    params:
      limit: { min: 1, max: 100 }
    rate_limit: 100/minute

  - id: no-drop
    effect: deny
    principals: ["*"]
    actions: ["*"]
    resources: ["tool:database/drop"]
    reason: Dropping tables is never allowed from an agent
`;

/** A file whose rule list starts at line 3, so a rule's fields are at predictable lines. */
const withRule = (body: string): string =>
  `layer: global\nrules:\n  - id: r1\n    effect: allow\n    principals: [alice]\n    actions: [invoke]\n    resources: ["tool:a"]\n${body}`;

interface Malformed {
  readonly name: string;
  readonly text: string;
  readonly line: number;
  readonly rule?: string;
  readonly message: RegExp;
}

const malformed: Malformed[] = [
  {
    name: "YAML that does not parse",
    text: "rules:\n  - id: x\n   effect: allow\n",
    line: 3,
    message: /not valid YAML/,
  },
  {
    name: "a duplicate key",
    text: "rules: []\nrules: []\n",
    line: 2,
    message: /not valid YAML: Map keys must be unique/,
  },
  {
    name: "an unknown top-level key",
    text: "rulez: []\nrules: []\n",
    line: 1,
    message: /rulez: unknown key/,
  },
  {
    name: "an unknown layer",
    text: "layer: galaxy\nrules: []\n",
    line: 1,
    message: /layer: must be one of global, org, team, app, user/,
  },
  {
    name: "a scope on the global layer",
    text: "scope: acme\nrules: []\n",
    line: 1,
    message: /the global layer has no scope/,
  },
  { name: "an empty document", text: "# nothing\n", line: 1, message: /the document is empty/ },
  {
    name: "rules that are not a list",
    text: "rules: {}\n",
    line: 1,
    message: /rules: must be a list of rules/,
  },
  {
    name: "an unknown key in a rule",
    text: withRule("    resource: [x]\n"),
    line: 8,
    rule: "r1",
    message: /resource: unknown key/,
  },
  {
    name: "a rule without an id",
    text: "rules:\n  - effect: allow\n    principals: [a]\n    actions: [invoke]\n    resources: ['*']\n",
    line: 2,
    rule: "rules[0]",
    message: /id: is required/,
  },
  {
    name: "a bad effect",
    text: withRule("").replace("effect: allow", "effect: permit"),
    line: 4,
    rule: "r1",
    message: /effect: must be allow or deny/,
  },
  {
    name: "a rule for nobody",
    text: withRule("").replace("    principals: [alice]\n", ""),
    line: 3,
    rule: "r1",
    message: /names no principals or roles/,
  },
  {
    name: "a resource without a kind",
    text: withRule("").replace('["tool:a"]', '["tool:a", "database/query"]'),
    line: 7,
    rule: "r1",
    message: /resources\[1\]: "database\/query": must be KIND:NAME/,
  },
  {
    name: "a ** inside a segment",
    text: withRule("").replace('["tool:a"]', '["tool:a**"]'),
    line: 7,
    rule: "r1",
    message: /"\*\*" must be a whole segment/,
  },
  {
    name: "a bad principal pattern",
    text: withRule("").replace("[alice]", "[robot:alice]"),
    line: 5,
    rule: "r1",
    message: /principals\[0\].*kind/,
  },
  {
    name: "a CEL condition that does not parse",
    text: withRule("    when: params.limit >\n"),
    line: 8,
    rule: "r1",
    message: /when: is not a valid condition/,
  },
  {
    name: "a CEL condition naming an unknown variable",
    text: withRule("    when: request.limit > 1\n"),
    line: 8,
    rule: "r1",
    message: /unknown name request/,
  },
  {
    name: "a parameter bound that is not a number",
    text: withRule("    params:\n      limit: { max: ten }\n"),
    line: 9,
    rule: "r1",
    message: /params\.limit\.max: must be a number/,
  },
  {
    name: "min above max",
    text: withRule("    params:\n      limit: { min: 5, max: 1 }\n"),
    line: 9,
    rule: "r1",
    message: /params\.limit\.min: is greater than max/,
  },
  {
    name: "a look-ahead pattern RE2 refuses",
    text: withRule("    params:\n      q: { pattern: '(?=a)b' }\n"),
    line: 9,
    rule: "r1",
    message: /params\.q\.pattern: is not an RE2 regular expression/,
  },
  {
    name: "an unknown parameter check",
    text: withRule("    params:\n      q: { maxlen: 3 }\n"),
    line: 9,
    rule: "r1",
    message: /params\.q\.maxlen: unknown check/,
  },
  {
    name: "a bad rate limit",
    text: withRule("    rate_limit: 5/fortnight\n"),
    line: 8,
    rule: "r1",
    message: /rate_limit: must be COUNT\/WINDOW/,
  },
  {
    name: "a rate limit on a deny rule",
    text: withRule("    rate_limit: 5/minute\n").replace("effect: allow", "effect: deny"),
    line: 8,
    rule: "r1",
    message: /only an allow rule/,
  },
  {
    name: "a bad intent",
    text: withRule("    intent: maybe\n"),
    line: 8,
    rule: "r1",
    message: /intent: must be "required"/,
  },
  {
    name: "a reason on two lines",
    text: withRule('    reason: "a\\nb"\n'),
    line: 8,
    rule: "r1",
    message: /reason: must be one line/,
  },
  {
    name: "a duplicate id in one file",
    text: withRule(
      "  - id: r1\n    effect: deny\n    principals: ['*']\n    actions: ['*']\n    resources: ['*']\n",
    ),
    line: 8,
    rule: "r1",
    message: /id: already used by the rule at line 3/,
  },
];

describe("policy files", () => {
  it("reads a valid file, with the line of every rule", () => {
    const { source, problems } = parsePolicyFile(GOOD, "policies/dev.yaml");
    expect(problems).toEqual([]);
    expect(source.rules.map((rule) => rule.id)).toEqual(["demo-query", "no-drop"]);
    expect(source.locations).toMatchObject({
      "demo-query": { file: "policies/dev.yaml", line: 5 },
      "no-drop": { file: "policies/dev.yaml", line: 14 },
    });
    expect(source.rules[0]).toMatchObject({
      params: { limit: { min: 1, max: 100 } },
      rateLimit: "100/minute",
    });
  });

  it.each(malformed)("names file, line and rule for $name", (row) => {
    const { problems } = parsePolicyFile(row.text, "policies/bad.yaml");
    expect(problems.length).toBeGreaterThan(0);
    const problem = problems.find((p) => row.message.test(p.message));
    expect(problem, problems.map(formatProblem).join("\n")).toBeDefined();
    expect(problem!.file).toBe("policies/bad.yaml");
    expect(problem!.line).toBe(row.line);
    if (row.rule !== undefined) expect(problem!.rule).toBe(row.rule);
    expect(formatProblem(problem!)).toMatch(new RegExp(`^policies/bad\\.yaml:${row.line}(:\\d+)?: `));
  });

  it("keeps the valid rules of a file that has a bad one", () => {
    const text = `${GOOD}  - id: broken\n    effect: allow\n`;
    const { source, problems } = parsePolicyFile(text, "p.yaml");
    expect(source.rules.map((rule) => rule.id)).toEqual(["demo-query", "no-drop"]);
    expect(problems.map((p) => p.rule)).toContain("broken");
  });
});

describe("policy directories", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "signet-policy-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("loads *.yaml and *.yml in name order, skipping hidden and other files", () => {
    writeFileSync(join(dir, "10-dev.yaml"), GOOD);
    writeFileSync(
      join(dir, "20-org.yml"),
      "layer: org\nrules:\n  - { id: org-all, effect: allow, principals: ['*'], actions: ['*'], resources: ['*'] }\n",
    );
    writeFileSync(join(dir, ".#10-dev.yaml"), "not: [valid");
    writeFileSync(join(dir, "notes.txt"), "not policy");
    mkdirSync(join(dir, "sub.yaml"));
    const policy = loadPolicyDirectory(dir);
    expect(policy.rules.map((rule) => rule.id)).toEqual(["demo-query", "no-drop", "org-all"]);
    const request = {
      principal: { id: "alice" },
      action: "invoke",
      resource: "tool:database/query",
      params: { limit: 5 },
    };
    expect(policy.decide(request)).toMatchObject({
      effect: "allow",
      rules: ["demo-query", "org-all"],
      layer: "org",
    });
  });

  it("refuses a directory with a broken file, naming every problem", () => {
    writeFileSync(join(dir, "a.yaml"), GOOD);
    writeFileSync(join(dir, "b.yaml"), GOOD.replace("id: no-drop", "id: no-drop-2"));
    let error: unknown;
    try {
      loadPolicyDirectory(dir);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(PolicyLoadError);
    const problem = (error as PolicyLoadError).problems[0]!;
    expect(problem).toMatchObject({ file: join(dir, "b.yaml"), line: 5, rule: "demo-query" });
    expect(problem.message).toMatch(
      new RegExp(`already used in ${join(dir, "a.yaml").replace(/[.]/g, "\\.")}:5`),
    );
  });

  it("refuses a missing directory", () => {
    expect(() => loadPolicyDirectory(join(dir, "nope"))).toThrow(/nope: no such directory/);
  });

  it("checks files without throwing, for `signet policy check`", () => {
    writeFileSync(join(dir, "good.yaml"), GOOD);
    writeFileSync(join(dir, "bad.yaml"), withRule("    when: nope(\n"));
    expect(checkPolicyFiles([join(dir, "good.yaml")])).toEqual({
      ok: true,
      files: 1,
      rules: 2,
      problems: [],
    });
    const checked = checkPolicyFiles([
      join(dir, "good.yaml"),
      join(dir, "bad.yaml"),
      join(dir, "missing.yaml"),
    ]);
    expect(checked.ok).toBe(false);
    expect(checked.problems.map(formatProblem)).toEqual([
      expect.stringMatching(/bad\.yaml:8:\d+: rule "r1": when: is not a valid condition/),
      expect.stringMatching(/missing\.yaml: cannot read \(ENOENT\)/),
    ]);
  });
});

describe("hot reload", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "signet-policy-watch-"));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("swaps in a policy that loads and keeps the old one when a file breaks", async () => {
    writeFileSync(join(dir, "dev.yaml"), GOOD);
    const live = new LivePolicy(loadPolicyDirectory(dir));
    const errors: string[] = [];
    const watcher = watchPolicyDirectory(dir, {
      debounceMs: 20,
      onChange: (policy: CompiledPolicy) => live.replace(policy),
      onError: (error) => errors.push(error.problems.map(formatProblem).join("\n")),
    });
    /** Waits (up to 10 s) for the watcher to have done what the test expects: fs events may repeat. */
    const until = async (done: () => boolean): Promise<void> => {
      for (let waited = 0; !done(); waited += 10) {
        if (waited > 10_000) throw new Error("the watcher did not react");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    try {
      const bob = { principal: { id: "bob" }, action: "invoke", resource: "tool:database/query" };
      expect(live.decide(bob).effect).toBe("allow");

      writeFileSync(join(dir, "dev.yaml"), GOOD.replace("[alice, bob]", "[alice]"));
      await until(() => live.decide(bob).effect === "deny");
      expect(live.current.rules.map((rule) => rule.id)).toEqual(["demo-query", "no-drop"]);
      const generation = live.generation;
      expect(generation).toBeGreaterThan(1);

      writeFileSync(join(dir, "dev.yaml"), GOOD.replace("effect: deny", "effect: maybe"));
      await until(() => errors.length > 0);
      expect(errors.at(-1)).toMatch(/dev\.yaml:15:\d+: rule "no-drop": effect: must be allow or deny/);
      expect(live.generation).toBe(generation); // The previous policy is still in force.
      expect(live.decide(bob).effect).toBe("deny");

      writeFileSync(join(dir, "dev.yaml"), GOOD);
      await until(() => live.decide(bob).effect === "allow");
    } finally {
      watcher.close();
    }
  });
});
