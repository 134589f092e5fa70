// The logger masks secrets wherever they appear in a log line, not only at the known credential paths.
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/telemetry/logger.js";

function capture(redaction?: Parameters<typeof createLogger>[0]["redaction"]) {
  const destination = new PassThrough();
  const lines: string[] = [];
  destination.on("data", (chunk: Buffer) => lines.push(...chunk.toString().split("\n").filter(Boolean)));
  const logger = createLogger({
    level: "info",
    destination,
    ...(redaction === undefined ? {} : { redaction }),
  });
  return { logger, lines };
}

describe("createLogger", () => {
  it("masks credential paths, sensitive member names, detected secrets and configured paths", async () => {
    const { logger, lines } = capture({ paths: ["$.customer.ssn"] });
    logger.info(
      {
        headers: { authorization: "Bearer abc.def.ghi" },
        nested: {
          client_secret: "s3cr3t-value",
          note: "key sgk_AAAAAAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
        },
        customer: { ssn: "123-45-6789", name: "Ada" },
        card: "4111 1111 1111 1111",
      },
      "a line",
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    for (const secret of [
      "abc.def.ghi",
      "s3cr3t-value",
      "sgk_AAAAAAAAAAAAAAAA",
      "123-45-6789",
      "4111 1111 1111 1111",
    ]) {
      expect(line).not.toContain(secret);
    }
    const parsed = JSON.parse(line) as { customer: { name: string }; msg: string };
    expect(parsed.customer.name).toBe("Ada");
    expect(parsed.msg).toBe("a line");
  });

  it("keeps errors' message and stack for pino's serializer", async () => {
    const { logger, lines } = capture();
    logger.error({ err: new Error("disk full") }, "write failed");
    await new Promise((resolve) => setImmediate(resolve));
    const parsed = JSON.parse(lines[0]!) as { err: { message: string; stack: string } };
    expect(parsed.err.message).toBe("disk full");
    expect(parsed.err.stack).toContain("Error: disk full");
  });
});
