import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import { COMMANDS } from './index.ts'

const here = fileURLToPath(new URL('.', import.meta.url))

describe('the lazy command registry', () => {
  it.each(COMMANDS.map((entry) => [entry.command, entry] as const))('%s: command and describe as in its module', async (_, entry) => {
    const { command } = await entry.load()
    expect({ command: entry.command, describe: entry.describe }, 'scripts/commands/index.ts must copy them exactly').toEqual({
      command: command.command,
      describe: command.describe,
    })
    // The lazy stand-in hands over builder and handler only.
    expect(Object.keys(command).sort()).toEqual(['builder', 'command', 'describe', 'handler'].filter((key) => key in command))
  }, 30_000)

  it('lists every command module', async () => {
    const registered = new Set<unknown>()
    for (const entry of COMMANDS) registered.add((await entry.load()).command)
    const modules = readdirSync(here).filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts') && file !== 'index.ts')
    const unregistered: string[] = []
    for (const file of modules) {
      const module = await import(/* @vite-ignore */ pathToFileURL(join(here, file)).href)
      if (module.command && !registered.has(module.command)) unregistered.push(file)
    }
    expect(unregistered, 'each needs an entry in scripts/commands/index.ts').toEqual([])
  }, 60_000)
})
