// `signet keys generate`: writes an agent's Ed25519 key pair, the private half readable by its owner only.
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { Ed25519PrivateKey } from "@signet/protocol";

/** Writes `path` (PKCS#8 PEM, mode 0600) and `path.pub` (SPKI PEM); returns the key id. */
export function generateKeyFiles(path: string, force: boolean): { kid: string; publicKey: string } {
  const key = Ed25519PrivateKey.generate();
  // "wx" refuses to replace an existing key unless asked: losing a private key is not undoable.
  const flag = force ? "w" : "wx";
  writeFileSync(path, key.toPem(), { mode: 0o600, flag });
  writeFileSync(`${path}.pub`, key.publicKey.toPem(), { mode: 0o644, flag });
  return { kid: key.kid, publicKey: key.publicKey.toBase64Url() };
}

export function registerKeysCommands(program: Command): void {
  const keys = program.command("keys").description("Manage Ed25519 signing keys");
  keys
    .command("generate")
    .description("Generate an agent key pair: FILE (private, mode 0600) and FILE.pub (public)")
    .requiredOption("--out <file>", "where to write the private key")
    .option("--force", "overwrite existing files", false)
    .option("--json", "machine-readable output", false)
    .action((options: { out: string; force: boolean; json: boolean }) => {
      const { kid, publicKey } = generateKeyFiles(options.out, options.force);
      if (options.json) {
        process.stdout.write(
          `${JSON.stringify({ kid, public_key: publicKey, private_key_file: options.out })}\n`,
        );
      } else {
        process.stdout.write(
          `wrote ${options.out} (private, 0600) and ${options.out}.pub\nkey id:     ${kid}\npublic key: ${publicKey}\n`,
        );
      }
    });
}
