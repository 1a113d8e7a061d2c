// Reads a `nix-store --export` stream of one store path on stdin and writes it to stdout
// with that path renamed to a fresh random hash. An export carries no content address, so
// `nix-store --import` of the result adds an input-addressed path with the same contents,
// as a build's output is. (`nix-store --add` makes content-addressed paths, whose import
// Nix checks by reading and hashing the whole path a second time: run.sh's data-ca set.)
//
//   nix-store --export PATH | node rename-export.ts PATH | nix-store --import
import { randomInt } from 'node:crypto'
import { buffer } from 'node:stream/consumers'

/** Nix's base-32 digits (no e, o, u, t). */
const NIX_BASE32 = '0123456789abcdfghijklmnpqrsvwxyz'

const path = process.argv[2] ?? ''
const parts = /^(.*\/)[0-9a-df-np-sv-z]{32}-[^/]+$/.exec(path)
if (!parts) {
  console.error('usage: rename-export.ts STORE-PATH < export > renamed-export')
  process.exit(2)
}
const stream = await buffer(process.stdin)
// After the NAR comes the path as a string: its length (u64, little-endian), then its bytes.
const at = stream.lastIndexOf(Buffer.from(path, 'latin1'))
if (at < 8 || stream.readBigUInt64LE(at - 8) !== BigInt(path.length)) {
  console.error(`rename-export.ts: ${path} is not the path of this export`)
  process.exit(1)
}
const hash = Array.from({ length: 32 }, () => NIX_BASE32[randomInt(NIX_BASE32.length)]).join('')
stream.write(hash, at + parts[1].length, 'latin1')
process.stdout.write(stream)
