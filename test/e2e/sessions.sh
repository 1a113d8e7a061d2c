#!/usr/bin/env bash
# shellcheck shell=bash
# test/e2e/sessions.sh: sourced by test.sh; sessions_journey WORK --name INSTANCE -n NAMESPACE.
sessions_journey() {
  fail "sessions journey not written yet"
}
