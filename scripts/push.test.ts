import { describe, expect, it } from 'vitest'
import { ExitCode } from './errors.ts'
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
    const script = readFileSync(new URL('../container/push-receive.sh', import.meta.url), 'utf8')
    expect(script).toContain(`EXIT_FULL=${PUSH_RECEIVE_EXIT.volumeFull}`)
    expect(script).toContain(`EXIT_BUSY=${PUSH_RECEIVE_EXIT.busy}`)
  })
})
