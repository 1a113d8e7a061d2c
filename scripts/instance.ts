// An instance is one build pod and its objects. Names and labels are derived here, in
// one place, so setup, status and gc always agree on what belongs to what.
import { userInfo, hostname } from 'node:os'
import { basename } from 'node:path'

export const APP_LABEL = 'app.kubernetes.io/name'
export const INSTANCE_LABEL = 'app.kubernetes.io/instance'
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by'
export const OWNER_LABEL = 'trampoline.dev/owner'
/** Tells the instance's objects of one kind apart, e.g. the agent's Secret from the SSH one. */
export const COMPONENT_LABEL = 'app.kubernetes.io/component'
export const SESSION_EXPIRES_ANNOTATION = 'trampoline.dev/expires-at'
export const APP = 'trampoline'

/** Selects every object trampoline made, for status and gc. */
export const APP_SELECTOR = `${APP_LABEL}=${APP}`

export interface InstanceNames {
  instance: string
  pod: string
  pvc: string
  sshSecret: string
  agentSecret: string
  signingSecret: string
  netrcSecret: string
  scripts: string
  networkPolicy: string
}

/** Kubernetes names: lower-case alphanumerics and '-', at most 63 characters, alphanumeric ends. */
export function toDnsLabel(raw: string, maxLength = 40): string {
  const cleaned = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .slice(0, maxLength)
    .replace(/^-+|-+$/g, '')
  return cleaned || 'default'
}

/** The default instance: one per project, named after the repository's directory. */
export function defaultInstanceName(repoRoot: string | undefined): string {
  return toDnsLabel(repoRoot ? basename(repoRoot) : 'default')
}

export function validateInstanceName(name: string): string | undefined {
  if (!/^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$/.test(name)) {
    return `instance name "${name}" must be 1-40 lower-case letters, digits or '-', starting and ending alphanumeric`
  }
  return undefined
}

export function namesFor(instance: string): InstanceNames {
  const base = `trampoline-${instance}`
  return {
    instance,
    pod: base,
    pvc: base,
    sshSecret: `${base}-ssh`,
    agentSecret: `${base}-agent`,
    signingSecret: `${base}-signing`,
    netrcSecret: `${base}-netrc`,
    scripts: `${base}-scripts`,
    networkPolicy: `${base}-egress`,
  }
}

/** Label values allow [A-Za-z0-9._-], 63 characters. */
export function toLabelValue(raw: string): string {
  return raw.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 63).replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '') || 'unknown'
}

export function defaultOwner(): string {
  return toLabelValue(`${userInfo().username}.${hostname()}`)
}

export function labelsFor(instance: string, owner: string): Record<string, string> {
  return {
    [APP_LABEL]: APP,
    [INSTANCE_LABEL]: instance,
    [MANAGED_BY_LABEL]: APP,
    [OWNER_LABEL]: owner,
  }
}

export function instanceSelector(instance: string): string {
  return `${APP_SELECTOR},${INSTANCE_LABEL}=${instance}`
}
