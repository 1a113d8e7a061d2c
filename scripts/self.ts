// How to run this very CLI again from another process (ssh's ProxyCommand, agent shells).
import { fileURLToPath } from 'node:url'

/** argv that starts trampoline: a packaged wrapper if one says so, else node + our bin. */
export function selfCommand(env = process.env): string[] {
  if (env.TRAMPOLINE_SELF) return [env.TRAMPOLINE_SELF]
  // scripts/self.ts and dist/self.js both sit one level below the package root.
  const bin = fileURLToPath(new URL('../bin/trampoline.js', import.meta.url))
  return [process.execPath, bin]
}
