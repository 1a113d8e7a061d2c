/** The host name in the exec store's URL: Nix passes it to `ssh`, and only this host goes to the pod. */
export function execStoreHost(instance: string): string {
  return `trampoline-exec-${instance}`
}
