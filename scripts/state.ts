// Local per-instance state (keys, pinned host key, ssh_config, last push) under the XDG
// state directory. Directories are 0700 and files 0600: they hold private keys.
import { mkdirSync, readFileSync, writeFileSync, existsSync, renameSync, rmSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

export function stateRoot(env = process.env): string {
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state')
  return join(base, 'trampoline')
}

/** Instances are per cluster and namespace: the same name may live in several. */
export function instanceStateDir(context: string, namespace: string, instance: string, env = process.env): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_')
  return join(stateRoot(env), safe(context), safe(namespace), safe(instance))
}

export class InstanceState {
  readonly dir: string

  constructor(dir: string) {
    this.dir = dir
  }

  path(file: string): string {
    return join(this.dir, file)
  }

  ensure(): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 })
  }

  has(file: string): boolean {
    return existsSync(this.path(file))
  }

  read(file: string): string | undefined {
    try {
      return readFileSync(this.path(file), 'utf8')
    } catch {
      return undefined
    }
  }

  /** Write-then-rename, so a crash never leaves a half-written key behind. */
  write(file: string, content: string): void {
    this.ensure()
    const target = this.path(file)
    const temp = `${target}.${process.pid}.tmp`
    writeFileSync(temp, content, { mode: 0o600 })
    renameSync(temp, target)
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true })
  }
}
