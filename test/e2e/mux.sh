#!/usr/bin/env bash
# shellcheck shell=bash
# test/e2e/mux.sh: sourced by test.sh; mux_journey WORK --name INSTANCE -n NAMESPACE.
mux_journey() {
  fail "mux journey not written yet"
}
