// The pod template is container/k8s-pod.yaml, the same file `kubectl apply -k container/`
// uses, so the CLI and kustomize can never disagree on the pod layout. Parsing is pure;
// the loaders read from the package's own container/ directory.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node'
import { packageDir } from '../package-dir.ts'

export interface InstanceTemplate {
  pod: V1Pod
  pvc: V1PersistentVolumeClaim
}

export interface Kustomization {
  resources: string[]
  /** The scripts ConfigMap generator: its name and the files it packs. */
  scripts: { name: string; files: string[]; disableNameSuffixHash: boolean; labels: Record<string, string> }
}

/** container/ of this package (from the sources in scripts/ or the bundle in dist/). */
export function containerDir(): string {
  return join(packageDir(), 'container/')
}

export const TEMPLATE_FILE = 'k8s-pod.yaml'
export const KUSTOMIZATION_FILE = 'kustomization.yaml'

/**
 * kubectl reads manifests as YAML 1.1, where `defaultMode: 0555` is octal (365); YAML 1.2,
 * the yaml package's default, would read decimal 555, which the API server rejects.
 */
const KUBECTL_YAML = { version: '1.1' } as const

/** The Pod and PVC documents of k8s-pod.yaml (other kinds are ignored). */
export function parseTemplate(yamlText: string): InstanceTemplate {
  const documents = parseAllDocuments(yamlText, KUBECTL_YAML)
  const objects: { kind?: string }[] = []
  for (const document of documents) {
    if (document.errors.length) throw new Error(`${TEMPLATE_FILE}: ${document.errors[0].message}`)
    const value = document.toJS()
    if (value) objects.push(value)
  }
  const pod = objects.find((o) => o.kind === 'Pod') as V1Pod | undefined
  const pvc = objects.find((o) => o.kind === 'PersistentVolumeClaim') as V1PersistentVolumeClaim | undefined
  if (!pod || !pvc) throw new Error(`${TEMPLATE_FILE} must hold a Pod and a PersistentVolumeClaim`)
  return { pod, pvc }
}

interface RawKustomization {
  resources?: string[]
  configMapGenerator?: { name?: string; files?: string[] }[]
  generatorOptions?: { disableNameSuffixHash?: boolean; labels?: Record<string, string> }
}

export function parseKustomization(yamlText: string): Kustomization {
  const document = parseAllDocuments(yamlText, KUBECTL_YAML)[0]
  if (document?.errors.length) throw new Error(`${KUSTOMIZATION_FILE}: ${document.errors[0].message}`)
  const raw = (document?.toJS() ?? {}) as RawKustomization
  const generator = raw.configMapGenerator?.find((g) => g.name?.endsWith('-scripts'))
  if (!generator) throw new Error(`${KUSTOMIZATION_FILE} has no configMapGenerator for the scripts ConfigMap`)
  return {
    resources: raw.resources ?? [],
    scripts: {
      name: generator.name!,
      // A generator entry may be `key=path`; the ConfigMap key is what matters here.
      files: (generator.files ?? []).map((f) => f.split('=')[0]),
      disableNameSuffixHash: raw.generatorOptions?.disableNameSuffixHash ?? false,
      labels: raw.generatorOptions?.labels ?? {},
    },
  }
}

/** Files of the scripts ConfigMap besides the *.sh: Nix and sshd settings, and the user container's accounts. */
const CONFIG_FILES = ['nix.conf', 'sshd_config', 'passwd', 'group']

/** Which container/ files the scripts ConfigMap holds: every *.sh and CONFIG_FILES. */
export function isScriptFile(name: string): boolean {
  return /^[A-Za-z0-9._-]+\.sh$/.test(name) || CONFIG_FILES.includes(name)
}

export function loadTemplate(dir = containerDir()): InstanceTemplate {
  return parseTemplate(readFileSync(join(dir, TEMPLATE_FILE), 'utf8'))
}

export function loadKustomization(dir = containerDir()): Kustomization {
  return parseKustomization(readFileSync(join(dir, KUSTOMIZATION_FILE), 'utf8'))
}

/** The ConfigMap's files, name -> content, in a stable order. */
export function loadScriptFiles(dir = containerDir()): Record<string, string> {
  const files: Record<string, string> = {}
  for (const name of readdirSync(dir).filter(isScriptFile).sort()) files[name] = readFileSync(join(dir, name), 'utf8')
  return files
}
