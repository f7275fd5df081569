# Sourced by scripts/setup.sh and by scripts that must not set anything up
# (tests/fuzz/run.sh with FUZZ_SKIP_SETUP=1): definitions only, no side effect.

step() { printf '\n==> %s\n' "$*"; }

# Every component crate under functions/, as `-p name` arguments.
component_packages() {
  for dir in functions/*/; do printf -- '-p %s ' "$(basename "$dir")"; done
}
