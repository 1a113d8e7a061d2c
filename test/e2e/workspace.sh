#!/usr/bin/env bash
# shellcheck shell=bash
# test/e2e/workspace.sh: sourced by test.sh; workspace_journey WORK --name INSTANCE -n NAMESPACE.
workspace_journey() {
  fail "workspace journey not written yet"
}
