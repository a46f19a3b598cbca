#!/usr/bin/env bash
# Regenerates the Swift code for Protos/flotilla.proto into Sources/FlotillaProto/Generated/:
#   flotilla.pb.swift    messages           (protoc-gen-swift, apple/swift-protobuf)
#   flotilla.grpc.swift  services, clients  (protoc-gen-grpc-swift-2, grpc/grpc-swift-protobuf)
# The output is committed, so building Flotilla needs neither protoc nor the plugins; run this
# after editing the .proto and commit what it writes. Safe to run again: it installs protoc only if
# missing, and SwiftPM rebuilds the plugins only if Tools/ProtocPlugins changed.
#
# The plugins are built in release mode from Tools/ProtocPlugins (pinned to the versions the root
# Package.swift uses) into Tools/ProtocPlugins/.build; the first build takes a few minutes (about
# 2 on a 2-core machine), later runs a few seconds.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/Tools/ProtocPlugins"
scratch="$tools/.build"
proto_dir="$root/Protos"
proto="flotilla.proto"
out="$root/Sources/FlotillaProto/Generated"

step() { printf '==> %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

if ! command -v swift >/dev/null 2>&1; then
  if [ -x /opt/swift/usr/bin/swift ]; then
    export PATH=/opt/swift/usr/bin:$PATH
  else
    echo "error: no Swift toolchain found (see scripts/install-deps.sh)" >&2
    exit 1
  fi
fi

# 1. protoc, from Debian's protobuf-compiler.
if command -v protoc >/dev/null 2>&1; then
  step "protoc: $(command -v protoc) ($(protoc --version))"
else
  step "protoc not found: installing Debian's protobuf-compiler"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  run $SUDO apt-get update -qq
  run env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq protobuf-compiler
  step "protoc: $(command -v protoc) ($(protoc --version))"
fi

# 2. The two plugins (release). SwiftPM's lock serialises this with other builds of the same
#    scratch path; it is a separate one from the root package's .build.
for product in protoc-gen-swift protoc-gen-grpc-swift-2; do
  step "building $product (release) in ${scratch#"$root"/}"
  run swift build --package-path "$tools" --scratch-path "$scratch" -c release --product "$product"
done
bin="$(swift build --package-path "$tools" --scratch-path "$scratch" -c release --show-bin-path)"
for product in protoc-gen-swift protoc-gen-grpc-swift-2; do
  [ -x "$bin/$product" ] || { echo "error: $bin/$product was not built" >&2; exit 1; }
done

# 3. Generate. Public types and `public import`s: the FlotillaProto target builds with
#    InternalImportsByDefault, and other modules use its types in their public API.
step "generating into ${out#"$root"/}"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
run protoc \
  --proto_path="$proto_dir" \
  --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
  --plugin=protoc-gen-grpc-swift="$bin/protoc-gen-grpc-swift-2" \
  --swift_out="$tmp" \
  --swift_opt=Visibility=Public,UseAccessLevelOnImports=true \
  --grpc-swift_out="$tmp" \
  --grpc-swift_opt=Visibility=Public,UseAccessLevelOnImports=true,Client=true,Server=true \
  "$proto"

# Replace the generated files only now that protoc succeeded, and only those it wrote.
for f in flotilla.pb.swift flotilla.grpc.swift; do
  [ -s "$tmp/$f" ] || { echo "error: protoc wrote no $f" >&2; exit 1; }
  if cmp -s "$tmp/$f" "$out/$f"; then
    step "unchanged: ${out#"$root"/}/$f"
  else
    run cp "$tmp/$f" "$out/$f"
  fi
done
step "done"
