import { describe, expect, it } from 'vitest'
import { ExitCode } from '../errors.ts'
import { PUSH_RECEIVE_EXIT, pushReceiveError } from './push.ts'

const tree = '4b825dc642cb6eb9a060e54bf8d69288fbee4904'

describe('pushReceiveError', () => {
  it('a full volume says so and what to do: maintenance or a bigger --store-size', () => {
    const error = pushReceiveError(PUSH_RECEIVE_EXIT.volumeFull, 'demo', tree)
    expect(error.message).toMatch(/^the store volume is full: tree 4b825dc642cb does not fit on the volume of instance "demo"/)
    expect(error.hint).toContain('trampoline maintenance --name demo')
    expect(error.hint).toContain('--store-size')
    expect(error.hint).toContain('/workspace/src is unchanged')
    expect(error.exitCode).toBe(ExitCode.failure)
  })

  it('a lock held too long names the lock', () => {
    const error = pushReceiveError(PUSH_RECEIVE_EXIT.busy, 'demo', tree)
    expect(error.message).toContain('another push to instance "demo"')
    expect(error.hint).toContain('/workspace/.trees/.push-lock')
  })

  it('any other code is a failed receiver, pointing at its message', () => {
    const error = pushReceiveError(1, 'demo', tree)
    expect(error.message).toBe('/opt/trampoline/push-receive.sh in the pod failed with exit code 1')
    expect(error.hint).toContain('unchanged')
  })

  it('uses the codes push-receive.sh documents', async () => {
    const { readFileSync } = await import('node:fs')
    const script = readFileSync(new URL('../../container/push-receive.sh', import.meta.url), 'utf8')
    expect(script).toContain(`EXIT_FULL=${PUSH_RECEIVE_EXIT.volumeFull}`)
    expect(script).toContain(`EXIT_BUSY=${PUSH_RECEIVE_EXIT.busy}`)
  })
})

describe('the push record and the receiver command line', async () => {
  const { parseRecord, receiveArgv, podChangesError } = await import('./push.ts')
  const { parseState } = await import('../workspace/state.ts')
  const commit = 'c'.repeat(40)

  it('reads records with and without the commit (older versions wrote the tree only)', () => {
    expect(parseRecord(`${tree}\n`)).toEqual({ tree })
    expect(parseRecord(`${tree} ${commit}\n`)).toEqual({ tree, commit })
    expect(parseRecord('garbage')).toBeUndefined()
    expect(parseRecord(undefined)).toBeUndefined()
  })

  it('builds receive with the base, what the pod holds, the branch and identity', () => {
    expect(receiveArgv({ tree, commit, from: tree, branch: 'main', identity: { name: 'A B', email: 'a@b' }, force: true })).toEqual([
      '/opt/trampoline/push-receive.sh', 'receive', '--tree', tree, '--base', commit, '--from', tree, '--branch', 'main', '--name', 'A B', '--email', 'a@b', '--force',
    ])
    expect(receiveArgv({ tree })).toEqual(['/opt/trampoline/push-receive.sh', 'receive', '--tree', tree, '--base', '-', '--from', '-', '--branch', 'trampoline'])
  })

  it('a refusal names the pod\'s changed files and the ways out, with its own exit code', () => {
    const state = parseState(`pushed ${tree}\ncommit ${commit}\nbase ${commit}\nhead ${commit}\nbranch main\nworktree ${'e'.repeat(40)}\ncommits 0\nchanges\n:100644 100644 ${'1'.repeat(40)} ${'2'.repeat(40)} M\0src/a.ts\0`)
    const error = podChangesError('web', state, 'sh')
    expect(error.message).toContain('src/a.ts')
    expect(error.message).toContain('the command did not run')
    expect(error.hint).toContain('trampoline diff --name web')
    expect(error.hint).toContain('trampoline pull --name web')
    expect(error.hint).toContain('--force')
    expect(error.exitCode).toBe(8)
  })

  it('uses the refusal codes push-receive.sh documents', async () => {
    const { readFileSync } = await import('node:fs')
    const script = readFileSync(new URL('../../container/push-receive.sh', import.meta.url), 'utf8')
    expect(script).toContain(`EXIT_CHANGED=${PUSH_RECEIVE_EXIT.podChanges}`)
    expect(script).toContain(`EXIT_RESEND=${PUSH_RECEIVE_EXIT.resend}`)
  })
})

describe('FramedOutput (push and command in one exec)', async () => {
  const { FramedOutput, PUSHED_MARKER } = await import('./push.ts')
  const { Writable } = await import('node:stream')
  const sink = () => {
    const chunks: Buffer[] = []
    const target = new Writable({ write(chunk: Buffer, _e, cb) { chunks.push(chunk); cb() } })
    return { target, text: () => Buffer.concat(chunks).toString('utf8') }
  }
  const feed = async (out: InstanceType<typeof FramedOutput>, parts: string[]) => {
    for (const part of parts) await new Promise<void>((done) => out.write(Buffer.from(part), () => done()))
  }

  it('passes everything after the marker line through, the marker split across chunks', async () => {
    const { target, text } = sink()
    const out = new FramedOutput(target)
    await feed(out, [PUSHED_MARKER.slice(0, 5), `${PUSHED_MARKER.slice(5)}\nhello`, ' world\n'])
    expect(out.pushed).toBe(true)
    expect(text()).toBe('hello world\n')
  })

  it('keeps a refusal\'s state report, passing nothing through', async () => {
    const { target, text } = sink()
    const out = new FramedOutput(target)
    await feed(out, [`pushed ${tree}\n`, 'changes\n'])
    expect(out.pushed).toBe(false)
    expect(out.report.toString('utf8')).toBe(`pushed ${tree}\nchanges\n`)
    expect(text()).toBe('')
  })
})
