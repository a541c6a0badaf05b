#!/bin/sh
# tap_skip.sh PROGRAM [ARG...] - runs a cmocka test program for automake's
# TAP driver and writes a skipped case as TAP says it: cmocka 1.1 (Debian
# 12) prints "not ok N # SKIP name", which the driver counts as a failure
# (a skip must be "ok"), so that a suite whose redis-server, say, is not
# installed failed instead of saying what it skipped. Only that line's
# "not " goes; everything else passes through as it comes (sed -u), and
# the exit status is the program's.
exec 3>&1
status=$(
    {
        {
            "$@" 3>&- 4>&-
            echo $? >&4
        } | sed -u 's/^not ok \([0-9][0-9]*\) # SKIP/ok \1 # SKIP/' >&3
    } 4>&1
)
exec 3>&-
exit "${status:-1}"
