#!/usr/bin/env bash
# Builds gobind's Java binding of mobile/redpanda for a desktop JVM, the
# way `gomobile bind` builds it for Android (golang.org/x/mobile/cmd/
# gomobile/bind_androidapp.go), with three stand-ins for what Android
# provides (docs/MOBILE.md, "The binding on a desktop JVM"):
#   - the glue's *_android.{go,c} files, compiled only for GOOS=android,
#     are copied under *_jni names and built for GOOS=linux with
#     -D__GOBIND_ANDROID__ (what gomobile's android CFLAGS set);
#   - <android/log.h> and liblog (include/, log.c): log lines on stderr;
#   - android.content.Context (java/), which go.Seq names.
# OpenJDK's jni.h declares AttachCurrentThread with void** where
# Android's has JNIEnv**; the glue is built with
# -Wno-incompatible-pointer-types for that one difference.
#
# usage: mobile/jvm/build.sh GOBIND_DIR OUT_DIR [GOARCH [CC]]
#   GOBIND_DIR  what `gobind -lang=go,java[,objc] -outdir GOBIND_DIR` wrote
#   OUT_DIR     gets libgojni.so (stripped) and classes/ (the compiled
#               Java binding, the shim, and nothing else)
#   GOARCH      default: this machine's; CC: the C cross-compiler
#   JAVA_HOME   default: the JDK javac belongs to
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 GOBIND_DIR OUT_DIR [GOARCH [CC]]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
gobind=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
goarch=${3:-$(go env GOARCH)}
cc=${4:-}

if [ -z "${JAVA_HOME:-}" ]; then
  javac=$(readlink -f "$(command -v javac)") || { echo "$0: no javac (install openjdk-17-jdk-headless)" >&2; exit 1; }
  JAVA_HOME=$(dirname "$(dirname "$javac")")
fi
[ -f "$JAVA_HOME/include/jni.h" ] || { echo "$0: no jni.h under JAVA_HOME=$JAVA_HOME" >&2; exit 1; }

work="$out/build"
rm -rf "$work"
mkdir -p "$work/gobind" "$work/lib"
for f in "$gobind"/src/gobind/*; do
  b=$(basename "$f")
  case "$b" in
    *_darwin.*|*.objc.h|ref.h) ;;                    # the Objective-C half
    *_android.go) cp "$f" "$work/gobind/${b%_android.go}_jni.go" ;;
    *_android.c) cp "$f" "$work/gobind/${b%_android.c}_jni.c" ;;
    *) cp "$f" "$work/gobind/" ;;
  esac
done
# Its own module, in a workspace with this repository, so that it builds
# against the repository's go.mod (as gomobile's generated go.mod does).
printf 'module redpanda.invalid/gobind\n\ngo %s\n' "$(go -C "$repo" list -m -f '{{.GoVersion}}')" > "$work/gobind/go.mod"
printf 'go %s\n\nuse (\n\t%s\n\t./gobind\n)\n' "$(go -C "$repo" list -m -f '{{.GoVersion}}')" "$repo" > "$work/go.work"

ccbin=${cc:-gcc}
"$ccbin" -O2 -fPIC -Wall -Werror -I"$here/include" -c "$here/log.c" -o "$work/log.o"
ar rcs "$work/lib/liblog.a" "$work/log.o"

(cd "$work/gobind" && \
  env GOWORK="$work/go.work" GOFLAGS=-mod=readonly CGO_ENABLED=1 GOOS=linux GOARCH="$goarch" ${cc:+CC="$cc"} \
  CGO_CFLAGS="-O2 -D__GOBIND_ANDROID__ -Wno-incompatible-pointer-types -I$JAVA_HOME/include -I$JAVA_HOME/include/linux -I$here/include" \
  CGO_LDFLAGS="-L$work/lib" \
  go build -trimpath -buildmode=c-shared -ldflags='-s -w' -o "$out/libgojni.so" .)
rm -f "$out/libgojni.h"

# The Java half is the same for every architecture.
rm -rf "$out/classes"
mkdir -p "$out/classes"
"$JAVA_HOME/bin/javac" -nowarn -encoding UTF-8 -d "$out/classes" \
  $(find "$gobind/java" "$here/java" -name '*.java')
echo "$out/libgojni.so"
