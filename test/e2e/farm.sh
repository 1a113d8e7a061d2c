#!/usr/bin/env bash
# shellcheck shell=bash
# test/e2e/farm.sh: sourced by test.sh; farm_journey WORK --name INSTANCE -n NAMESPACE.
farm_journey() {
  fail "farm journey not written yet"
}
