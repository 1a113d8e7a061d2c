import { describe, expect, it } from 'vitest'
import { namesFor, labelsFor } from '../instance.ts'
import { buildPod, templateSettings } from '../manifests/pod.ts'
import { loadTemplate } from '../manifests/template.ts'
import { agentSessionArgv, attachSessionArgv, mountsAgentSecret, provideTmuxArgv, requireAgentMount } from './session.ts'

describe('agentSessionArgv', () => {
  it('runs the wrapper with the key fingerprint, never a key', () => {
    expect(agentSessionArgv({ keyFingerprint: '0123456789abcdef', fresh: false, args: [] })).toEqual([
      '/opt/trampoline/agent-session.sh', '--key-sha256', '0123456789abcdef', '--',
    ])
  })

  it('passes TERM for a terminal, --new, and claude\'s own arguments verbatim after --', () => {
    expect(agentSessionArgv({ keyFingerprint: 'ab12cd34ab12cd34', term: 'xterm-256color', fresh: true, args: ['-p', 'fix the --new bug', '--model', 'opus'] })).toEqual([
      '/opt/trampoline/agent-session.sh', '--key-sha256', 'ab12cd34ab12cd34', '--term', 'xterm-256color', '--new', '--', '-p', 'fix the --new bug', '--model', 'opus',
    ])
  })
})

describe('requireAgentMount', () => {
  const names = namesFor('web')
  const pod = buildPod(loadTemplate(), { names, labels: labelsFor('web', 'me'), settings: templateSettings(loadTemplate()) })

  it('accepts a pod built from this template', () => {
    expect(mountsAgentSecret(pod, names)).toBe(true)
    expect(() => requireAgentMount(pod, names)).not.toThrow()
  })

  it('tells the owner of an older pod to run setup', () => {
    const older = structuredClone(pod)
    older.spec!.volumes = older.spec!.volumes!.filter((v) => v.name !== 'agent')
    expect(mountsAgentSecret(older, names)).toBe(false)
    expect(() => requireAgentMount(older, names)).toThrow(/made by an older trampoline/)
    try {
      requireAgentMount(older, names)
    } catch (error) {
      expect(error).toMatchObject({ exitCode: 5, hint: expect.stringContaining('trampoline setup --name web') })
    }
  })

  it('wants the Secret of this instance, mounted where the wrapper reads it', () => {
    expect(mountsAgentSecret(pod, namesFor('other'))).toBe(false)
    const moved = structuredClone(pod)
    moved.spec!.containers.find((c) => c.name === 'user')!.volumeMounts!.find((m) => m.name === 'agent')!.mountPath = '/elsewhere'
    expect(mountsAgentSecret(moved, names)).toBe(false)
  })
})

describe('detachable sessions', () => {
  it('asks the wrapper for a tmux session with --detachable, before claude\'s arguments', () => {
    expect(agentSessionArgv({ keyFingerprint: '0123456789abcdef', term: 'xterm', fresh: false, args: ['--detachable'], detachable: true })).toEqual([
      '/opt/trampoline/agent-session.sh', '--key-sha256', '0123456789abcdef', '--term', 'xterm', '--detachable', '--', '--detachable',
    ])
  })

  it('reattaches a session by id, or the newest', () => {
    expect(attachSessionArgv('1f2e3d4c', 'xterm-256color')).toEqual(['/opt/trampoline/agent-session.sh', '--attach', '1f2e3d4c', '--term', 'xterm-256color'])
    expect(attachSessionArgv(undefined, undefined)).toEqual(['/opt/trampoline/agent-session.sh', '--attach'])
  })

  it('provides tmux from an installable, replacing the pod\'s only when asked', () => {
    expect(provideTmuxArgv('nixpkgs#tmux', false)).toEqual(['/opt/trampoline/agent-session.sh', '--provide-tmux', 'nixpkgs#tmux'])
    expect(provideTmuxArgv('/nix/store/abc-tmux-3.5', true)).toEqual(['/opt/trampoline/agent-session.sh', '--provide-tmux', '/nix/store/abc-tmux-3.5', '--replace'])
  })
})
