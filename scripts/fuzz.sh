#!/usr/bin/env bash
# Runs each fuzz target for a bounded time on a copy of its seed corpus (Fuzz/Corpus/<target>).
# A crash leaves its input as Fuzz/crash-* and fails the run; turn such an input into a regression test.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/../Fuzz"
bin="$(swift build -c debug --show-bin-path)"
# A target's crash is a Swift trap or fatalError: without the Swift backtracer (which trips over
# AddressSanitizer and hangs), libFuzzer reports it at once and keeps the input.
export SWIFT_BACKTRACE=enable=no
for target in ListQuery HTTPRequest RequestDecoder; do
    corpus="$(mktemp -d)"
    cp "Corpus/$target/"* "$corpus/"
    echo "fuzzing $target for $seconds s"
    # Leak reports are off: the HTTP target leaves work pending on purpose; memory is the soak's job.
    # A target's dictionary (Dictionaries/<target>.dict), if it has one, gives libFuzzer its tokens.
    dict=()
    if [ -f "Dictionaries/$target.dict" ]; then dict=(-dict="Dictionaries/$target.dict"); fi
    "$bin/Fuzz$target" "$corpus" "${dict[@]}" -max_total_time="$seconds" -detect_leaks=0 -print_final_stats=1 \
        -artifact_prefix="$PWD/crash-$target-" 2>&1 | grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done|==[0-9]+==ERROR|SUMMARY)' || true
    # FUZZ_MERGE=1 keeps what the run found that reaches new code, in the seed corpus (libFuzzer's -merge=1).
    if [ "${FUZZ_MERGE:-0}" = 1 ] && ! ls "crash-$target-"* >/dev/null 2>&1; then
        "$bin/Fuzz$target" -merge=1 "Corpus/$target" "$corpus" 2>&1 | grep -E '^MERGE-OUTER: [0-9]+ new files' || true
    fi
    rm -rf "$corpus"
    if ls "crash-$target-"* >/dev/null 2>&1; then
        echo "fuzz: $target crashed; inputs kept in Fuzz/crash-$target-*" >&2
        exit 1
    fi
done
