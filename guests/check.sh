#!/bin/sh
# Run the guest binaries natively (usage: check.sh build/NAME...; `make check`
# passes all of them). Checks each exit status against the expected one,
# that all variants of a C program (-O0, -O2, -O2-pie) print the same
# stdout/stderr, and that the -O2-pie binaries have no relocations.
cd "$(dirname "$0")" || exit 1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

for bin in "$@"; do
    name=${bin#build/}
    prog=${name%-O0}; prog=${prog%-O2}; prog=${prog%-O2-pie}
    bad=0
    case $prog in
        revstr) expect=3 ;;     # exit status = argc
        exitcode) expect=42 ;;
        asmloop) expect=3 ;;
        *) expect=0 ;;
    esac
    if [ "$prog" = revstr ]; then
        printf 'some stdin\nbytes\n' | "./$bin" abc "hello world" >"$tmp/out" 2>"$tmp/err"
    else
        "./$bin" </dev/null >"$tmp/out" 2>"$tmp/err"
    fi
    status=$?
    if [ "$status" != "$expect" ]; then
        echo "FAIL $bin: exit status $status, expected $expect"; bad=1
    fi
    if [ -f "$tmp/$prog.out" ]; then
        if ! cmp -s "$tmp/out" "$tmp/$prog.out" || ! cmp -s "$tmp/err" "$tmp/$prog.err"; then
            echo "FAIL $bin: output differs from $(cat "$tmp/$prog.first")"; bad=1
        fi
    else
        cp "$tmp/out" "$tmp/$prog.out"; cp "$tmp/err" "$tmp/$prog.err"
        echo "$bin" >"$tmp/$prog.first"
    fi
    case $name in *-pie)
        if readelf -rW "$bin" | grep -q R_X86_64; then
            echo "FAIL $bin: has dynamic relocations"; bad=1
        fi ;;
    esac
    if [ $bad = 0 ]; then echo "ok   $bin (exit $status)"; else fail=1; fi
done
exit $fail
