// How to run this very CLI again from another process (ssh's ProxyCommand, agent shells).
import { join } from 'node:path'
import { packageDir } from './package-dir.ts'

/** argv that starts trampoline: a packaged wrapper if one says so, else node + our bin. */
export function selfCommand(env = process.env): string[] {
  if (env.TRAMPOLINE_SELF) return [env.TRAMPOLINE_SELF]
  const bin = join(packageDir(), 'bin', 'trampoline.js')
  return [process.execPath, bin]
}
